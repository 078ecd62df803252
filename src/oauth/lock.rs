//! One sign-in per server, however many bridge processes run: an OS file lock per server key.
//!
//! Agents start several bridges for one server. Without coordination each opens a browser, they
//! fight over a callback port, and two of them redeem the same rotating refresh token, which
//! makes the authorization server revoke the whole family (mcp-remote's largest source of bugs).
//! The holder of `<state dir>/oauth/<hash of key>.lock` signs in or refreshes; the others wait,
//! re-reading the token store between attempts. The lock is `flock`/`LockFileEx` through
//! `std::fs::File::try_lock`: the OS releases it when its holder exits or dies, so there is no
//! stale lock to expire (mcp-remote's 30-minute expiry went stale while its holder lived).

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The first pause between attempts; each pause is 1.5 times the last, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// How often a pause looks at `stopped()`.
const STOP_POLL: Duration = Duration::from_millis(50);

/// The lock of one server; released when dropped (closing the file releases it).
#[derive(Debug)]
pub struct ServerLock {
    _file: File,
    path: PathBuf,
}

impl ServerLock {
    /// The lock file, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug)]
pub enum LockError {
    /// Neither the state directory's variable nor a home directory is set.
    NoStateDir,
    /// The directory or the lock file cannot be created, opened or locked.
    Io { path: PathBuf, source: io::Error },
    /// [`lock_waiting`]'s deadline passed while another process held the lock.
    TimedOut { path: PathBuf },
    /// [`lock_waiting`]'s `stopped()` became true.
    Stopped,
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoStateDir => write!(
                f,
                "cannot find a directory for the sign-in lock: set {}",
                STATE_DIR_HINT
            ),
            Self::Io { path, source } => write!(
                f,
                "cannot use the sign-in lock {}: {source}: make its directory writable, or set {}",
                path.display(),
                STATE_DIR_HINT
            ),
            Self::TimedOut { path } => write!(
                f,
                "another bridge process is still signing in to this server (it holds {}): \
                 finish the sign-in it opened in the browser, then retry",
                path.display()
            ),
            Self::Stopped => write!(f, "stopped while waiting for the sign-in lock"),
        }
    }
}

impl std::error::Error for LockError {}

#[cfg(windows)]
const STATE_DIR_HINT: &str = "LOCALAPPDATA";
#[cfg(target_os = "macos")]
const STATE_DIR_HINT: &str = "HOME";
#[cfg(not(any(windows, target_os = "macos")))]
const STATE_DIR_HINT: &str = "XDG_STATE_HOME or HOME";

/// This program's state directory: `$XDG_STATE_HOME/mcp-secure-remote` or
/// `~/.local/state/mcp-secure-remote` (Linux, BSD), `~/Library/Application Support/mcp-secure-remote`
/// (macOS), `%LOCALAPPDATA%\mcp-secure-remote` (Windows).
pub fn state_dir() -> Result<PathBuf, LockError> {
    state_dir_from(&|name| std::env::var_os(name)).ok_or(LockError::NoStateDir)
}

/// [`state_dir`] over any environment. Relative values are ignored, as the XDG specification
/// says: a lock beside the current directory would not be found by a bridge started elsewhere.
fn state_dir_from(env: &dyn Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let absolute = |name: &str| {
        env(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    let base = if cfg!(windows) {
        absolute("LOCALAPPDATA")?
    } else if cfg!(target_os = "macos") {
        absolute("HOME")?
            .join("Library")
            .join("Application Support")
    } else {
        absolute("XDG_STATE_HOME")
            .or_else(|| absolute("HOME").map(|home| home.join(".local").join("state")))?
    };
    Some(base.join("mcp-secure-remote"))
}

/// The lock file of `key` under `state_dir`: a stable hash, so that every version of the bridge
/// and every process finds the same file whatever characters the key holds.
pub fn lock_path(state_dir: &Path, key: &str) -> PathBuf {
    state_dir
        .join("oauth")
        .join(format!("{:016x}.lock", fnv1a(key.as_bytes())))
}

/// 64-bit FNV-1a: fixed by its definition (std's hasher may change between Rust releases). Not a
/// security boundary: two keys that collided would only take turns.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Take the lock of `key` if no other process (or handle) holds it: `Ok(None)` when one does.
/// The lock belongs to the open file, not the process: a second `try_lock` in the same process
/// also gets `None` while the first [`ServerLock`] lives (the flow's own single-flight decides
/// which of its threads asks).
pub fn try_lock(key: &str) -> Result<Option<ServerLock>, LockError> {
    try_lock_at(&state_dir()?, key)
}

/// [`try_lock`] under a given state directory.
pub fn try_lock_at(state_dir: &Path, key: &str) -> Result<Option<ServerLock>, LockError> {
    let path = lock_path(state_dir, key);
    let io_error = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        create_private_dir(dir).map_err(io_error)?;
    }
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&path).map_err(io_error)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(ServerLock { _file: file, path })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(source)) => Err(io_error(source)),
    }
}

/// The directory and its parents, private to the user where they are new.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Poll (200 ms growing to 2 s) until acquired, `deadline`, or `stopped()`; `between` is called
/// after each failed attempt so the caller can re-read the store (another process may have
/// finished the login), and ends the wait by returning true.
///
/// `Ok(Some)`: acquired. `Ok(None)`: `between` returned true. `Err(TimedOut)` at the deadline,
/// `Err(Stopped)` within 50 ms of `stopped()`.
pub fn lock_waiting(
    key: &str,
    deadline: Instant,
    stopped: &dyn Fn() -> bool,
    between: &mut dyn FnMut() -> bool,
) -> Result<Option<ServerLock>, LockError> {
    lock_waiting_at(&state_dir()?, key, deadline, stopped, between)
}

/// [`lock_waiting`] under a given state directory.
pub fn lock_waiting_at(
    state_dir: &Path,
    key: &str,
    deadline: Instant,
    stopped: &dyn Fn() -> bool,
    between: &mut dyn FnMut() -> bool,
) -> Result<Option<ServerLock>, LockError> {
    let mut pause = FIRST_PAUSE;
    loop {
        if stopped() {
            return Err(LockError::Stopped);
        }
        if let Some(lock) = try_lock_at(state_dir, key)? {
            return Ok(Some(lock));
        }
        if between() {
            return Ok(None);
        }
        let wake = Instant::now() + pause;
        loop {
            if stopped() {
                return Err(LockError::Stopped);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(LockError::TimedOut {
                    path: lock_path(state_dir, key),
                });
            }
            if now >= wake {
                break;
            }
            std::thread::sleep(STOP_POLL.min(wake - now).min(deadline - now));
        }
        pause = (pause * 3 / 2).min(MAX_PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            pairs
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[cfg(not(any(windows, target_os = "macos")))]
    #[test]
    fn state_dir_follows_xdg_then_home() {
        assert_eq!(
            state_dir_from(&env(&[("XDG_STATE_HOME", "/s"), ("HOME", "/h")])),
            Some(PathBuf::from("/s/mcp-secure-remote"))
        );
        assert_eq!(
            state_dir_from(&env(&[("XDG_STATE_HOME", "rel"), ("HOME", "/h")])),
            Some(PathBuf::from("/h/.local/state/mcp-secure-remote"))
        );
        assert_eq!(state_dir_from(&env(&[("HOME", "")])), None);
        assert_eq!(state_dir_from(&env(&[])), None);
    }

    #[cfg(target_os = "macos")]
    #[test]
    fn state_dir_is_in_application_support() {
        assert_eq!(
            state_dir_from(&env(&[("HOME", "/Users/u")])),
            Some(PathBuf::from(
                "/Users/u/Library/Application Support/mcp-secure-remote"
            ))
        );
    }

    #[cfg(windows)]
    #[test]
    fn state_dir_is_in_local_app_data() {
        assert_eq!(
            state_dir_from(&env(&[("LOCALAPPDATA", r"C:\Users\u\AppData\Local")])),
            Some(PathBuf::from(r"C:\Users\u\AppData\Local\mcp-secure-remote"))
        );
        assert_eq!(state_dir_from(&env(&[])), None);
    }

    #[test]
    fn lock_paths_are_stable_per_key() {
        let dir = Path::new("/state");
        // FNV-1a's published test vector: "a" -> af63dc4c8601ec8c.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(
            lock_path(dir, "a"),
            Path::new("/state/oauth/af63dc4c8601ec8c.lock")
        );
        assert_ne!(
            lock_path(dir, "https://mcp.test/|https://as.test"),
            lock_path(dir, "https://mcp.test/|https://as2.test")
        );
    }
}
