//! The memory store: always works, shared with no other process, gone when the bridge exits.

use super::{StoreError, TokenStore};
use crate::sync::lock;
use std::collections::HashMap;
use std::sync::Mutex;
use zeroize::Zeroizing;

/// Values are wiped from memory when replaced, deleted or dropped.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Zeroizing<Vec<u8>>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }
}

impl TokenStore for MemoryStore {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(lock(&self.entries).get(key).map(|value| value.to_vec()))
    }

    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        lock(&self.entries).insert(key.to_owned(), Zeroizing::new(value.to_vec()));
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.entries).remove(key);
        Ok(())
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }

    fn persistent(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_each_key_apart_until_deleted() {
        let store = MemoryStore::new();
        assert_eq!(store.load("a"), Ok(None));
        assert_eq!(store.save("a", b"one"), Ok(()));
        assert_eq!(store.save("b", b""), Ok(()));
        assert_eq!(store.save("a", b"two"), Ok(()));
        assert_eq!(store.load("a"), Ok(Some(b"two".to_vec())));
        assert_eq!(store.load("b"), Ok(Some(Vec::new())));
        assert_eq!(store.delete("a"), Ok(()));
        assert_eq!(store.delete("a"), Ok(()));
        assert_eq!(store.load("a"), Ok(None));
        assert_eq!(store.load("b"), Ok(Some(Vec::new())));
    }
}
