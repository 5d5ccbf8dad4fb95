//! Videos recently seen to be public (or not yet created, which is the same), so that a burst of
//! joins (a reconnect storm, a popular stream starting) does not read a video's visibility from
//! the database once per viewer, nor a hot video's socket posts once per comment. An entry lives
//! `ttl` (`BANTER_WS_PUBLIC_VIDEO_CACHE_MS`, 0 turns it off); anything restricted is never cached
//! and is checked every time. A committed
//! visibility change reaches every node as an access change, which `forget`s the entry at
//! once; a read that began before the change cannot put it back (the generation check).
//!
//! Reads themselves are shared: joins of a video that arrive while its visibility is being
//! read wait for that read instead of starting their own (`read_shared`). In a reconnect storm
//! the entries have expired, and every viewer of a video asks at once; without this, 19,000
//! rejoins queued 19,000 reads on the database pool.
//!
//! Kept out: the access rule itself (`banter_api::check_view`).

use std::time::Duration;

use banter_core::{Video, VideoId};
use banter_realtime::Refusal;
use futures_util::future::BoxFuture;

use banter_api::{AccessCache, SharedReads};

pub struct PublicVideos {
    cache: AccessCache<VideoId, ()>,
    /// Visibility reads in progress, each awaited by every join that asked while it ran.
    reading: SharedReads<VideoId, Result<Option<Video>, Refusal>>,
}

impl PublicVideos {
    pub fn new(ttl: Duration) -> PublicVideos {
        PublicVideos {
            cache: AccessCache::new(ttl),
            reading: SharedReads::default(),
        }
    }

    /// The video as `read` finds it, shared with every caller asking while the read runs:
    /// `read` is called only when no read of `video` is in progress. (It should `remember` a
    /// public video itself, with the generation taken before it reads.)
    pub async fn read_shared(
        &self,
        video: &VideoId,
        read: impl FnOnce() -> BoxFuture<'static, Result<Option<Video>, Refusal>>,
    ) -> Result<Option<Video>, Refusal> {
        self.reading.read(video, read).await
    }

    /// Take this before reading a video's visibility, and pass it to `remember`.
    pub fn generation(&self) -> u64 {
        self.cache.generation()
    }

    /// Drops `video` (its access changed), and any answer still being read: callers arriving
    /// from now on read again.
    pub fn forget(&self, video: &VideoId) {
        self.reading.forget(video);
        self.cache.forget(video);
    }

    pub fn is_public(&self, video: &VideoId) -> bool {
        self.cache.get(video).is_some()
    }

    /// Drops every entry (access changes may have been missed).
    pub fn forget_all(&self) {
        self.reading.forget_all();
        self.cache.forget_all();
    }

    /// Caches `video` as public, unless something was forgotten since `generation` was taken.
    pub fn remember(&self, video: VideoId, generation: u64) {
        self.cache.remember(video, (), generation);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A read that counts itself and takes 50 ms.
    fn counted(reads: &Arc<AtomicUsize>) -> BoxFuture<'static, Result<Option<Video>, Refusal>> {
        reads.fetch_add(1, Ordering::SeqCst);
        Box::pin(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(None)
        })
    }

    #[tokio::test]
    async fn joins_asking_while_a_read_runs_share_it_and_later_ones_read_again() {
        let videos = PublicVideos::new(Duration::ZERO);
        let v = VideoId::parse("v").unwrap();
        let reads = Arc::new(AtomicUsize::new(0));
        let joins = (0..100).map(|_| videos.read_shared(&v, || counted(&reads)));
        let results = futures_util::future::join_all(joins).await;
        assert!(results.iter().all(|r| r == &Ok(None)));
        assert_eq!(reads.load(Ordering::SeqCst), 1, "one read for 100 joins");
        videos.read_shared(&v, || counted(&reads)).await.unwrap();
        assert_eq!(
            reads.load(Ordering::SeqCst),
            2,
            "a finished read is not reused"
        );
    }

    #[tokio::test]
    async fn a_video_forgotten_during_a_read_is_read_again_by_later_joins() {
        let videos = Arc::new(PublicVideos::new(Duration::ZERO));
        let v = VideoId::parse("v").unwrap();
        let reads = Arc::new(AtomicUsize::new(0));
        let first = tokio::spawn({
            let (videos, v, reads) = (videos.clone(), v.clone(), reads.clone());
            async move { videos.read_shared(&v, || counted(&reads)).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        videos.forget(&v);
        videos.read_shared(&v, || counted(&reads)).await.unwrap();
        first.await.unwrap().unwrap();
        assert_eq!(reads.load(Ordering::SeqCst), 2);
    }

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
