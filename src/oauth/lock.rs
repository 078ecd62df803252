//! STUB (replaced by the oauthio branch): the per-server lock.
use std::time::Instant;
#[derive(Debug)]
pub struct LockError(pub String);
impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(&self.0) }
}
pub struct ServerLock;
pub fn try_lock(_key: &str) -> Result<Option<ServerLock>, LockError> { Ok(Some(ServerLock)) }
pub fn lock_waiting(_key: &str, _deadline: Instant, _stopped: &dyn Fn() -> bool, _between: &mut dyn FnMut() -> bool) -> Result<Option<ServerLock>, LockError> { Ok(Some(ServerLock)) }
