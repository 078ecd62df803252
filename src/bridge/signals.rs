//! SIGTERM/SIGINT/SIGHUP end the bridge like stdin EOF does: the signals are blocked in every
//! thread and one thread waits for them with `sigwait`, so no code runs in a signal handler.

use std::io;
use std::thread;

/// Block the termination signals for this thread and every thread spawned after this call, and
/// run `on_signal` on a dedicated thread when one arrives. Call before spawning other threads.
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
            // SAFETY: `set` is a valid sigset_t owned by this closure; `sig` is a valid out-pointer.
            let rc = unsafe { libc::sigwait(&set, &mut sig) };
            if rc == 0 {
                on_signal(sig);
            }
        })?;
    Ok(())
}
