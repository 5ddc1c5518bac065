//! The `kv` import (WIT 0.2 on): a key/value store scoped to one run. Steps of a run
//! share what they fetched once (runZero's organizations) instead of refetching it; the
//! store starts empty and is dropped with the run. It holds guest bytes only (a guest
//! never holds a secret), bounded in key length, value length, keys and bytes, so a run
//! costs the process at most [`MAX_TOTAL_BYTES`] here. Keys and values are measured in
//! guest memory before anything is copied out of it.

use super::{Event, RunStats, StepCtx};
use crate::lock::LockExt;
use std::collections::BTreeMap;
use std::sync::Mutex;
use wasmtime::StoreContextMut;
use wasmtime::component::{ComponentType, Lift, Linker, Lower, WasmList, WasmStr};

/// Longest key, in bytes.
pub const MAX_KEY_BYTES: usize = 512;
/// Longest value, in bytes.
pub const MAX_VALUE_BYTES: usize = 4 << 20;
/// Keys a run may hold at once.
pub const MAX_KEYS: usize = 10_000;
/// Bytes of keys and values a run may hold at once.
pub const MAX_TOTAL_BYTES: usize = 16 << 20;

#[derive(Debug, Clone, PartialEq, Eq, ComponentType, Lift, Lower)]
#[component(variant)]
pub enum KvError {
    #[component(name = "limit")]
    Limit(String),
    #[component(name = "invalid")]
    Invalid(String),
}

/// One run's store.
#[derive(Default)]
pub struct KvStore {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    map: BTreeMap<String, Vec<u8>>,
    /// Bytes of keys and values held.
    bytes: usize,
}

impl KvStore {
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.entries.locked().map.get(key).cloned()
    }

    /// Replaces the value under `key`, within the store's bounds (a refused `set`
    /// leaves the old value in place).
    pub fn set(&self, key: &str, value: &[u8]) -> Result<(), KvError> {
        check_key(key)?;
        if value.len() > MAX_VALUE_BYTES {
            return Err(over_value(value.len()));
        }
        let mut e = self.entries.locked();
        let replaced = e.map.get(key).map(|old| key.len() + old.len());
        if replaced.is_none() && e.map.len() >= MAX_KEYS {
            return Err(KvError::Limit(format!(
                "kv: the run holds {MAX_KEYS} keys, the most it may"
            )));
        }
        let bytes = e.bytes - replaced.unwrap_or(0) + key.len() + value.len();
        if bytes > MAX_TOTAL_BYTES {
            return Err(KvError::Limit(format!(
                "kv: the run would hold {bytes} bytes; at most {MAX_TOTAL_BYTES} are allowed"
            )));
        }
        e.bytes = bytes;
        e.map.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    pub fn delete(&self, key: &str) -> bool {
        let mut e = self.entries.locked();
        match e.map.remove(key) {
            Some(old) => {
                e.bytes -= key.len() + old.len();
                true
            }
            None => false,
        }
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        self.entries.locked().bytes
    }
}

fn check_key(key: &str) -> Result<(), KvError> {
    if key.is_empty() {
        return Err(KvError::Invalid("kv: a key is never empty".into()));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(KvError::Invalid(format!(
            "kv: a key of {} bytes; at most {MAX_KEY_BYTES} are allowed",
            key.len()
        )));
    }
    Ok(())
}

fn over_value(len: usize) -> KvError {
    KvError::Limit(format!(
        "kv: a value of {len} bytes; at most {MAX_VALUE_BYTES} are allowed"
    ))
}

/// Registers `kv` under `interface`. Keys and values stay in guest memory until they
/// are known to fit.
pub fn add_to_linker(linker: &mut Linker<StepCtx>, interface: &str) -> wasmtime::Result<()> {
    let mut inst = linker.instance(interface)?;
    inst.func_wrap("get", |store, (key,): (WasmStr,)| {
        let key = key.to_str(&store)?;
        // No value is stored under a key that is too long.
        let value = match key.len() > MAX_KEY_BYTES {
            true => None,
            false => store.data().run.kv.get(&key),
        };
        Ok((value,))
    })?;
    inst.func_wrap("set", |store, (key, value): (WasmStr, WasmList<u8>)| {
        Ok((set(store, &key, &value)?,))
    })?;
    inst.func_wrap("delete", |store, (key,): (WasmStr,)| {
        let key = key.to_str(&store)?;
        Ok((key.len() <= MAX_KEY_BYTES && store.data().run.kv.delete(&key),))
    })?;
    Ok(())
}

fn set(
    store: StoreContextMut<'_, StepCtx>,
    key: &WasmStr,
    value: &WasmList<u8>,
) -> wasmtime::Result<Result<(), KvError>> {
    let outcome = if value.len() > MAX_VALUE_BYTES {
        Err(over_value(value.len()))
    } else {
        let key = key.to_str(&store)?;
        store.data().run.kv.set(&key, value.as_le_slice(&store))
    };
    if let Err(KvError::Limit(rule)) = &outcome {
        let ctx = store.data();
        let event = Event {
            step: ctx.step.clone(),
            action: "limit".into(),
            resource: "kv".into(),
            rule: rule.clone(),
        };
        RunStats::record(&ctx.run.stats.limit_hits, event);
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_replaced_and_deleted_with_their_bytes_counted() {
        let kv = KvStore::default();
        assert_eq!(kv.get("orgs"), None);
        kv.set("orgs", b"[1,2]").unwrap();
        assert_eq!(kv.get("orgs").as_deref(), Some(&b"[1,2]"[..]));
        assert_eq!(kv.bytes(), 4 + 5);
        kv.set("orgs", b"[]").unwrap();
        assert_eq!(kv.get("orgs").as_deref(), Some(&b"[]"[..]));
        assert_eq!(kv.bytes(), 4 + 2);
        assert!(kv.delete("orgs"));
        assert!(!kv.delete("orgs"));
        assert_eq!(kv.bytes(), 0);
    }

    #[test]
    fn the_worst_keys_and_values_are_refused_by_name() {
        let kv = KvStore::default();
        assert!(matches!(kv.set("", b"x"), Err(KvError::Invalid(m)) if m.contains("empty")));
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        assert!(matches!(kv.set(&long, b"x"), Err(KvError::Invalid(m)) if m.contains("513 bytes")));
        kv.set(&"k".repeat(MAX_KEY_BYTES), b"x").unwrap();
        let big = vec![0u8; MAX_VALUE_BYTES + 1];
        assert!(matches!(kv.set("big", &big), Err(KvError::Limit(m)) if m.contains("a value of")));
        assert_eq!(kv.get("big"), None);
    }

    #[test]
    fn a_run_holds_at_most_its_bytes_and_keys() {
        let kv = KvStore::default();
        let value = vec![7u8; MAX_VALUE_BYTES];
        for i in 0..3 {
            kv.set(&format!("v{i}"), &value).unwrap();
        }
        // The fourth 4 MiB value would pass 16 MiB with the keys.
        let Err(KvError::Limit(m)) = kv.set("v3", &value) else {
            panic!("over the run's bytes")
        };
        assert!(m.contains("at most 16777216"), "{m}");
        // Replacing a value counts only the difference; a refused set keeps the old one.
        kv.set("v0", b"small").unwrap();
        kv.set("v3", &value).unwrap();
        assert_eq!(kv.get("v0").as_deref(), Some(&b"small"[..]));

        let keys = KvStore::default();
        for i in 0..MAX_KEYS {
            keys.set(&i.to_string(), b"").unwrap();
        }
        assert!(
            matches!(keys.set("one-more", b""), Err(KvError::Limit(m)) if m.contains("10000 keys"))
        );
        keys.set("0", b"replaced").unwrap();
    }
}
