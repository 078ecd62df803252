//! STUB (replaced by the oauthio branch): token stores.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
#[derive(Debug)]
pub struct StoreError(pub String);
impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.0) }
}
pub trait TokenStore: Send + Sync {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    fn delete(&self, key: &str) -> Result<(), StoreError>;
    fn describe(&self) -> String;
    fn persistent(&self) -> bool;
}
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice { Auto, Memory, File(PathBuf) }
impl StoreChoice {
    pub fn parse(spec: &str) -> Result<StoreChoice, String> {
        match spec { "auto" => Ok(StoreChoice::Auto), "memory" => Ok(StoreChoice::Memory),
            s => s.strip_prefix("file:").filter(|p| !p.is_empty()).map(|p| StoreChoice::File(PathBuf::from(p))).ok_or_else(|| format!("unknown token store '{s}'")) }
    }
}
#[derive(Default)]
struct Memory(Mutex<HashMap<String, Vec<u8>>>);
impl TokenStore for Memory {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> { Ok(self.0.lock().map_err(|_| StoreError("poisoned".into()))?.get(key).cloned()) }
    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> { self.0.lock().map_err(|_| StoreError("poisoned".into()))?.insert(key.into(), value.to_vec()); Ok(()) }
    fn delete(&self, key: &str) -> Result<(), StoreError> { self.0.lock().map_err(|_| StoreError("poisoned".into()))?.remove(key); Ok(()) }
    fn describe(&self) -> String { "memory".into() }
    fn persistent(&self) -> bool { false }
}
struct File(PathBuf);
impl TokenStore for File {
    fn load(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Ok(bytes) = std::fs::read(&self.0) else { return Ok(None) };
        let map: HashMap<String, String> = serde_json::from_slice(&bytes).unwrap_or_default();
        Ok(map.get(key).map(|v| v.as_bytes().to_vec()))
    }
    fn save(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let mut map: HashMap<String, String> = std::fs::read(&self.0).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        map.insert(key.into(), String::from_utf8_lossy(value).into_owned());
        std::fs::write(&self.0, serde_json::to_vec(&map).unwrap_or_default()).map_err(|e| StoreError(e.to_string()))
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let mut map: HashMap<String, String> = std::fs::read(&self.0).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
        map.remove(key);
        std::fs::write(&self.0, serde_json::to_vec(&map).unwrap_or_default()).map_err(|e| StoreError(e.to_string()))
    }
    fn describe(&self) -> String { format!("file {}", self.0.display()) }
    fn persistent(&self) -> bool { true }
}
pub fn open(choice: &StoreChoice) -> (Arc<dyn TokenStore>, Option<String>) {
    match choice {
        StoreChoice::File(p) => (Arc::new(File(p.clone())), None),
        StoreChoice::Memory => (Arc::new(Memory::default()), None),
        StoreChoice::Auto => (Arc::new(Memory::default()), Some("no OS credential store here: the login will not survive a restart".into())),
    }
}
