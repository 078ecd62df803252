//! The in-flight table: every client request id that still needs exactly one answer.
//!
//! A response is written to stdout only if its id is taken out of this table, so a response that
//! arrives twice (a replayed stream) or late (after the bridge already answered with an error) is
//! dropped, and a request the bridge fails is answered once.

use crate::sync::lock;
use std::collections::HashSet;
use std::sync::Mutex;

use crate::jsonrpc::Id;

#[derive(Default)]
pub struct Pending {
    ids: Mutex<HashSet<Id>>,
}

impl Pending {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a request; false when a request with the same id is already in flight.
    pub fn insert(&self, id: Id) -> bool {
        self.lock().insert(id)
    }

    /// Take `id` out of the table; true means the caller owns its one answer.
    pub fn take(&self, id: &Id) -> bool {
        self.lock().remove(id)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Id>> {
        // A panic elsewhere must not take the table down with it: the data is still consistent.
        lock(&self.ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_is_answered_once() {
        let p = Pending::new();
        assert!(p.insert(Id::Num(0)));
        assert!(!p.insert(Id::Num(0)), "duplicate id in flight");
        assert!(p.take(&Id::Num(0)));
        assert!(!p.take(&Id::Num(0)), "second answer is dropped");
        assert!(p.insert(Id::Str("a".into())));
        assert!(!p.take(&Id::Str("b".into())));
        assert_eq!(p.len(), 1);
    }
}
