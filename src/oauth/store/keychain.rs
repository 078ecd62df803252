//! The macOS Keychain: one generic password per key (service "mcp-secure-remote", account = key),
//! in the user's login keychain.
//!
//! After an upgrade of an unsigned or ad-hoc-signed binary, macOS may ask once whether the new
//! binary may read the entry: the Keychain ties access to the code signature.

use super::{StoreError, TokenStore, SERVICE};
use security_framework::base::Error;
use security_framework::passwords::{
    delete_generic_password, generic_password, set_generic_password, PasswordOptions,
};

/// `errSecItemNotFound`: no entry for this service and account.
const ITEM_NOT_FOUND: i32 = -25300;
const DESCRIBE: &str = "macOS Keychain";

pub struct KeychainStore;

fn explain(error: Error) -> String {
    match error.message() {
        Some(message) => format!("{message} (OSStatus {})", error.code()),
        None => format!("OSStatus {}", error.code()),
    }
}

impl TokenStore for KeychainStore {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match generic_password(PasswordOptions::new_generic_password(SERVICE, key)) {
            Ok(value) => Ok(Some(value)),
            Err(error) if error.code() == ITEM_NOT_FOUND => Ok(None),
            Err(error) => Err(StoreError::new("read", DESCRIBE, explain(error))),
        }
    }

    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        set_generic_password(SERVICE, key, value)
            .map_err(|error| StoreError::new("save", DESCRIBE, explain(error)))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match delete_generic_password(SERVICE, key) {
            Ok(()) => Ok(()),
            Err(error) if error.code() == ITEM_NOT_FOUND => Ok(()),
            Err(error) => Err(StoreError::new("delete", DESCRIBE, explain(error))),
        }
    }

    fn describe(&self) -> String {
        DESCRIBE.to_owned()
    }

    fn persistent(&self) -> bool {
        true
    }
}
