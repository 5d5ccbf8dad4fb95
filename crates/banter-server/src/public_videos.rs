//! Videos recently seen to be public (or not yet created, which is the same), so that a burst of
//! joins (a reconnect storm, a popular stream starting) does not read a video's visibility from
//! the database once per viewer. An entry lives `ttl` (`BANTER_WS_PUBLIC_VIDEO_CACHE_MS`, 0 turns
//! it off): making a public video private applies to new joins within that time; anything
//! restricted is never cached and is checked every time.
//!
//! Kept out: the access rule itself (`banter_api::check_view`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use banter_core::VideoId;

/// Beyond this many entries the cache starts over (bounded memory).
const CAPACITY: usize = 100_000;

pub struct PublicVideos {
    ttl: Duration,
    seen: Mutex<HashMap<VideoId, Instant>>,
}

impl PublicVideos {
    pub fn new(ttl: Duration) -> PublicVideos {
        PublicVideos {
            ttl,
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_public(&self, video: &VideoId) -> bool {
        self.seen
            .lock()
            .expect("public videos lock")
            .get(video)
            .is_some_and(|at| at.elapsed() < self.ttl)
    }

    pub fn remember(&self, video: VideoId) {
        if self.ttl.is_zero() {
            return;
        }
        let mut seen = self.seen.lock().expect("public videos lock");
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
        cache.remember(v.clone());
        assert!(cache.is_public(&v));
        cache
            .seen
            .lock()
            .unwrap()
            .insert(v.clone(), Instant::now() - ttl);
        assert!(!cache.is_public(&v));
        let off = PublicVideos::new(Duration::ZERO);
        off.remember(v.clone());
        assert!(!off.is_public(&v));
    }
}
