//! Termination requests from the operating system end the bridge like stdin EOF does.
//!
//! - Unix: SIGTERM/SIGINT/SIGHUP are blocked in every thread and one thread waits for them with
//!   `sigwait`, so no code runs in a signal handler.
//! - Windows: a console control handler receives Ctrl-C, Ctrl-Break and the console's close event
//!   (also logoff and shutdown). Windows kills the process as soon as the handler returns from a
//!   close event, so for that one the handler waits until [`shutdown_complete`] says the session
//!   DELETE is done, or [`CLOSE_WAIT`] passed (Windows itself allows 5 s).
//!
//! stdin EOF stays the main way to stop: agents on Windows end their servers with
//! `TerminateProcess`, which runs no handler at all.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the Windows close handler waits for the shutdown before letting Windows end the
/// process: the bridge needs up to 1 s of in-flight grace plus 0.7 s for the DELETE and 0.2 s to
/// flush stdout (1.9 s, see `bridge::EOF_GRACE`); Windows ends the process after 5 s anyway.
pub const CLOSE_WAIT: Duration = Duration::from_millis(2500);

/// Set once the bridge finished its shutdown; the Windows close handler waits on it.
static SHUTDOWN_DONE: (Mutex<bool>, Condvar) = (Mutex::new(false), Condvar::new());

/// Tell a waiting close handler that the shutdown (session DELETE, stdout flush) is done. The
/// bridge calls it at the end of its run; harmless (and immediate) where nothing waits.
pub fn shutdown_complete() {
    let (done, changed) = &SHUTDOWN_DONE;
    *done.lock().unwrap_or_else(|p| p.into_inner()) = true;
    changed.notify_all();
}

/// Wait until [`shutdown_complete`] was called or `bound` passed; true if it was called.
#[cfg_attr(not(windows), allow(dead_code))] // only the Windows close handler waits
fn wait_for_shutdown(bound: Duration) -> bool {
    let deadline = Instant::now() + bound;
    let (done, changed) = &SHUTDOWN_DONE;
    let mut finished = done.lock().unwrap_or_else(|p| p.into_inner());
    while !*finished {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        finished = changed
            .wait_timeout(finished, left)
            .unwrap_or_else(|p| p.into_inner())
            .0;
    }
    true
}

#[cfg(unix)]
pub use unix::watch;
#[cfg(windows)]
pub use windows::watch;

#[cfg(unix)]
mod unix {
    use std::io;
    use std::thread;

    /// Block the termination signals for this thread and every thread spawned after this call,
    /// and run `on_signal` on a dedicated thread when one arrives. Call before spawning other
    /// threads.
    pub fn watch(on_signal: impl FnOnce(i32) + Send + 'static) -> io::Result<()> {
        // SAFETY: plain libc calls on a zeroed, locally owned sigset_t.
        let set = unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                libc::sigaddset(&mut set, sig);
            }
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            set
        };
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut sig: libc::c_int = 0;
                // SAFETY: `set` is a valid sigset_t owned by this closure; `sig` is a valid
                // out-pointer.
                let rc = unsafe { libc::sigwait(&set, &mut sig) };
                if rc == 0 {
                    on_signal(sig);
                }
            })?;
        Ok(())
    }
}

#[cfg(windows)]
mod windows {
    use std::io;
    use std::sync::Mutex;

    use windows_sys::core::BOOL;
    use windows_sys::Win32::System::Console::{
        SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT, CTRL_LOGOFF_EVENT,
        CTRL_SHUTDOWN_EVENT,
    };

    use super::{wait_for_shutdown, CLOSE_WAIT};

    type OnSignal = Box<dyn FnOnce(i32) + Send>;

    /// The callback of the one `watch` in force; taken by the first event.
    static ON_SIGNAL: Mutex<Option<OnSignal>> = Mutex::new(None);

    /// The C runtime's numbers for what the events mean, so logs read like on Unix
    /// (`signal 2` = Ctrl-C).
    const SIGINT: i32 = 2;
    const SIGTERM: i32 = 15;
    const SIGBREAK: i32 = 21;

    /// Install a console control handler that runs `on_signal` on the first Ctrl-C, Ctrl-Break,
    /// close, logoff or shutdown event. A second Ctrl-C or Ctrl-Break goes to Windows' default
    /// handler, which ends the process at once (for a user who does not want to wait).
    pub fn watch(on_signal: impl FnOnce(i32) + Send + 'static) -> io::Result<()> {
        *ON_SIGNAL.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(on_signal));
        // SAFETY: registers a plain function with the signature Windows expects; it stays valid
        // for the life of the process.
        if unsafe { SetConsoleCtrlHandler(Some(handler), 1) } == 0 {
            // A process without a console gets no console events: stdin EOF still ends it.
            log::debug!(
                "no console control handler ({}): only stdin EOF ends the bridge",
                io::Error::last_os_error()
            );
        }
        Ok(())
    }

    /// Windows runs this on a thread of its own for each console event.
    pub(super) unsafe extern "system" fn handler(event: u32) -> BOOL {
        let signal = match event {
            CTRL_C_EVENT => SIGINT,
            CTRL_BREAK_EVENT => SIGBREAK,
            CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => SIGTERM,
            _ => return 0,
        };
        let first = ON_SIGNAL.lock().unwrap_or_else(|p| p.into_inner()).take();
        match first {
            Some(on_signal) => on_signal(signal),
            // Already shutting down: Ctrl-C again means "now".
            None if signal != SIGTERM => return 0,
            None => {}
        }
        if signal == SIGTERM && !wait_for_shutdown(CLOSE_WAIT) {
            log::debug!("shutdown still running after {CLOSE_WAIT:?}; Windows ends the process");
        }
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The shutdown flag is process-wide (it is set once per process), so one test covers its
    // whole life: unset and bounded, then (on Windows) the close handler blocked on it, then set.
    #[test]
    fn the_close_wait_is_bounded_and_ends_when_the_shutdown_completes() {
        let started = Instant::now();
        assert!(!wait_for_shutdown(Duration::from_millis(50)));
        assert!(started.elapsed() >= Duration::from_millis(50));

        #[cfg(windows)]
        {
            use std::sync::mpsc;
            use windows_sys::Win32::System::Console::{CTRL_CLOSE_EVENT, CTRL_C_EVENT};

            // Test only: it carries the two console events this test raises, nothing more.
            let (tx, rx) = mpsc::channel();
            watch(move |sig| {
                let _ = tx.send(sig);
            })
            .unwrap();
            // SAFETY: the handler is an ordinary function; Windows calls it the same way.
            let handler = std::thread::spawn(|| unsafe { windows::handler(CTRL_CLOSE_EVENT) });
            assert_eq!(rx.recv_timeout(Duration::from_secs(20)), Ok(15), "SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
            assert!(
                !handler.is_finished(),
                "returned before the shutdown completed"
            );
            shutdown_complete();
            assert_eq!(handler.join().unwrap(), 1, "close event handled");
            // Already shutting down: a Ctrl-C goes to the default handler (FALSE).
            // SAFETY: as above.
            assert_eq!(unsafe { windows::handler(CTRL_C_EVENT) }, 0);
        }

        let waiter = std::thread::spawn(|| wait_for_shutdown(Duration::from_secs(20)));
        std::thread::sleep(Duration::from_millis(50));
        shutdown_complete();
        assert!(waiter.join().unwrap(), "the waiter saw the completion");
        assert!(wait_for_shutdown(Duration::ZERO), "completion is sticky");
    }
}
