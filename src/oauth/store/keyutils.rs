//! The Linux kernel keyring: the user keyring, through the `add_key`/`keyctl` system calls.
//!
//! Why this store on Linux: it needs no D-Bus session, no unlocked desktop keyring and no library
//! (two system calls, so it works in the static musl build too), and every process of the user
//! sees it, so a `login` in one terminal serves the bridges an agent starts elsewhere. Its limits:
//! it lives in kernel memory while the user has any process running, never across a reboot (then
//! the user signs in again); a "user" key holds at
//! most 32,767 bytes; and non-root users have a byte quota (`/proc/sys/kernel/keys/maxbytes`,
//! 20,000 by default). Container runtimes often forbid these calls (Docker's default seccomp
//! profile does): the probe then fails and the caller falls back to memory. Where they are
//! allowed, a uid's user keyring is one per user namespace: root in containers that share the
//! host's namespace shares it with every such container (`--oauth-token-store memory` there).
//!
//! Keys go into the *user* keyring rather than the session keyring, which each login (each SSH
//! connection, each terminal under pam_keyinit) replaces. A process only "possesses" keys it
//! reaches through its session keyring, so each key is also given the user's own permissions.

use super::{StoreError, TokenStore, SERVICE};
use std::ffi::CString;
use std::io;

const KEY_SPEC_USER_KEYRING: libc::c_long = -4;
const KEYCTL_SETPERM: libc::c_long = 5;
const KEYCTL_UNLINK: libc::c_long = 9;
const KEYCTL_SEARCH: libc::c_long = 10;
const KEYCTL_READ: libc::c_long = 11;
/// View, read, write, search, link and set-attribute for the possessor and for the user; nothing
/// for the group or others.
const PERMISSIONS: libc::c_long = 0x3f3f_0000;
/// The kernel's limit for a "user" key's payload (one byte of it is our version marker).
const MAX_PAYLOAD: usize = 32_767;
/// First byte of every payload: lets a later version change the layout, and lets an empty value
/// be stored (the kernel refuses an empty "user" key).
const VERSION: u8 = 1;

const DESCRIBE: &str = "Linux kernel keyring";

pub struct KeyutilsStore;

impl KeyutilsStore {
    fn error(action: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::new(action, DESCRIBE, detail)
    }
}

/// The key's description: the type is "user", the name ours.
fn description(key: &str, action: &str) -> Result<CString, StoreError> {
    CString::new(format!("{SERVICE}:{key}"))
        .map_err(|_| KeyutilsStore::error(action, "the key name contains a NUL byte"))
}

/// The kernel's answer as a result (system calls return -1 and set errno).
fn check(result: libc::c_long) -> io::Result<libc::c_long> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

/// The serial of our key named `description`, if the user keyring has it.
fn search(description: &CString) -> io::Result<Option<libc::c_long>> {
    // SAFETY: both strings are NUL-terminated and live across the call; the last argument 0
    // asks the kernel not to link the result anywhere.
    let result = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_SEARCH,
            KEY_SPEC_USER_KEYRING,
            c"user".as_ptr(),
            description.as_ptr(),
            0 as libc::c_long,
        )
    };
    match check(result) {
        Ok(serial) => Ok(Some(serial)),
        Err(error) if is_absent(&error) => Ok(None),
        Err(error) => Err(error),
    }
}

/// A key that does not exist, or one revoked or expired meanwhile: nothing to read.
fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error(),
        Some(libc::ENOKEY | libc::EKEYREVOKED | libc::EKEYEXPIRED)
    )
}

/// The payload of key `serial`, however long (it may grow between asking and reading).
fn read(serial: libc::c_long) -> io::Result<Vec<u8>> {
    let mut buffer = vec![0u8; 4096];
    loop {
        // SAFETY: the kernel writes at most `buffer.len()` bytes into the buffer and returns the
        // payload's full size.
        let result = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_READ,
                serial,
                buffer.as_mut_ptr(),
                buffer.len(),
            )
        };
        let size = usize::try_from(check(result)?).unwrap_or(0);
        if size <= buffer.len() {
            buffer.truncate(size);
            return Ok(buffer);
        }
        buffer.resize(size, 0);
    }
}

/// What a failed system call means for the user.
fn explain(error: io::Error) -> String {
    match error.raw_os_error() {
        Some(libc::EDQUOT) => format!(
            "{error}: the user's kernel key quota is full (see /proc/sys/kernel/keys/maxbytes, \
             or choose --oauth-token-store file:PATH)"
        ),
        Some(libc::ENOSYS | libc::EPERM | libc::EACCES) => {
            format!("{error}: the kernel keyring is not available to this process")
        }
        _ => error.to_string(),
    }
}

impl TokenStore for KeyutilsStore {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let description = description(key, "read")?;
        let Some(serial) = search(&description).map_err(|e| Self::error("read", explain(e)))?
        else {
            return Ok(None);
        };
        let payload = match read(serial) {
            Ok(payload) => payload,
            Err(error) if is_absent(&error) => return Ok(None),
            Err(error) => return Err(Self::error("read", explain(error))),
        };
        match payload.split_first() {
            Some((&VERSION, value)) => Ok(Some(value.to_vec())),
            _ => Err(Self::error(
                "read",
                format_args!("the entry {SERVICE}:{key} has an unknown layout: sign in again"),
            )),
        }
    }

    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let description = description(key, "save")?;
        if value.len() + 1 > MAX_PAYLOAD {
            return Err(Self::error(
                "save",
                format_args!(
                    "{} bytes is more than a kernel key holds ({}): choose --oauth-token-store \
                     file:PATH",
                    value.len(),
                    MAX_PAYLOAD - 1
                ),
            ));
        }
        let mut payload = zeroize::Zeroizing::new(Vec::with_capacity(value.len() + 1));
        payload.push(VERSION);
        payload.extend_from_slice(value);
        // SAFETY: the strings are NUL-terminated and the payload pointer and length describe one
        // live buffer. add_key replaces the payload of an existing key of the same type and
        // description in that keyring, atomically.
        let result = unsafe {
            libc::syscall(
                libc::SYS_add_key,
                c"user".as_ptr(),
                description.as_ptr(),
                payload.as_ptr(),
                payload.len(),
                KEY_SPEC_USER_KEYRING,
            )
        };
        let serial = check(result).map_err(|e| Self::error("save", explain(e)))?;
        // SAFETY: plain integers.
        let result =
            unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_SETPERM, serial, PERMISSIONS) };
        check(result).map_err(|e| Self::error("save", explain(e)))?;
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let description = description(key, "delete")?;
        let Some(serial) = search(&description).map_err(|e| Self::error("delete", explain(e)))?
        else {
            return Ok(());
        };
        // SAFETY: plain integers. Unlinked from the user keyring, the key is garbage-collected.
        let result = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                KEYCTL_UNLINK,
                serial,
                KEY_SPEC_USER_KEYRING,
            )
        };
        match check(result) {
            Ok(_) => Ok(()),
            Err(error) if is_absent(&error) => Ok(()),
            Err(error) => Err(Self::error("delete", explain(error))),
        }
    }

    fn describe(&self) -> String {
        DESCRIBE.to_owned()
    }

    fn persistent(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> String {
        format!("unit-test-{}-{name}", std::process::id())
    }

    /// Whether this kernel lets us use keyrings at all, asked without the store's code. qemu-user
    /// (the arm64 suite of `make test-cross`) answers ENOSYS to every key system call, and
    /// container seccomp profiles often EPERM.
    fn kernel_has_keyrings() -> bool {
        // SAFETY: plain integers. KEYCTL_GET_KEYRING_ID (0) of the user keyring, not creating it.
        let result = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                0 as libc::c_long,
                KEY_SPEC_USER_KEYRING,
                0 as libc::c_long,
            )
        };
        let denied = matches!(
            check(result).map_err(|error| error.raw_os_error()),
            Err(Some(libc::ENOSYS | libc::EPERM))
        );
        !denied
    }

    /// Where the kernel allows keyrings (this machine kind: checked above by a direct system
    /// call, not through the store), the store must round-trip, also values larger than its first
    /// read buffer. Where they are denied (qemu-user in `make test-cross`), it must say so in one
    /// line, which `auto` turns into its fallback warning.
    #[test]
    fn round_trip_in_the_user_keyring_or_a_clear_error_where_keyrings_are_denied() {
        let store = KeyutilsStore;
        if !kernel_has_keyrings() {
            let error = store
                .save(&key("denied"), b"x")
                .err()
                .map(|e| e.to_string());
            let error = error.unwrap_or_default();
            assert!(
                error.contains("the kernel keyring is not available"),
                "{error}"
            );
            return;
        }
        let key = key("round-trip");
        assert_eq!(store.load(&key), Ok(None));
        assert_eq!(store.save(&key, b"first"), Ok(()));
        assert_eq!(store.save(&key, b"second, longer than the first"), Ok(()));
        assert_eq!(
            store.load(&key),
            Ok(Some(b"second, longer than the first".to_vec()))
        );
        assert_eq!(store.save(&key, b""), Ok(()));
        assert_eq!(store.load(&key), Ok(Some(Vec::new())));
        let large: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(store.save(&key, &large), Ok(()));
        assert_eq!(store.load(&key), Ok(Some(large)));
        assert_eq!(store.delete(&key), Ok(()));
        assert_eq!(store.load(&key), Ok(None));
        assert_eq!(store.delete(&key), Ok(()));
    }

    #[test]
    fn oversized_values_are_refused_with_advice() {
        let error = KeyutilsStore
            .save(&key("oversized"), &vec![0u8; MAX_PAYLOAD])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("file:PATH"), "{error}");
    }
}
