//! Group commit per video: comments for one video that arrive while its commit is in flight are
//! committed together, in one transaction that takes a block of `seq`s, inserts them all with
//! one multi-row `INSERT` and pays one fsync.
//!
//! Each video with pending comments has at most one committer task at a time. A caller queues
//! its comment and waits for the answer; the first caller of an idle video spawns the committer,
//! which takes up to [`MAX_BATCH`] queued comments, commits them, answers each, and repeats until
//! the queue is empty. The order within a batch (and so the `seq` order) is the order the comments
//! were queued. Two nodes batching the same video still serialise on the video's row, batch by
//! batch, so `seq` stays gap-free across nodes.
//!
//! Durability is the database's normal one: a comment is answered only after its batch's commit
//! returned. A failed batch rolls back as a whole and every comment in it gets the error.
//! The queue per video is bounded in length and in time, so overload is answered, not waited out:
//! - beyond [`MAX_QUEUED`] waiting comments, a comment is refused at once with
//!   [`StoreError::Busy`];
//! - while the video's batch in flight has taken [`MAX_WAIT`] or longer (the database is slow or
//!   locked), a new comment is refused at once as well;
//! - a comment still waiting for a batch [`MAX_WAIT`] after it was queued withdraws and is
//!   refused. One already taken into a batch waits for that batch's commit, which alone decides.
//!
//! So a comment is answered within `MAX_WAIT` plus one batch's commit. Without the time bound,
//! batches that slowed to one or two a second (one video at 5,000–6,000 asked comments/s on
//! PostgreSQL, its pool starved by other reads) left the 4,096 queued comments waiting up to
//! 11 s, some past the moment their clients gave up.
//!
//! Kept out: the SQL of one batch (`comments.rs`), per-comment rules (rate limits, access,
//! validation), which callers apply before queueing.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banter_core::{Comment, CommentBody, UserId, VideoId};
use tokio::sync::oneshot;

use crate::backend::Pool;
use crate::{StoreError, comments};

/// The most comments one transaction inserts. Bounded so a batch's statement stays well under
/// either backend's bind-parameter limit and one commit's latency stays short.
pub const MAX_BATCH: usize = 256;
/// The most comments that may wait for one video's committer; more are refused with `Busy`.
pub const MAX_QUEUED: usize = 4096;
/// The longest a comment waits for a batch to take it, and the longest a batch may be in flight
/// before new comments are refused instead of queued.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

/// One comment waiting for its batch.
pub(crate) struct Pending {
    /// Which comment, so a waiter that gives up can withdraw it.
    id: u64,
    pub(crate) author: UserId,
    pub(crate) body: CommentBody,
    reply: oneshot::Sender<Result<Comment, StoreError>>,
}

struct Queue {
    waiting: VecDeque<Pending>,
    /// When the batch being committed was taken; `None` between batches.
    in_flight_since: Option<Instant>,
}

impl Queue {
    /// Whether a new comment would wait too long: the queue is full, or its batch in flight has
    /// been committing for `MAX_WAIT` already.
    fn refuses(&self) -> bool {
        self.waiting.len() >= MAX_QUEUED
            || self
                .in_flight_since
                .is_some_and(|since| since.elapsed() >= MAX_WAIT)
    }
}

/// The per-video queues of one primary pool.
#[derive(Default)]
pub(crate) struct GroupCommit {
    videos: Mutex<HashMap<VideoId, Queue>>,
    batches: AtomicU64,
    committed: AtomicU64,
    next_id: AtomicU64,
}

/// What the group commit has done since start (for metrics): batches committed and the comments
/// in them. `comments / batches` is the mean batch size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    pub batches: u64,
    pub comments: u64,
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").finish_non_exhaustive()
    }
}

impl GroupCommit {
    pub(crate) fn stats(&self) -> GroupCommitStats {
        GroupCommitStats {
            batches: self.batches.load(Ordering::Relaxed),
            comments: self.committed.load(Ordering::Relaxed),
        }
    }

    /// Queues a comment for `video` and waits for its batch to commit.
    pub(crate) async fn submit(
        self: &Arc<Self>,
        pool: &Pool,
        video: &VideoId,
        author: UserId,
        body: &CommentBody,
    ) -> Result<Comment, StoreError> {
        let (reply, mut answer) = oneshot::channel();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let pending = Pending {
            id,
            author,
            body: body.clone(),
            reply,
        };
        let start = {
            let mut videos = self.videos.lock().expect("group commit lock");
            match videos.get_mut(video) {
                // A committer runs for this video: it will take this comment with a next batch.
                Some(queue) => {
                    if queue.refuses() {
                        return Err(StoreError::Busy);
                    }
                    queue.waiting.push_back(pending);
                    false
                }
                None => {
                    videos.insert(
                        video.clone(),
                        Queue {
                            waiting: VecDeque::from([pending]),
                            in_flight_since: None,
                        },
                    );
                    true
                }
            }
        };
        if start {
            // A task of its own, so a caller that gives up (a closed HTTP request) cannot cancel
            // a batch that carries other callers' comments.
            tokio::spawn(self.clone().commit_until_idle(pool.clone(), video.clone()));
        }
        let answered = match tokio::time::timeout(MAX_WAIT, &mut answer).await {
            Ok(answered) => answered,
            // Still waiting for a batch: withdraw it and refuse. Taken into one already: that
            // batch's commit decides, however long it takes.
            Err(_) if self.withdraw(video, id) => return Err(StoreError::Busy),
            Err(_) => answer.await,
        };
        answered.map_err(|_| {
            StoreError::Unexpected(anyhow::anyhow!("the comment's batch was abandoned"))
        })?
    }

    /// Removes comment `id` from the video's queue if no batch has taken it yet.
    fn withdraw(&self, video: &VideoId, id: u64) -> bool {
        let mut videos = self.videos.lock().expect("group commit lock");
        let Some(queue) = videos.get_mut(video) else {
            return false;
        };
        match queue.waiting.iter().position(|p| p.id == id) {
            Some(at) => queue.waiting.remove(at).is_some(),
            None => false,
        }
    }

    /// Commits the video's queued comments batch by batch until none are left, then removes the
    /// video's queue (so the next comment starts a new committer).
    async fn commit_until_idle(self: Arc<Self>, pool: Pool, video: VideoId) {
        // If this task dies (a panic, a runtime shutting down), the queue must not outlive it:
        // later comments would wait for a committer that no longer exists.
        let guard = Abandon {
            owner: &self,
            video: &video,
        };
        loop {
            let batch = {
                let mut videos = self.videos.lock().expect("group commit lock");
                let Some(queue) = videos.get_mut(&video) else {
                    return;
                };
                if queue.waiting.is_empty() {
                    videos.remove(&video);
                    std::mem::forget(guard);
                    return;
                }
                let take = queue.waiting.len().min(MAX_BATCH);
                queue.in_flight_since = Some(Instant::now());
                queue.waiting.drain(..take).collect::<Vec<_>>()
            };
            let rows: Vec<(UserId, &CommentBody)> =
                batch.iter().map(|p| (p.author, &p.body)).collect();
            let result = comments::insert_batch(&pool, &video, &rows).await;
            drop(rows);
            if let Some(queue) = self
                .videos
                .lock()
                .expect("group commit lock")
                .get_mut(&video)
            {
                queue.in_flight_since = None;
            }
            match result {
                Ok(committed) => {
                    self.batches.fetch_add(1, Ordering::Relaxed);
                    self.committed
                        .fetch_add(committed.len() as u64, Ordering::Relaxed);
                    for (pending, comment) in batch.into_iter().zip(committed) {
                        let _ = pending.reply.send(Ok(comment));
                    }
                }
                Err(err) => {
                    for pending in batch {
                        let _ = pending.reply.send(Err(err.copy()));
                    }
                }
            }
        }
    }
}

/// Removes a video's queue when its committer ends abnormally; the dropped reply senders tell
/// the waiting callers their batch was abandoned.
struct Abandon<'a> {
    owner: &'a GroupCommit,
    video: &'a VideoId,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if let Ok(mut videos) = self.owner.videos.lock() {
            videos.remove(self.video);
        }
    }
}
