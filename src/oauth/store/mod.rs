//! Where the sign-in tokens live: in memory always; across restarts in the OS credential store
//! (macOS Keychain, Windows Credential Manager, the Linux kernel keyring), or in a file only when
//! the user names one.
//!
//! A store keeps opaque byte blobs (the flow serialises its own JSON) under key strings; it never
//! logs a value. Every backend answers `Ok(None)` for a key it does not hold.

#[cfg(any(windows, test))]
mod chunks;
mod file;
#[cfg(target_os = "macos")]
mod keychain;
#[cfg(target_os = "linux")]
mod keyutils;
mod memory;
#[cfg(windows)]
mod wincred;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub use file::FileStore;
pub use memory::MemoryStore;

/// The name every OS-store entry is filed under (service, target-name prefix, key description).
const SERVICE: &str = "mcp-secure-remote";

pub trait TokenStore: Send + Sync {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// What the store is, for messages: "Linux kernel keyring", "file /path/x.json", "memory"…
    fn describe(&self) -> String;
    /// Whether what is saved survives a restart of the bridge.
    fn persistent(&self) -> bool;
}

/// A failed store operation, as one line that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreError(String);

impl StoreError {
    /// "cannot {action} the sign-in tokens in {store}: {detail}".
    pub(crate) fn new(action: &str, store: &str, detail: impl fmt::Display) -> Self {
        StoreError(format!(
            "cannot {action} the sign-in tokens in the {store}: {detail}"
        ))
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StoreError {}

/// `--oauth-token-store auto|memory|file:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    Auto,
    Memory,
    File(PathBuf),
}

impl StoreChoice {
    pub fn parse(spec: &str) -> Result<StoreChoice, String> {
        match spec {
            "auto" => Ok(StoreChoice::Auto),
            "memory" => Ok(StoreChoice::Memory),
            _ => match spec.strip_prefix("file:") {
                Some("") => Err(
                    "--oauth-token-store file: needs a path, as in file:/home/me/.mcp-tokens.json"
                        .to_owned(),
                ),
                Some(path) => Ok(StoreChoice::File(PathBuf::from(path))),
                None => Err(format!(
                    "--oauth-token-store {spec} is not a store: use auto (the OS credential \
                     store), memory, or file:PATH"
                )),
            },
        }
    }
}

/// Auto = the OS credential store if one works here (probed once: a save, load and delete), else
/// memory plus a one-line warning that the login will not survive a restart (returned: the caller
/// logs it once).
pub fn open(choice: &StoreChoice) -> (Arc<dyn TokenStore>, Option<String>) {
    match choice {
        StoreChoice::Memory => (Arc::new(MemoryStore::new()), None),
        StoreChoice::File(path) => (Arc::new(FileStore::new(path.clone())), None),
        StoreChoice::Auto => match os_store() {
            Ok(store) => (store, None),
            Err(reason) => (
                Arc::new(MemoryStore::new()),
                Some(format!(
                    "no OS credential store works here ({reason}): the sign-in is kept in memory \
                     and will not survive a restart of the bridge; --oauth-token-store file:PATH \
                     keeps it in a file (mode 0600)"
                )),
            ),
        },
    }
}

/// This system's credential store, if a round trip through it works now.
fn os_store() -> Result<Arc<dyn TokenStore>, String> {
    #[cfg(target_os = "linux")]
    let store: Arc<dyn TokenStore> = Arc::new(keyutils::KeyutilsStore);
    #[cfg(target_os = "macos")]
    let store: Arc<dyn TokenStore> = Arc::new(keychain::KeychainStore);
    #[cfg(windows)]
    let store: Arc<dyn TokenStore> = Arc::new(wincred::CredentialStore);
    #[cfg(any(target_os = "linux", target_os = "macos", windows))]
    {
        probe(store.as_ref()).map_err(|error| error.to_string())?;
        Ok(store)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    Err("this system has no credential store the bridge supports".to_owned())
}

/// Save, read back and delete a throw-away entry (named per process: probes run concurrently).
#[cfg_attr(
    not(any(target_os = "linux", target_os = "macos", windows)),
    allow(dead_code)
)]
fn probe(store: &dyn TokenStore) -> Result<(), StoreError> {
    let key = format!("probe-{}", std::process::id());
    let value = b"probe";
    store.save(&key, value)?;
    let read = store.load(&key);
    let deleted = store.delete(&key);
    match read? {
        Some(read) if read == value => deleted,
        _ => Err(StoreError::new(
            "read back",
            &store.describe(),
            "what was saved did not come back",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_store_choices() {
        assert_eq!(StoreChoice::parse("auto"), Ok(StoreChoice::Auto));
        assert_eq!(StoreChoice::parse("memory"), Ok(StoreChoice::Memory));
        assert_eq!(
            StoreChoice::parse("file:/tmp/a b.json"),
            Ok(StoreChoice::File(PathBuf::from("/tmp/a b.json")))
        );
        let empty = StoreChoice::parse("file:").err().unwrap_or_default();
        assert!(empty.contains("needs a path"), "{empty}");
        let other = StoreChoice::parse("keychain").err().unwrap_or_default();
        assert!(
            other.contains("auto") && other.contains("file:PATH"),
            "{other}"
        );
    }

    #[test]
    fn memory_choice_is_not_persistent_and_has_no_warning() {
        let (store, warning) = open(&StoreChoice::Memory);
        assert_eq!(store.describe(), "memory");
        assert!(!store.persistent());
        assert_eq!(warning, None);
    }

    #[test]
    fn file_choice_describes_its_path() {
        let (store, warning) = open(&StoreChoice::File(PathBuf::from("/x/tokens.json")));
        assert_eq!(store.describe(), "file /x/tokens.json");
        assert!(store.persistent());
        assert_eq!(warning, None);
    }

    /// Auto either finds a working persistent store or says, once, that nothing will survive.
    #[test]
    fn auto_is_persistent_or_warns() {
        let (store, warning) = open(&StoreChoice::Auto);
        match warning {
            None => assert!(store.persistent(), "{}", store.describe()),
            Some(warning) => {
                assert_eq!(store.describe(), "memory");
                assert!(warning.contains("will not survive a restart"), "{warning}");
            }
        }
    }

    #[test]
    fn probe_fails_on_a_store_that_loses_what_it_saves() {
        struct Forgetful;
        impl TokenStore for Forgetful {
            fn load(&self, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
                Ok(None)
            }
            fn save(&self, _: &str, _: &[u8]) -> Result<(), StoreError> {
                Ok(())
            }
            fn delete(&self, _: &str) -> Result<(), StoreError> {
                Ok(())
            }
            fn describe(&self) -> String {
                "forgetful store".into()
            }
            fn persistent(&self) -> bool {
                true
            }
        }
        let error = probe(&Forgetful)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("forgetful store"), "{error}");
        assert!(probe(&MemoryStore::new()).is_ok());
    }
}
