//! The threads that serve requests. A request must never wait for another one (a 60-second tool
//! call may not delay a ping), so every job gets a thread at once: an idle one if there is one,
//! otherwise a new one. Idle threads wait for work for a while, then exit. Reusing threads saves
//! a spawn per request; the number of requests in flight is bounded by the dispatcher.

use crate::sync::lock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle worker waits for a job before it exits.
const IDLE_LIFETIME: Duration = Duration::from_secs(30);
/// Worker stacks: requests are shallow (the deepest path is TLS + HTTP parsing), so the 2 MiB
/// default only wastes address space when a burst of requests runs at once.
const STACK_SIZE: usize = 512 * 1024;

pub struct Workers {
    tx: Sender<Job>,
    rx: Arc<Mutex<Receiver<Job>>>,
    /// Idle workers not yet claimed by a submitted job.
    idle: Arc<AtomicUsize>,
    next_name: AtomicUsize,
}

impl Default for Workers {
    fn default() -> Self {
        Self::new()
    }
}

impl Workers {
    pub fn new() -> Self {
        // Unbounded, and bounded all the same: one job per request in flight, and the
        // dispatcher starts at most MAX_IN_FLIGHT of them.
        let (tx, rx) = mpsc::channel();
        Self {
            tx,
            rx: Arc::new(Mutex::new(rx)),
            idle: Arc::new(AtomicUsize::new(0)),
            next_name: AtomicUsize::new(0),
        }
    }

    /// Run `job` now on an idle worker or a new thread.
    pub fn run(&self, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        if take_token(&self.idle) {
            // A worker is (or is about to be) waiting on the queue and was claimed for this job.
            if let Err(mpsc::SendError(job)) = self.tx.send(Box::new(job)) {
                return self.spawn(Some(job));
            }
            return Ok(());
        }
        self.spawn(Some(Box::new(job)))
    }

    fn spawn(&self, first: Option<Job>) -> std::io::Result<()> {
        let rx = Arc::clone(&self.rx);
        let idle = Arc::clone(&self.idle);
        let n = self.next_name.fetch_add(1, Ordering::Relaxed);
        thread::Builder::new()
            .name(format!("worker-{n}"))
            .stack_size(STACK_SIZE)
            .spawn(move || {
                if let Some(job) = first {
                    job();
                }
                work(&rx, &idle);
            })
            .map(|_| ())
    }
}

/// Wait for jobs until idle for too long.
fn work(rx: &Mutex<Receiver<Job>>, idle: &AtomicUsize) {
    loop {
        idle.fetch_add(1, Ordering::SeqCst);
        let next = lock(rx).recv_timeout(IDLE_LIFETIME);
        let job = match next {
            Ok(job) => job,
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                if take_token(idle) {
                    return; // retired: nobody had claimed us
                }
                // A submitter claimed an idle worker just now: its job is on the way.
                match lock(rx).recv() {
                    Ok(job) => job,
                    Err(_) => return,
                }
            }
        };
        job();
    }
}

/// Atomically take one idle token; false when there is none.
fn take_token(idle: &AtomicUsize) -> bool {
    idle.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Instant;

    #[test]
    fn a_slow_job_never_delays_a_fast_one_and_threads_are_reused() {
        let workers = Workers::new();
        let (done_tx, done_rx) = channel();
        let slow_done = done_tx.clone();
        workers
            .run(move || {
                thread::sleep(Duration::from_millis(2000));
                let _ = slow_done.send("slow");
            })
            .unwrap();
        for _ in 0..50 {
            let tx = done_tx.clone();
            workers
                .run(move || {
                    let _ = tx.send("fast");
                })
                .unwrap();
            assert_eq!(done_rx.recv().unwrap(), "fast");
            // The job's worker reports itself idle just after the job returns; wait for that, so
            // that the next job can only reuse it (what this test is about) rather than race it.
            let t = Instant::now();
            while workers.idle.load(Ordering::SeqCst) == 0 && t.elapsed() < Duration::from_secs(2) {
                thread::yield_now();
            }
        }
        // All 50 fast jobs were answered while the slow one still ran (its answer comes last),
        // on one reused worker instead of 50 new threads.
        assert_eq!(done_rx.recv().unwrap(), "slow");
        assert!(workers.next_name.load(Ordering::Relaxed) <= 2);
    }
}
