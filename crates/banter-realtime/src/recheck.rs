//! `Rechecks`: the access re-checks one socket owes, queued by whoever learns that access
//! changed (the hub for an account or a membership, a channel for its video) and worked off by
//! the socket's session, which alone knows its token and which topics it joined. It lives in
//! the socket's `Outq`, whose wake-up the session already waits on.
//!
//! Bounded: at most [`MAX_VIDEOS`] distinct videos wait; beyond that the socket re-checks its
//! whole sign-in and every topic it joined instead (the same outcome, one step coarser).
//!
//! Kept out: the checks themselves (the session asks the `Gateway`).

use std::collections::HashSet;
use std::sync::Mutex;

use banter_core::VideoId;

/// Distinct videos queued before the socket falls back to re-checking everything.
const MAX_VIDEOS: usize = 64;

#[derive(Default)]
pub(crate) struct Rechecks {
    pending: Mutex<Pending>,
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
    }

    /// Takes everything queued; `None` when nothing is.
    pub fn take(&self) -> Option<Pending> {
        let mut pending = self.pending.lock().expect("rechecks lock");
        (!pending.is_empty()).then(|| std::mem::take(&mut *pending))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(id: &str) -> VideoId {
        VideoId::parse(id).unwrap()
    }

    #[test]
    fn queued_videos_are_taken_together_and_nothing_is_missed() {
        let rechecks = Rechecks::default();
        rechecks.video(video("a"));
        rechecks.video(video("b"));
        rechecks.video(video("a"));
        let taken = rechecks.take().unwrap();
        assert!(!taken.account);
        assert_eq!(taken.videos, HashSet::from([video("a"), video("b")]));
        assert_eq!(rechecks.take(), None);
        rechecks.account();
        assert_eq!(
            rechecks.take().unwrap(),
            Pending {
                account: true,
                videos: HashSet::new()
            }
        );
    }

    #[test]
    fn too_many_videos_become_one_full_recheck() {
        let rechecks = Rechecks::default();
        for i in 0..=MAX_VIDEOS {
            rechecks.video(video(&format!("v{i}")));
        }
        let taken = rechecks.take().unwrap();
        assert!(taken.account);
        assert!(taken.videos.is_empty());
    }
}
