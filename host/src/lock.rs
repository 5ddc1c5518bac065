//! Locks that survive a panic elsewhere. A `std::sync::Mutex` is poisoned when a thread
//! panics while holding it; every later `lock().unwrap()` would then panic too, turning
//! one failure into many. The data behind corral's locks (a run's graph and counters,
//! the loaded plugins, upload stats) stays consistent between statements, so the guard
//! is taken back and used.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub trait LockExt<T> {
    /// The guard, whether or not an earlier holder panicked.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> LockExt<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::LockExt;
    use std::sync::{Arc, Mutex};

    #[test]
    fn a_poisoned_lock_is_taken_back() {
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("holder panics");
        })
        .join();
        assert!(m.is_poisoned());
        *m.locked() += 1;
        assert_eq!(*m.locked(), 2);
    }
}
