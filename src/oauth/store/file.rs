//! The file store (`--oauth-token-store file:PATH`): one JSON file holding every key, for users
//! who ask for it by name.
//!
//! The file is private from its first byte: each save writes a new file created with mode 0600
//! (never a wider file narrowed afterwards), syncs it and renames it over the old one, so a reader
//! sees the old or the new file whole, never a half-written one. Writers in several processes take
//! turns through `PATH.lock` (an OS file lock), so that two servers' bridges saving at once do not
//! lose each other's entry. On Windows the file inherits the ACL of its directory (the user
//! profile's is private).

use super::{StoreError, TokenStore};
use crate::sync::lock;
use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Marks a file as ours; anything else at PATH is left alone.
const FORMAT: &str = "mcp-secure-remote tokens 1";
/// How long a save waits for another process's save (each takes milliseconds).
const LOCK_WAIT: Duration = Duration::from_secs(5);
const LOCK_POLL: Duration = Duration::from_millis(20);

pub struct FileStore {
    path: PathBuf,
    /// Serialises this process's writers (the OS lock serialises processes).
    writing: Mutex<()>,
}

#[derive(Serialize, Deserialize, Default)]
struct Contents {
    format: String,
    /// Key -> base64 of the value.
    entries: BTreeMap<String, String>,
}

impl Drop for Contents {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        for value in self.entries.values_mut() {
            value.zeroize();
        }
    }
}

impl FileStore {
    pub fn new(path: PathBuf) -> Self {
        FileStore {
            path,
            writing: Mutex::new(()),
        }
    }

    fn error(&self, action: &str, detail: impl std::fmt::Display) -> StoreError {
        StoreError::new(action, &self.describe(), detail)
    }

    /// The file's entries; none if it does not exist or is empty (a `touch`ed file).
    fn read(&self, action: &str) -> Result<Contents, StoreError> {
        let path = &self.path;
        let bytes = match fs::read(path) {
            Ok(bytes) => Zeroizing::new(bytes),
            Err(error) if error.kind() == ErrorKind::NotFound => return Ok(Contents::default()),
            Err(error) => return Err(self.error(action, error)),
        };
        check_private(path).map_err(|detail| self.error(action, detail))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Contents::default());
        }
        match serde_json::from_slice::<Contents>(&bytes) {
            Ok(contents) if contents.format == FORMAT => Ok(contents),
            _ => Err(self.error(
                action,
                format_args!(
                    "{} is not a token file written by mcp-secure-remote: move it away or name \
                     another file",
                    path.display()
                ),
            )),
        }
    }

    /// Replace the file with `contents`, atomically, created 0600.
    fn write(&self, contents: &Contents) -> Result<(), StoreError> {
        let json = Zeroizing::new(
            serde_json::to_vec_pretty(contents).map_err(|error| self.error("save", error))?,
        );
        let temp = self.sibling(".tmp");
        let written = write_private(&temp, &json).and_then(|()| fs::rename(&temp, &self.path));
        if let Err(error) = written {
            let _ = fs::remove_file(&temp);
            return Err(self.error("save", error));
        }
        // Make the rename itself durable (best effort: not every file system can sync a directory).
        #[cfg(unix)]
        if let Ok(dir) = File::open(self.parent()) {
            let _ = dir.sync_all();
        }
        Ok(())
    }

    /// Run `change` on the entries under both locks and write the result if it changed anything.
    fn update(
        &self,
        action: &str,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> bool,
    ) -> Result<(), StoreError> {
        let _in_process = lock(&self.writing);
        let _across_processes = self.lock_file(action)?;
        let mut contents = self.read(action)?;
        contents.format = FORMAT.to_owned();
        if change(&mut contents.entries) {
            self.write(&contents)?;
        }
        Ok(())
    }

    /// `PATH.lock`, locked; released when the file is closed. It stays on disk (empty): removing
    /// it would let a third process lock a new file while a second still holds the old one.
    fn lock_file(&self, action: &str) -> Result<File, StoreError> {
        let path = self.sibling(".lock");
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|error| {
                self.error(
                    action,
                    format_args!("cannot open {}: {error}", path.display()),
                )
            })?;
        let deadline = Instant::now() + LOCK_WAIT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(LOCK_POLL);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(self.error(
                        action,
                        format_args!(
                            "another process has held {} for {} s: is it stuck?",
                            path.display(),
                            LOCK_WAIT.as_secs()
                        ),
                    ))
                }
                Err(TryLockError::Error(error)) => {
                    return Err(self.error(
                        action,
                        format_args!("cannot lock {}: {error}", path.display()),
                    ))
                }
            }
        }
    }

    /// PATH with `suffix` appended to its file name (same directory: a rename stays atomic).
    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(OsString::from)
            .unwrap_or_default();
        name.push(suffix);
        self.parent().join(name)
    }

    fn parent(&self) -> &Path {
        match self.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        }
    }
}

impl TokenStore for FileStore {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let contents = self.read("read")?;
        match contents.entries.get(key) {
            None => Ok(None),
            Some(encoded) => Base64::decode_vec(encoded).map(Some).map_err(|_| {
                self.error(
                    "read",
                    format_args!(
                        "the entry in {} is damaged: sign in again",
                        self.path.display()
                    ),
                )
            }),
        }
    }

    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let encoded = Base64::encode_string(value);
        self.update("save", |entries| {
            entries.insert(key.to_owned(), encoded);
            true
        })
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        if !self.path.exists() {
            return Ok(());
        }
        self.update("delete", |entries| entries.remove(key).is_some())
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn persistent(&self) -> bool {
        true
    }
}

/// Options that create a file readable by its owner only, from the start.
fn private_options() -> OpenOptions {
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Write `bytes` to a new file at `path` (a leftover from a crashed save is replaced: the caller
/// holds the lock, so no one else is writing it) and sync it to disk.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut file = private_options().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Refuse a file others may read: its tokens would already be exposed, and we should not keep
/// using it silently.
#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let metadata = fs::metadata(path).map_err(|error| error.to_string())?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} can be read or written by other users (mode {mode:04o}): run chmod 600 on it, \
             or delete it and sign in again",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), String> {
    Ok(())
}
