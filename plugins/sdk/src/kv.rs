//! The run's key/value store (`corral:integration/kv`): what one step fetched, the next
//! reads instead of fetching again. It starts empty each run and is gone when the run
//! ends. The host bounds it (keys of at most 512 bytes, values of at most 4 MiB, 16 MiB
//! and 10,000 keys in all per run) and answers a `set` past a bound with an error.
//!
//! In a native build (the connectors' unit tests) the store is a per-thread map.

use crate::error::{Error, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The value under `key`, if a step of this run set one.
pub fn get(key: &str) -> Option<Vec<u8>> {
    imp::get(key)
}

/// Sets `key` (replacing any value).
pub fn set(key: &str, value: &[u8]) -> Result<()> {
    imp::set(key, value)
}

/// Removes `key`; whether it was set.
pub fn delete(key: &str) -> bool {
    imp::delete(key)
}

/// The value under `key` as JSON; `None` when unset. A value that is not `T` is an error.
pub fn get_json<T: DeserializeOwned>(key: &str) -> Result<Option<T>> {
    match get(key) {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Kv(format!("kv {key}: {e}"))),
    }
}

/// Sets `key` to `value` as JSON.
pub fn set_json<T: Serialize>(key: &str, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec(value).map_err(|e| Error::Kv(format!("kv {key}: {e}")))?;
    set(key, &bytes)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use crate::bindings::corral::integration::kv::{self, KvError};
    use crate::error::{Error, Result};

    pub fn get(key: &str) -> Option<Vec<u8>> {
        kv::get(key)
    }

    pub fn set(key: &str, value: &[u8]) -> Result<()> {
        kv::set(key, value).map_err(|e| match e {
            KvError::Limit(m) | KvError::Invalid(m) => Error::Kv(m),
        })
    }

    pub fn delete(key: &str) -> bool {
        kv::delete(key)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use crate::error::{Error, Result};
    use std::cell::{Cell, RefCell};
    use std::collections::BTreeMap;

    thread_local! {
        static STORE: RefCell<BTreeMap<String, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
        /// Bytes of keys and values the store holds at most (`testing::kv_capacity`).
        static CAPACITY: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    pub fn get(key: &str) -> Option<Vec<u8>> {
        STORE.with(|s| s.borrow().get(key).cloned())
    }

    pub fn set(key: &str, value: &[u8]) -> Result<()> {
        STORE.with(|s| {
            let mut s = s.borrow_mut();
            let others: usize = s
                .iter()
                .filter(|(k, _)| k.as_str() != key)
                .map(|(k, v)| k.len() + v.len())
                .sum();
            let capacity = CAPACITY.with(Cell::get);
            if others + key.len() + value.len() > capacity {
                return Err(Error::Kv(format!(
                    "kv: the run would hold more than its capacity of {capacity} bytes"
                )));
            }
            s.insert(key.to_string(), value.to_vec());
            Ok(())
        })
    }

    pub fn delete(key: &str) -> bool {
        STORE.with(|s| s.borrow_mut().remove(key).is_some())
    }

    /// Empties the store and lifts its bound (`testing::reset`).
    pub fn clear() {
        STORE.with(|s| s.borrow_mut().clear());
        CAPACITY.with(|c| c.set(usize::MAX));
    }

    pub fn set_capacity(bytes: usize) {
        CAPACITY.with(|c| c.set(bytes));
    }
}

/// Bounds this thread's store to `bytes` of keys and values (native builds:
/// `testing::kv_capacity`).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn set_capacity(bytes: usize) {
    imp::set_capacity(bytes)
}

/// Empties this thread's store (native builds: `testing::reset`).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn clear() {
    imp::clear()
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn json_values_round_trip_and_a_wrong_shape_is_an_error() {
        set_json("orgs", &vec!["a", "b"]).unwrap();
        assert_eq!(
            get_json::<Vec<String>>("orgs").unwrap(),
            Some(vec!["a".into(), "b".into()])
        );
        assert!(get_json::<u32>("orgs").is_err());
        assert!(delete("orgs"));
        assert_eq!(get_json::<Vec<String>>("orgs").unwrap(), None);
    }
}
