//! Videos recently seen to be public (or not yet created, which is the same), so that a burst of
//! joins (a reconnect storm, a popular stream starting) does not read a video's visibility from
//! the database once per viewer. An entry lives `ttl` (`BANTER_WS_PUBLIC_VIDEO_CACHE_MS`, 0 turns
//! it off); anything restricted is never cached and is checked every time. A committed
//! visibility change reaches every node as an access change, which `forget`s the entry at
//! once; a read that began before the change cannot put it back (the generation check).
//!
//! Kept out: the access rule itself (`banter_api::check_view`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use banter_core::VideoId;

/// Beyond this many entries the cache starts over (bounded memory).
const CAPACITY: usize = 100_000;

pub struct PublicVideos {
    ttl: Duration,
    seen: Mutex<HashMap<VideoId, Instant>>,
    /// Bumped by every `forget`; an answer read under an older generation is not cached.
    generation: AtomicU64,
}

impl PublicVideos {
    pub fn new(ttl: Duration) -> PublicVideos {
        PublicVideos {
            ttl,
            seen: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// Take this before reading a video's visibility, and pass it to `remember`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Drops `video` (its access changed), and any answer still being read.
    pub fn forget(&self, video: &VideoId) {
        let mut seen = self.seen.lock().expect("public videos lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        seen.remove(video);
    }

    pub fn is_public(&self, video: &VideoId) -> bool {
        self.seen
            .lock()
            .expect("public videos lock")
            .get(video)
            .is_some_and(|at| at.elapsed() < self.ttl)
    }

    /// Drops every entry (access changes may have been missed).
    pub fn forget_all(&self) {
        let mut seen = self.seen.lock().expect("public videos lock");
        self.generation.fetch_add(1, Ordering::AcqRel);
        seen.clear();
    }

    /// Caches `video` as public, unless something was forgotten since `generation` was taken.
    pub fn remember(&self, video: VideoId, generation: u64) {
        if self.ttl.is_zero() {
            return;
        }
        let mut seen = self.seen.lock().expect("public videos lock");
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if seen.len() >= CAPACITY {
            let ttl = self.ttl;
            seen.retain(|_, at| at.elapsed() < ttl);
            if seen.len() >= CAPACITY {
                seen.clear();
            }
        }
        seen.insert(video, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire() {
        let ttl = Duration::from_secs(2);
        let cache = PublicVideos::new(ttl);
        let v = VideoId::parse("v").unwrap();
        assert!(!cache.is_public(&v));
        cache.remember(v.clone(), cache.generation());
        assert!(cache.is_public(&v));
        cache
            .seen
            .lock()
            .unwrap()
            .insert(v.clone(), Instant::now() - ttl);
        assert!(!cache.is_public(&v));
        let off = PublicVideos::new(Duration::ZERO);
        off.remember(v.clone(), off.generation());
        assert!(!off.is_public(&v));
    }

    #[test]
    fn a_forgotten_video_is_not_put_back_by_a_read_that_began_before() {
        let cache = PublicVideos::new(Duration::from_secs(60));
        let v = VideoId::parse("v").unwrap();
        cache.remember(v.clone(), cache.generation());
        let before = cache.generation();
        cache.forget(&v);
        assert!(!cache.is_public(&v));
        cache.remember(v.clone(), before);
        assert!(!cache.is_public(&v), "a stale read must not re-cache");
        cache.remember(v.clone(), cache.generation());
        assert!(cache.is_public(&v));
        cache.forget_all();
        assert!(!cache.is_public(&v));
    }
}
