//! Locks, and what a poisoned one means: memcached's `pthread_mutex_lock`
//! and `pthread_mutex_trylock`, which know nothing of poisoning.
//!
//! A Rust mutex is poisoned when a thread panics while holding it: the data
//! behind it may be half-updated (a shard's LRU half relinked). The policy
//! (docs/ARCHITECTURE.md, "Operations") is that such a thread takes the
//! process with it: the binary is built with `panic = "abort"`, so no
//! thread survives to see a poisoned lock. Only the unit tests, whose
//! harness unwinds, can meet one; there it is a bug, and these helpers
//! panic rather than carry on with the data as it was left.

use std::sync::{
    Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError,
};
use std::time::Duration;

/// Why the helpers panic.
const POISONED: &str = "a thread panicked holding this lock (with panic = \"abort\" none can)";

/// Lock `m`, waiting for it.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().expect(POISONED)
}

/// Lock `m` if no one holds it now; `None` if someone does.
pub fn try_lock<T>(m: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(TryLockError::WouldBlock) => None,
        Err(TryLockError::Poisoned(_)) => panic!("{POISONED}"),
    }
}

/// Wait on `c`, giving up `g` meanwhile (`pthread_cond_wait`).
pub fn wait<'a, T>(c: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    c.wait(g).expect(POISONED)
}

/// Wait on `c` for at most `d` (`pthread_cond_timedwait`).
pub fn wait_timeout<'a, T>(c: &Condvar, g: MutexGuard<'a, T>, d: Duration) -> MutexGuard<'a, T> {
    c.wait_timeout(g, d).expect(POISONED).0
}

/// Take `l` for reading.
pub fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().expect(POISONED)
}

/// Take `l` for writing.
pub fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().expect(POISONED)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lock whose holder panicked is not used as if nothing happened.
    #[test]
    fn a_poisoned_lock_is_refused() {
        let m = std::sync::Arc::new(Mutex::new(0));
        let held = m.clone();
        let died = std::thread::spawn(move || {
            let _g = lock(&held);
            panic!("dies holding the lock");
        })
        .join();
        assert!(died.is_err());
        assert!(std::panic::catch_unwind(|| *lock(&m)).is_err());
        assert!(std::panic::catch_unwind(|| try_lock(&m).is_some()).is_err());
    }
}
