//! Peak resident memory of a child process, sampled from /proc/<pid>/status every 10 ms on a
//! thread of its own, while the measuring thread stages the load. A process whose memory has
//! no bound (the pre-engine bridge under a flood) is killed once it passes a ceiling, so that
//! a run never hurts the machine it shares.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::bridge_proc::{kill, read_memory};

const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// What the watch saw.
#[derive(Debug, Clone, Copy, Default)]
pub struct RssPeak {
    /// The largest of every VmRSS sample and the last VmHWM read, in KiB.
    pub peak_kib: u64,
    /// Set when the process passed the ceiling: how long after the watch started it was killed.
    pub killed_after: Option<Duration>,
    /// The most threads any sample saw.
    pub threads: u64,
}

pub struct RssWatch {
    stop: Arc<AtomicBool>,
    killed: Arc<AtomicBool>,
    sampler: JoinHandle<RssPeak>,
}

impl RssWatch {
    /// Start sampling `pid`; SIGKILL it if VmRSS goes over `ceiling_kib`.
    pub fn start(pid: u32, ceiling_kib: u64) -> RssWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let killed = Arc::new(AtomicBool::new(false));
        let (stop_flag, killed_flag) = (Arc::clone(&stop), Arc::clone(&killed));
        let sampler = thread::spawn(move || {
            let started = Instant::now();
            let mut peak = RssPeak::default();
            while !stop_flag.load(Ordering::Relaxed) {
                // Fails once the process has exited (a zombie has no memory lines): keep the peak.
                if let Ok(memory) = read_memory(pid) {
                    peak.peak_kib = peak.peak_kib.max(memory.current_kib).max(memory.peak_kib);
                    peak.threads = peak.threads.max(memory.threads);
                    if memory.current_kib > ceiling_kib {
                        kill(pid);
                        peak.killed_after = Some(started.elapsed());
                        killed_flag.store(true, Ordering::Relaxed);
                        break;
                    }
                }
                thread::sleep(SAMPLE_EVERY);
            }
            peak
        });
        RssWatch {
            stop,
            killed,
            sampler,
        }
    }

    /// True once the process was killed for passing the ceiling.
    pub fn killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    pub fn finish(self) -> RssPeak {
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap_or_default()
    }
}
