//! What was read from images, by content digest (FR-027i, NFR-006). A digest names immutable
//! content, so an entry never goes stale; the cache is bounded by entries and bytes and
//! drops the least recently used.

use std::collections::HashMap;
use std::sync::Mutex;

pub struct DigestCache<V> {
    inner: Mutex<Inner<V>>,
    max_entries: usize,
    max_bytes: usize,
}

struct Inner<V> {
    map: HashMap<String, Slot<V>>,
    tick: u64,
    bytes: usize,
}

struct Slot<V> {
    value: V,
    size: usize,
    used: u64,
}

impl<V: Clone> DigestCache<V> {
    pub fn new(max_entries: usize, max_bytes: usize) -> DigestCache<V> {
        DigestCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                tick: 0,
                bytes: 0,
            }),
            max_entries,
            max_bytes,
        }
    }

    pub fn get(&self, key: &str) -> Option<V> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.tick += 1;
        let tick = g.tick;
        g.map.get_mut(key).map(|s| {
            s.used = tick;
            s.value.clone()
        })
    }

    /// Stores `value` (costing `size` bytes); a value larger than the whole budget is not kept.
    pub fn put(&self, key: String, value: V, size: usize) {
        if size > self.max_bytes {
            return;
        }
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.tick += 1;
        let used = g.tick;
        if let Some(old) = g.map.insert(key, Slot { value, size, used }) {
            g.bytes -= old.size;
        }
        g.bytes += size;
        while g.map.len() > self.max_entries || g.bytes > self.max_bytes {
            let Some(oldest) = g
                .map
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(s) = g.map.remove(&oldest) {
                g.bytes -= s.size;
            }
        }
    }

    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_recently_used_goes_first() {
        let c = DigestCache::new(2, 1000);
        c.put("a".into(), 1, 10);
        c.put("b".into(), 2, 10);
        assert_eq!(c.get("a"), Some(1));
        c.put("c".into(), 3, 10);
        assert_eq!(
            (c.get("a"), c.get("b"), c.get("c")),
            (Some(1), None, Some(3))
        );
    }

    #[test]
    fn byte_budget_bounds_the_cache() {
        let c = DigestCache::new(100, 25);
        c.put("a".into(), 1, 10);
        c.put("b".into(), 2, 10);
        c.put("c".into(), 3, 10);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("a"), None);
        c.put("huge".into(), 4, 26);
        assert_eq!(c.get("huge"), None, "larger than the budget: not kept");
        c.put("b".into(), 5, 10);
        assert_eq!(c.get("b"), Some(5), "replacing keeps the byte count right");
        assert_eq!(c.len(), 2);
    }
}
