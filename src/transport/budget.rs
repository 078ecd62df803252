//! One byte budget for every message the bridge holds at once (`--memory-budget`): stdin lines
//! on their way to the server, server messages being read, and frames queued for stdout.
//!
//! It is how back-pressure reaches the sockets. A stream reserves room before it reads from its
//! socket; when the budget is spent it stops reading (TCP then slows the server) until the
//! stdout writer has written something and given its room back. A client that stops reading
//! stdout therefore slows the server instead of filling memory.
//!
//! A message being read can only wait for room that something will give back: frames queued for
//! stdout. When the budget is held by messages that are all still being read (say 40 huge
//! events arriving at once), waiting would be a deadlock, so the reservation fails instead and
//! that one message's request gets an error.

use crate::sync::lock;
use std::fmt;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::stop::Stop;

/// How long a wait sleeps before it looks at the [`Stop`] again.
const STOP_POLL: Duration = Duration::from_millis(50);
/// Bookkeeping counted for every held message besides its bytes, so that a flood of tiny
/// frames is bounded too.
pub const PER_MESSAGE_OVERHEAD: usize = 128;

pub struct Budget {
    limit: usize,
    state: Mutex<Counts>,
    freed: Condvar,
    stop: Arc<Stop>,
}

#[derive(Default)]
struct Counts {
    /// All reserved bytes.
    used: usize,
    /// Of which: frames waiting for the stdout writer (they will be given back).
    queued: usize,
}

/// What a reservation is for: only queued frames are sure to be given back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Use {
    #[default]
    Reading,
    Queued,
}

/// The budget is spent by messages that are still being read: this one cannot grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    pub limit: usize,
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the messages in flight exceed the {} byte memory budget; the message was dropped \
             (raise it with --memory-budget if such large messages are expected at once)",
            self.limit
        )
    }
}

impl Budget {
    pub fn new(limit: usize, stop: Arc<Stop>) -> Arc<Self> {
        Arc::new(Self {
            limit,
            state: Mutex::new(Counts::default()),
            freed: Condvar::new(),
            stop,
        })
    }

    /// Bytes reserved now (for tests and `--debug`).
    pub fn used(&self) -> usize {
        self.lock().used
    }

    /// An empty reservation to grow while a message is read.
    pub fn reading(self: &Arc<Self>) -> Held {
        Held {
            budget: Some(Arc::clone(self)),
            bytes: 0,
            use_: Use::Reading,
        }
    }

    /// Room for a stdin line: waits until there is room (the client feels it as a stdin that is
    /// not read), or returns None once the bridge stops.
    pub fn line(self: &Arc<Self>, bytes: usize) -> Option<Held> {
        let bytes = bytes + PER_MESSAGE_OVERHEAD;
        let mut counts = self.lock();
        // A line larger than the whole budget cannot exist (the budget holds the largest
        // message), but never wait for the impossible.
        while counts.used > 0 && counts.used + bytes > self.limit {
            if self.stop.is_stopped() {
                return None;
            }
            counts = self.wait(counts);
        }
        counts.used += bytes;
        drop(counts);
        Some(Held {
            budget: Some(Arc::clone(self)),
            bytes,
            use_: Use::Reading,
        })
    }

    fn grow(&self, held: &mut Held, bytes: usize) -> Result<(), Exhausted> {
        let mut counts = self.lock();
        while counts.used + bytes > self.limit {
            // Only queued frames will be given back; waiting for anything else may never end.
            if counts.queued == 0 || self.stop.is_stopped() {
                return Err(Exhausted { limit: self.limit });
            }
            counts = self.wait(counts);
        }
        counts.used += bytes;
        held.bytes += bytes;
        Ok(())
    }

    fn give_back(&self, bytes: usize, use_: Use) {
        if bytes == 0 {
            return;
        }
        let mut counts = self.lock();
        counts.used = counts.used.saturating_sub(bytes);
        if use_ == Use::Queued {
            counts.queued = counts.queued.saturating_sub(bytes);
        }
        drop(counts);
        self.freed.notify_all();
    }

    fn wait<'a>(&self, counts: MutexGuard<'a, Counts>) -> MutexGuard<'a, Counts> {
        match self.freed.wait_timeout(counts, STOP_POLL) {
            Ok((guard, _)) => guard,
            Err(poisoned) => poisoned.into_inner().0,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        // Plain counters: a panicking holder cannot leave them inconsistent.
        lock(&self.state)
    }
}

/// Bytes reserved in the budget, given back when dropped.
#[derive(Default)]
pub struct Held {
    budget: Option<Arc<Budget>>,
    bytes: usize,
    use_: Use,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Held({} bytes, {:?})", self.bytes, self.use_)
    }
}

impl Held {
    /// A reservation of nothing (messages the bridge makes itself, the test client's).
    pub fn none() -> Self {
        Self::default()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Reserve `bytes` more; may wait for the stdout writer (back-pressure), and fails when
    /// nothing will give room back.
    pub fn grow(&mut self, bytes: usize) -> Result<(), Exhausted> {
        match self.budget.clone() {
            Some(budget) => budget.grow(self, bytes),
            None => Ok(()),
        }
    }

    /// Reserve `bytes` more at once, even beyond the limit: for frames the bridge makes itself
    /// from a line it already holds (a refused batch's errors), on a thread that must never wait.
    /// Room over the limit holds back the next stdin line until the frames are written.
    pub fn charge(&mut self, bytes: usize) {
        if let Some(budget) = &self.budget {
            budget.lock().used += bytes;
            self.bytes += bytes;
        }
    }

    /// Give back everything above `bytes`.
    pub fn shrink_to(&mut self, bytes: usize) {
        if self.bytes > bytes {
            let surplus = self.bytes - bytes;
            self.bytes = bytes;
            if let Some(budget) = &self.budget {
                budget.give_back(surplus, self.use_);
            }
        }
    }

    /// Move up to `bytes` of this reservation into a new one (a completed message).
    pub fn split(&mut self, bytes: usize) -> Held {
        let moved = bytes.min(self.bytes);
        self.bytes -= moved;
        Held {
            budget: self.budget.clone(),
            bytes: moved,
            use_: self.use_,
        }
    }

    /// The message is complete and queued for stdout: its room will be given back when written.
    pub fn into_queued(mut self) -> Held {
        if let (Some(budget), Use::Reading) = (&self.budget, self.use_) {
            budget.lock().queued += self.bytes;
            self.use_ = Use::Queued;
        }
        self
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(budget) = &self.budget {
            budget.give_back(self.bytes, self.use_);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn budget(limit: usize) -> Arc<Budget> {
        Budget::new(limit, Arc::new(Stop::new()))
    }

    #[test]
    fn reading_waits_for_queued_frames_to_be_written() {
        let b = budget(1000);
        let mut frame = b.reading();
        frame.grow(800).unwrap();
        let queued = frame.into_queued();
        let reader = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                let mut next = b.reading();
                next.grow(500).map(|()| next.bytes())
            })
        };
        thread::sleep(Duration::from_millis(30));
        assert!(!reader.is_finished(), "waits while stdout holds the room");
        drop(queued); // the writer wrote it
        assert_eq!(reader.join().unwrap(), Ok(500));
        assert_eq!(b.used(), 0, "every reservation was given back");
    }

    #[test]
    fn reading_fails_when_only_other_reads_hold_the_room() {
        let b = budget(1000);
        let mut a = b.reading();
        a.grow(700).unwrap();
        let mut c = b.reading();
        assert_eq!(c.grow(400), Err(Exhausted { limit: 1000 }));
        assert_eq!(c.bytes(), 0);
        c.grow(300).unwrap();
        let done = a.split(200).into_queued();
        a.shrink_to(0);
        assert_eq!(b.used(), 500);
        drop((done, c));
        assert_eq!(b.used(), 0);
    }

    #[test]
    fn charged_frames_hold_back_the_next_line_until_written() {
        let b = budget(1000);
        let mut line = b.line(100).unwrap();
        let mut errors = line.split(0);
        errors.charge(2000);
        let errors = errors.into_queued();
        drop(line);
        assert_eq!(b.used(), 2000, "counted, over the limit");
        let next = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.line(10).map(|h| h.bytes()))
        };
        thread::sleep(Duration::from_millis(30));
        assert!(
            !next.is_finished(),
            "the next line waits for the errors to be written"
        );
        drop(errors);
        assert_eq!(next.join().unwrap(), Some(10 + PER_MESSAGE_OVERHEAD));
    }

    #[test]
    fn a_stopped_bridge_never_waits() {
        let stop = Arc::new(Stop::new());
        let b = Budget::new(100, Arc::clone(&stop));
        let mut q = b.reading();
        q.grow(100).unwrap();
        let _queued = q.into_queued();
        stop.stop();
        assert!(b.reading().grow(1).is_err());
        assert!(b.line(1).is_none());
    }
}
