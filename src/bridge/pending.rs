//! The in-flight table: every client request id that still needs exactly one answer.
//!
//! A response is written to stdout only if its id is taken out of this table, so a response that
//! arrives twice (a replayed stream) or late (after the bridge already answered with an error) is
//! dropped, and a request the bridge fails is answered once.

use crate::sync::lock;
use std::collections::HashSet;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::jsonrpc::Id;

#[derive(Default)]
pub struct Pending {
    ids: Mutex<HashSet<Id>>,
    /// Signalled whenever an id is answered, for callers that wait for one (initialize).
    answered: Condvar,
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
        let taken = self.lock().remove(id);
        if taken {
            self.answered.notify_all();
        }
        taken
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All ids in flight (to fail them when a stream that carries their answers dies).
    pub fn ids(&self) -> Vec<Id> {
        self.lock().iter().cloned().collect()
    }

    /// Block until `id` is no longer in flight or `deadline` passes; true if it was answered.
    pub fn wait_answered(&self, id: &Id, deadline: Instant) -> bool {
        let mut ids = self.lock();
        while ids.contains(id) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            ids = match self.answered.wait_timeout(ids, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
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
