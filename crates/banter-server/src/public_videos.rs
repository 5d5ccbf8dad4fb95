//! Videos recently seen to be public (or not yet created, which is the same), so that a burst of
//! joins (a reconnect storm, a popular stream starting) does not read a video's visibility from
//! the database once per viewer. An entry lives `ttl` (`BANTER_WS_PUBLIC_VIDEO_CACHE_MS`, 0 turns
//! it off); anything restricted is never cached and is checked every time. A committed
//! visibility change reaches every node as an access change, which `forget`s the entry at
//! once; a read that began before the change cannot put it back (the generation check).
//!
//! Kept out: the access rule itself (`banter_api::check_view`).

use std::time::Duration;

use banter_core::VideoId;

use banter_api::AccessCache;

pub struct PublicVideos {
    cache: AccessCache<VideoId, ()>,
}

impl PublicVideos {
    pub fn new(ttl: Duration) -> PublicVideos {
        PublicVideos {
            cache: AccessCache::new(ttl),
        }
    }

    /// Take this before reading a video's visibility, and pass it to `remember`.
    pub fn generation(&self) -> u64 {
        self.cache.generation()
    }

    /// Drops `video` (its access changed), and any answer still being read.
    pub fn forget(&self, video: &VideoId) {
        self.cache.forget(video);
    }

    pub fn is_public(&self, video: &VideoId) -> bool {
        self.cache.get(video).is_some()
    }

    /// Drops every entry (access changes may have been missed).
    pub fn forget_all(&self) {
        self.cache.forget_all();
    }

    /// Caches `video` as public, unless something was forgotten since `generation` was taken.
    pub fn remember(&self, video: VideoId, generation: u64) {
        self.cache.remember(video, (), generation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_videos_are_public_and_a_zero_lifetime_caches_nothing() {
        let cache = PublicVideos::new(Duration::from_secs(2));
        let v = VideoId::parse("v").unwrap();
        assert!(!cache.is_public(&v));
        cache.remember(v.clone(), cache.generation());
        assert!(cache.is_public(&v));
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
