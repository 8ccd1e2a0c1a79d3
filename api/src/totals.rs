//! [`TotalsCache`]: the recent totals of filtered battle lists, so that paging through a filter
//! or many readers of the same filter do not plan and count it on every request.
//!
//! A total is kept for `ttl` (settings: `total_cache_ttl`, 5 s by default; zero keeps none)
//! under the filter's SQL and bound values. Only `pagination.total` can be that old: the rows
//! and `hasMore` of every page are always read fresh. At most `capacity` filters are kept;
//! when full, expired entries go first and then everything (a plain bound, no LRU).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A count and whether it is exact (else the planner's estimate).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Total {
    pub value: i64,
    pub exact: bool,
}

/// Totals of filtered lists by filter, each for a short time.
#[derive(Debug)]
pub struct TotalsCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (Instant, Total)>>,
}

impl TotalsCache {
    pub fn new(ttl: Duration, capacity: usize) -> TotalsCache {
        TotalsCache {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The total stored for `key` less than `ttl` ago.
    pub fn get(&self, key: &str) -> Option<Total> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let (stored, total) = entries.get(key)?;
        (stored.elapsed() < self.ttl).then_some(*total)
    }

    /// Keeps `total` for `key`.
    pub fn put(&self, key: String, total: Total) {
        if self.ttl.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            let ttl = self.ttl;
            entries.retain(|_, (stored, _)| stored.elapsed() < ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), total));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXACT: Total = Total {
        value: 7,
        exact: true,
    };

    #[test]
    fn a_total_is_kept_for_its_time_only() {
        let cache = TotalsCache::new(Duration::from_millis(50), 10);
        assert_eq!(cache.get("a"), None);
        cache.put("a".into(), EXACT);
        assert_eq!(cache.get("a"), Some(EXACT));
        assert_eq!(cache.get("b"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None, "expired");
    }

    #[test]
    fn zero_time_keeps_nothing_and_capacity_bounds_the_entries() {
        let off = TotalsCache::new(Duration::ZERO, 10);
        off.put("a".into(), EXACT);
        assert_eq!(off.get("a"), None);

        let cache = TotalsCache::new(Duration::from_secs(60), 3);
        for key in ["a", "b", "c", "d"] {
            cache.put(key.into(), EXACT);
        }
        assert!(cache.entries.lock().unwrap().len() <= 3);
        assert_eq!(cache.get("d"), Some(EXACT), "the newest is kept");
    }
}
