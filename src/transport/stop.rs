//! Shutdown, as every thread sees it: one shared [`Stop`] that the owner flips and that every
//! wait of the transport (backoff, `retry:`, reconnects) watches, so that no sleep outlives the
//! client.
//!
//! Two steps: *closing* (stdin reached EOF: answers in flight may still arrive, but nothing new
//! is started: no re-initialize, no reconnect) and *stopped* (streams stop reading; every wait
//! returns at once).

use crate::sync::lock;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

#[derive(Default)]
pub struct Stop {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    closing: bool,
    stopped: bool,
    /// Bumped by [`Stop::nudge`]: sleepers wake early to look again (a new session exists).
    nudges: u64,
}

impl Stop {
    pub fn new() -> Self {
        Self::default()
    }

    /// The client is done sending: finish what is in flight, start nothing new.
    pub fn close(&self) {
        self.lock().closing = true;
        self.changed.notify_all();
    }

    /// Stop everything now.
    pub fn stop(&self) {
        {
            let mut state = self.lock();
            state.closing = true;
            state.stopped = true;
        }
        self.changed.notify_all();
    }

    /// True once [`Stop::stop`] was called.
    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// True once the client closed stdin (or the bridge stopped): no recovery may start.
    pub fn is_closing(&self) -> bool {
        self.lock().closing
    }

    /// Wake every sleeper early (they re-check what they wait for).
    pub fn nudge(&self) {
        self.lock().nudges += 1;
        self.changed.notify_all();
    }

    /// Sleep for `duration` unless stopped or nudged first. False when stopped.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        let mut state = self.lock();
        let nudges = state.nudges;
        while !state.stopped && state.nudges == nudges {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            state = match self.changed.wait_timeout(state, deadline - now) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        !state.stopped
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Plain flags: a panicking holder cannot leave them inconsistent.
        lock(&self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::thread;

    #[test]
    fn a_long_sleep_ends_when_stopped() {
        let stop = Arc::new(Stop::new());
        let sleeper = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || stop.sleep(Duration::from_secs(3600)))
        };
        thread::sleep(Duration::from_millis(20));
        stop.stop();
        assert!(!sleeper.join().unwrap(), "a stopped sleep reports it");
        assert!(stop.is_closing() && stop.is_stopped());
    }

    #[test]
    fn a_nudge_wakes_sleepers_without_stopping_them() {
        let stop = Arc::new(Stop::new());
        let sleeper = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || stop.sleep(Duration::from_secs(3600)))
        };
        // Nudge until it wakes: a nudge before the sleeper starts waiting is not for it.
        while !sleeper.is_finished() {
            stop.nudge();
            thread::sleep(Duration::from_millis(5));
        }
        assert!(sleeper.join().unwrap());
        assert!(!stop.is_closing());
        assert!(
            stop.sleep(Duration::from_millis(1)),
            "a short sleep runs out"
        );
    }
}
