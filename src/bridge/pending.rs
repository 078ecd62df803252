//! The in-flight table: every client request id that still needs exactly one answer.
//!
//! A response is written to stdout only if its id is taken out of this table, so a response that
//! arrives twice (a replayed stream) or late (after the bridge already answered with an error) is
//! dropped, and a request the bridge fails is answered once.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use crate::jsonrpc::Id;

/// What we remember about a request in flight.
#[derive(Debug, Clone)]
pub struct InFlight {
    pub method: String,
    pub since: Instant,
}

#[derive(Default)]
pub struct Pending {
    map: Mutex<HashMap<Id, InFlight>>,
    /// Signalled whenever an id is answered, for callers that wait for one (initialize).
    answered: Condvar,
}

impl Pending {
    pub fn new() -> Self {
        Self::default()
    }

    /// Record a request; false when a request with the same id is already in flight.
    pub fn insert(&self, id: Id, method: &str) -> bool {
        let mut map = self.lock();
        if map.contains_key(&id) {
            return false;
        }
        map.insert(
            id,
            InFlight {
                method: method.to_string(),
                since: Instant::now(),
            },
        );
        true
    }

    /// Take `id` out of the table; true means the caller owns its one answer.
    pub fn take(&self, id: &Id) -> bool {
        let taken = self.lock().remove(id).is_some();
        if taken {
            self.answered.notify_all();
        }
        taken
    }

    pub fn contains(&self, id: &Id) -> bool {
        self.lock().contains_key(id)
    }

    /// The method of a request still in flight.
    pub fn method_of(&self, id: &Id) -> Option<String> {
        self.lock().get(id).map(|f| f.method.clone())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// All ids in flight (to fail them when a stream that carries their answers dies).
    pub fn ids(&self) -> Vec<Id> {
        self.lock().keys().cloned().collect()
    }

    /// Block until `id` is no longer in flight or `deadline` passes; true if it was answered.
    pub fn wait_answered(&self, id: &Id, deadline: Instant) -> bool {
        let mut map = self.lock();
        while map.contains_key(id) {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            map = match self.answered.wait_timeout(map, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        true
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Id, InFlight>> {
        // A panic elsewhere must not take the table down with it: the data is still consistent.
        self.map
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_is_answered_once() {
        let p = Pending::new();
        assert!(p.insert(Id::Num(0), "ping"));
        assert!(!p.insert(Id::Num(0), "ping"), "duplicate id in flight");
        assert!(p.take(&Id::Num(0)));
        assert!(!p.take(&Id::Num(0)), "second answer is dropped");
        assert!(p.insert(Id::Str("a".into()), "tools/call"));
        assert!(!p.take(&Id::Str("b".into())));
        assert_eq!(p.len(), 1);
    }
}
