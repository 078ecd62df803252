//! Key hygiene, as ssh-agent and gpg-agent do it: a process that holds a decrypted private key
//! must not be dumpable. Without this, a crash with core dumps enabled (or `gcore`, or a same-user
//! debugger attaching through ptrace) writes the key to disk: a bridge holding a file key, sent
//! SIGABRT with `ulimit -c unlimited`, wrote a 7 MB core containing pieces of the key's DER.
//!
//! On Linux `prctl(PR_SET_DUMPABLE, 0)` turns off core dumps and same-user ptrace attach, and
//! makes /proc/PID/{mem,environ,…} root-only. macOS has no per-process switch short of
//! `PT_DENY_ATTACH`, which only stops debuggers; its core dumps are off by default. Decrypted key
//! bytes and passphrases are wiped after use wherever this crate holds them (`zeroize`).

/// What [`harden`] achieved, for `--debug`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hardening {
    /// The kernel confirms the process is no longer dumpable.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // built on Linux only
    NotDumpable,
    /// The call failed (the value is errno).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))] // built on Linux only
    Failed(i32),
    /// No mechanism on this platform.
    #[cfg_attr(target_os = "linux", allow(dead_code))] // built on the other platforms
    Unsupported,
}

impl std::fmt::Display for Hardening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotDumpable => f.write_str(
                "key hygiene: process marked non-dumpable (prctl PR_SET_DUMPABLE 0, read back as \
                 0): no core dumps, no same-user ptrace; decrypted key bytes and passphrases are \
                 wiped once rustls holds the key",
            ),
            Self::Failed(errno) => write!(
                f,
                "key hygiene: could not mark the process non-dumpable (prctl errno {errno}); a \
                 core dump could contain the private key; decrypted key bytes and passphrases \
                 are still wiped once rustls holds the key"
            ),
            Self::Unsupported => f.write_str(
                "key hygiene: no non-dumpable switch on this platform; decrypted key bytes and \
                 passphrases are wiped once rustls holds the key",
            ),
        }
    }
}

/// Marks the process non-dumpable; call before any key is read.
pub fn harden() -> Hardening {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: prctl with PR_SET_DUMPABLE / PR_GET_DUMPABLE takes plain integers and touches
        // no memory of ours.
        let set = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
        if set != 0 {
            return Hardening::Failed(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        }
        // SAFETY: as above.
        let now = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        if now == 0 {
            Hardening::NotDumpable
        } else {
            Hardening::Failed(0)
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        Hardening::Unsupported
    }
}
