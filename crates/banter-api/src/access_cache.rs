//! `AccessCache`: answers about access read from the database a moment ago, kept for a bounded
//! lifetime so that a burst of joins or posts does not read the same answer once per request.
//! What makes such a cache correct is the same for every use: an entry lives `ttl` (zero turns
//! the cache off), memory is bounded, a committed access change `forget`s the entries it touches
//! on every node at once, and a read that began before a change cannot put its old answer back
//! (the generation: take it before the read, hand it to `remember`).
//!
//! Kept out: what is cached and which change clears what (`chat_rules.rs` here; the server's
//! `public_videos.rs` and `principals.rs`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Beyond this many entries the cache starts over (bounded memory).
const CAPACITY: usize = 100_000;

pub struct AccessCache<K, V> {
    ttl: Duration,
    seen: Mutex<HashMap<K, (V, Instant)>>,
    /// Bumped by every forget; an answer read under an older generation is not cached.
    generation: AtomicU64,
}

impl<K: Eq + Hash, V: Clone> AccessCache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            seen: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// Take this before reading the answer, and pass it to `remember`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The answer for `key`, if it was remembered within the lifetime.
    pub fn get(&self, key: &K) -> Option<V> {
        let seen = self.seen.lock().expect("access cache lock");
        let (value, at) = seen.get(key)?;
        (at.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Caches an answer, unless something was forgotten since `generation` was taken.
    pub fn remember(&self, key: K, value: V, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut seen = self.seen.lock().expect("access cache lock");
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if seen.len() >= CAPACITY {
            let ttl = self.ttl;
            seen.retain(|_, (_, at)| at.elapsed() < ttl);
            if seen.len() >= CAPACITY {
                seen.clear();
            }
        }
        seen.insert(key, (value, Instant::now()));
    }

    /// Drops `key`, and any answer still being read.
    pub fn forget(&self, key: &K) {
        let mut seen = self.seen.lock().expect("access cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        seen.remove(key);
    }

    /// Drops every entry that matches, and any answer still being read.
    pub fn forget_where(&self, matches: impl Fn(&K, &V) -> bool) {
        let mut seen = self.seen.lock().expect("access cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        seen.retain(|key, (value, _)| !matches(key, value));
    }

    /// Drops every entry (access changes may have been missed).
    pub fn forget_all(&self) {
        let mut seen = self.seen.lock().expect("access cache lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        seen.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_their_lifetime() {
        let ttl = Duration::from_secs(2);
        let cache: AccessCache<&str, u8> = AccessCache::new(ttl);
        cache.remember("k", 1, cache.generation());
        assert_eq!(cache.get(&"k"), Some(1));
        cache
            .seen
            .lock()
            .unwrap()
            .insert("k", (1, Instant::now() - ttl));
        assert_eq!(cache.get(&"k"), None);
    }
}
