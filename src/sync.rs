//! Locking that survives a panic elsewhere.

use std::sync::{Mutex, MutexGuard};

/// Lock `m` even if a thread panicked while holding it. Every mutex in this crate guards plain
/// data changed in single statements, so a poisoned one is still consistent; and with
/// `panic = "abort"` in release builds a panic ends the process anyway.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
