//! `Rechecks`: the access re-checks one socket owes, queued by whoever learns that access
//! changed (the hub for an account or a membership, a channel for its video) and worked off by
//! the socket's session, which alone knows its token and which topics it joined.
//!
//! Bounded: at most [`MAX_VIDEOS`] distinct videos wait; beyond that the socket re-checks its
//! whole sign-in and every topic it joined instead (the same outcome, one step coarser).
//!
//! Kept out: the checks themselves (the session asks the `Gateway`).

use std::collections::HashSet;
use std::sync::Mutex;

use banter_core::VideoId;
use tokio::sync::Notify;

/// Distinct videos queued before the socket falls back to re-checking everything.
const MAX_VIDEOS: usize = 64;

#[derive(Default)]
pub(crate) struct Rechecks {
    pending: Mutex<Pending>,
    notify: Notify,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Pending {
    /// Re-authenticate the socket's token, then re-check every joined topic.
    pub account: bool,
    /// Re-check these topics (those joined).
    pub videos: HashSet<VideoId>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        !self.account && self.videos.is_empty()
    }
}

impl Rechecks {
    pub fn account(&self) {
        let mut pending = self.pending.lock().expect("rechecks lock");
        pending.account = true;
        pending.videos.clear();
        drop(pending);
        self.notify.notify_one();
    }

    pub fn video(&self, video: VideoId) {
        let mut pending = self.pending.lock().expect("rechecks lock");
        if pending.account {
            return; // already re-checking everything
        }
        if pending.videos.len() >= MAX_VIDEOS {
            pending.account = true;
            pending.videos.clear();
        } else {
            pending.videos.insert(video);
        }
        drop(pending);
        self.notify.notify_one();
    }

    /// Waits until something is queued and takes all of it. The session polls this on every
    /// turn of its loop, so nothing is locked until a change was signalled: every queued change
    /// calls `notify_one`, which leaves a permit when no one waits, so none is missed.
    pub async fn next(&self) -> Pending {
        loop {
            self.notify.notified().await;
            let mut pending = self.pending.lock().expect("rechecks lock");
            if !pending.is_empty() {
                return std::mem::take(&mut *pending);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(id: &str) -> VideoId {
        VideoId::parse(id).unwrap()
    }

    #[tokio::test]
    async fn queued_videos_are_taken_together_and_nothing_is_missed() {
        let rechecks = Rechecks::default();
        rechecks.video(video("a"));
        rechecks.video(video("b"));
        rechecks.video(video("a"));
        let taken = rechecks.next().await;
        assert!(!taken.account);
        assert_eq!(taken.videos, HashSet::from([video("a"), video("b")]));
        // A change queued while nobody waits wakes the next wait.
        rechecks.account();
        assert_eq!(
            rechecks.next().await,
            Pending {
                account: true,
                videos: HashSet::new()
            }
        );
    }

    #[tokio::test]
    async fn too_many_videos_become_one_full_recheck() {
        let rechecks = Rechecks::default();
        for i in 0..=MAX_VIDEOS {
            rechecks.video(video(&format!("v{i}")));
        }
        let taken = rechecks.next().await;
        assert!(taken.account);
        assert!(taken.videos.is_empty());
    }
}
