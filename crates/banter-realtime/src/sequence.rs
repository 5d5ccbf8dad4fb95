//! `Sequence`: one topic's order on this node — the delivered `seq`, a window of recent
//! comments, creations held back behind a gap, and the reads that fill gaps and serve a
//! joiner's history.
//!
//! Ordering: creations are delivered strictly in `seq` order, each once. An event whose `seq`
//! is at or below the delivered one is a duplicate and dropped; one that skips ahead reveals a
//! gap (a lost or reordered bus message), which is filled from the primary before anything
//! after it is delivered. Because a video's `seq` is assigned under a row lock, every `seq`
//! below a committed one is committed too, so the fill always finds what is missing.
//!
//! Every method that accepts comments returns those that became deliverable, in order; the
//! channel broadcasts them. Kept out: subscribers, presence, encoding.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use banter_core::{Comment, VideoId};
use banter_store::{CommentPage, Store, StoreError};

use crate::RealtimeConfig;
use crate::metrics::HISTORY_READS;

/// Longest gap filled in one database read; larger gaps are filled in several.
const FILL_BATCH: u32 = 500;
/// A join re-reads the tail from the database at most this often (to repair lost tail events).
const JOIN_CATCH_UP_EVERY: Duration = Duration::from_secs(1);
/// A gap is usually a reordering, not a loss: the missing creations are right behind in the
/// mailbox (comments of one batch are published by several tasks). The channel waits this long
/// for them before reading the database (`channel_actor.rs` schedules the repair).
pub(crate) const GAP_WAIT: Duration = Duration::from_millis(50);

pub(crate) struct Sequence {
    video: VideoId,
    store: Store,
    config: Arc<RealtimeConfig>,
    window: VecDeque<Comment>,
    last_seq: i64,
    loaded: bool,
    /// Creations that arrived ahead of a gap that could not be filled yet.
    pending: BTreeMap<i64, Comment>,
    last_join_catch_up: Option<Instant>,
}

impl Sequence {
    pub fn new(video: VideoId, store: Store, config: Arc<RealtimeConfig>) -> Self {
        Self {
            video,
            store,
            config,
            window: VecDeque::new(),
            last_seq: 0,
            loaded: false,
            pending: BTreeMap::new(),
            last_join_catch_up: None,
        }
    }

    /// The last `seq` delivered.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    pub fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Whether creations wait behind a gap.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Reads the latest page; until it succeeds the topic refuses joins.
    pub async fn load(&mut self) {
        let limit = self.config.history_page.max(1) as u32;
        match self
            .store
            .primary()
            .list_comments(&self.video, CommentPage::Latest, limit)
            .await
        {
            Ok(comments) => {
                self.last_seq = comments.last().map_or(0, |c| c.seq);
                self.window = comments.into();
                self.loaded = true;
            }
            Err(e) => {
                tracing::warn!(video = %self.video, error = ?e, "channel could not load history")
            }
        }
    }

    /// After a restart: the order resumes after `seq` (the last one sent to subscribers); the
    /// next catch-up delivers everything committed since, and the window refills from there.
    pub fn resume_after(&mut self, seq: i64) {
        self.last_seq = seq;
        self.window.clear();
        self.pending.clear();
        self.loaded = true;
    }

    /// Before a join: the tail is re-read at most once a second, so a joiner never waits on
    /// comments whose bus messages were lost.
    ///
    /// A joiner that has seen more than this node delivered (`since_seq` above it) even after
    /// waiting for the bus (the channel's `AHEAD_WAIT`: the message was lost) makes the read
    /// at once: otherwise those comments would reach it again as broadcasts.
    pub async fn catch_up_for_join(&mut self, since_seq: Option<i64>) -> Vec<Comment> {
        let ahead = since_seq.is_some_and(|since| since > self.last_seq);
        if !ahead
            && self
                .last_join_catch_up
                .is_some_and(|t| t.elapsed() < JOIN_CATCH_UP_EVERY)
        {
            return Vec::new();
        }
        self.last_join_catch_up = Some(Instant::now());
        self.catch_up().await
    }

    /// The join's history: the latest page, or everything after `since_seq` (with whether the
    /// recovery was complete), cut at the delivered `seq`.
    ///
    /// Answered from the window; a miss within what the window can hold first fills the window
    /// (`backfill`), so a storm of rejoins to one topic costs one read, not one per viewer.
    pub async fn history(&mut self, since_seq: Option<i64>) -> (Vec<Comment>, Option<bool>) {
        let Some(since) = since_seq else {
            return (self.latest_page().await, None);
        };
        if since >= self.last_seq {
            return (Vec::new(), Some(true));
        }
        let missing = (self.last_seq - since.max(0)) as usize;
        if missing > self.config.max_recovery {
            return (self.latest_page().await, Some(false));
        }
        if !self.window_reaches(since) && missing <= self.window_capacity() {
            self.backfill().await;
        }
        if self.window_reaches(since) {
            let from_window = self
                .window
                .iter()
                .filter(|c| c.seq > since)
                .cloned()
                .collect();
            return (from_window, Some(true));
        }
        match self
            .read_history(CommentPage::After(since.max(0)), missing as u32)
            .await
        {
            Ok(mut comments) => {
                comments.retain(|c| c.seq <= self.last_seq);
                (comments, Some(true))
            }
            Err(e) => {
                tracing::warn!(video = %self.video, error = ?e, "recovery read failed");
                (self.latest_page().await, Some(false))
            }
        }
    }

    /// A read from the primary for joins' history (counted: the window missed).
    async fn read_history(
        &self,
        page: CommentPage,
        limit: u32,
    ) -> Result<Vec<Comment>, StoreError> {
        metrics::counter!(HISTORY_READS).increment(1);
        self.store
            .primary()
            .list_comments(&self.video, page, limit)
            .await
    }

    /// Whether the window holds every comment after `since` (up to the delivered `seq`).
    fn window_reaches(&self, since: i64) -> bool {
        match self.window.front() {
            Some(first) => first.seq <= since + 1,
            None => since >= self.last_seq,
        }
    }

    /// The most comments the window keeps.
    fn window_capacity(&self) -> usize {
        self.config.recovery_window.max(self.config.history_page)
    }

    /// Reads the comments before the window's first, as far back as the window can hold, and
    /// puts them in front of it. A failed read leaves the window as it was (the caller then
    /// reads what its joiner needs by itself).
    async fn backfill(&mut self) {
        let floor = (self.last_seq - self.window_capacity() as i64).max(0);
        let first = self.window.front().map_or(self.last_seq + 1, |c| c.seq);
        if first <= floor + 1 {
            return;
        }
        match self
            .read_history(
                CommentPage::Between(floor, first),
                (first - 1 - floor) as u32,
            )
            .await
        {
            // Only a contiguous run ending right before the window keeps the window whole.
            Ok(comments)
                if comments.first().is_some_and(|c| c.seq == floor + 1)
                    && comments.windows(2).all(|w| w[1].seq == w[0].seq + 1)
                    && comments.last().is_some_and(|c| c.seq == first - 1) =>
            {
                for comment in comments.into_iter().rev() {
                    self.window.push_front(comment);
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(video = %self.video, error = ?e, "window backfill failed")
            }
        }
    }

    async fn latest_page(&mut self) -> Vec<Comment> {
        let page = self.config.history_page;
        let empty_topic = self.last_seq == 0;
        let has_page = |window: &VecDeque<Comment>| {
            window.len() >= page || window.front().map_or(empty_topic, |c| c.seq == 1)
        };
        if !has_page(&self.window) {
            self.backfill().await;
        }
        if has_page(&self.window) {
            return self
                .window
                .iter()
                .skip(self.window.len().saturating_sub(page))
                .cloned()
                .collect();
        }
        match self
            .read_history(CommentPage::Before(self.last_seq + 1), page as u32)
            .await
        {
            Ok(comments) => comments,
            Err(_) => self.window.iter().cloned().collect(),
        }
    }

    /// A creation from the bus: dropped if already delivered, delivered if next, otherwise
    /// held until the gap before it is filled: by the missing events arriving, or by the
    /// repair the channel runs [`GAP_WAIT`] later (at once when many are held).
    pub async fn created(&mut self, comment: Comment) -> Vec<Comment> {
        if comment.seq <= self.last_seq {
            return Vec::new();
        }
        if comment.seq == self.last_seq + 1 {
            let mut out = Vec::new();
            self.accept(comment, &mut out);
            self.deliver_pending(&mut out);
            return out;
        }
        self.pending.insert(comment.seq, comment);
        if self.pending.len() >= FILL_BATCH as usize {
            return self.catch_up().await;
        }
        Vec::new()
    }

    /// An edit or deletion from the bus: what it reveals must be delivered first (returned),
    /// and the window keeps the new version.
    pub async fn changed(&mut self, comment: &Comment) -> Vec<Comment> {
        let caught_up = if comment.seq > self.last_seq {
            self.catch_up().await
        } else {
            Vec::new()
        };
        if let Some(slot) = self.window.iter_mut().find(|c| c.seq == comment.seq) {
            *slot = comment.clone();
        }
        caught_up
    }

    /// Everything committed after the delivered `seq`, read from the primary.
    pub async fn catch_up(&mut self) -> Vec<Comment> {
        let mut out = Vec::new();
        loop {
            let page = self
                .store
                .primary()
                .list_comments(&self.video, CommentPage::After(self.last_seq), FILL_BATCH)
                .await;
            match page {
                Ok(comments) => {
                    let full = comments.len() == FILL_BATCH as usize;
                    for comment in comments {
                        if comment.seq == self.last_seq + 1 {
                            self.pending.remove(&comment.seq);
                            self.accept(comment, &mut out);
                        }
                    }
                    if !full {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(video = %self.video, error = ?e, "gap fill failed; will retry");
                    break;
                }
            }
        }
        self.deliver_pending(&mut out);
        out
    }

    fn deliver_pending(&mut self, out: &mut Vec<Comment>) {
        while let Some(entry) = self.pending.first_entry() {
            let seq = *entry.key();
            if seq <= self.last_seq {
                entry.remove();
            } else if seq == self.last_seq + 1 {
                let comment = entry.remove();
                self.accept(comment, out);
            } else {
                break;
            }
        }
    }

    fn accept(&mut self, comment: Comment, out: &mut Vec<Comment>) {
        self.last_seq = comment.seq;
        self.window.push_back(comment.clone());
        while self.window.len() > self.window_capacity() {
            self.window.pop_front();
        }
        out.push(comment);
    }
}
