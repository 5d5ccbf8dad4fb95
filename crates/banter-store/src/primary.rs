//! `PrimaryPool`: the handle for writes and read-your-writes reads. Entity modules add their
//! methods to it (`users.rs`, `comments.rs`, …).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::StoreError;
use crate::backend::{Pool, on_pool};
use crate::group_commit::{GroupCommit, GroupCommitStats};
use crate::session_reads::{SessionReadStats, SessionReads};

#[derive(Clone, Debug)]
pub struct PrimaryPool {
    pool: Pool,
    /// Where read-your-writes reads run: the primary itself on PostgreSQL; on SQLite the
    /// read-only WAL connections, which see every committed write, so reads do not queue
    /// behind the single writer connection.
    reads: Pool,
    /// New comments' per-video batches; shared by every clone of this pool.
    group_commit: Arc<GroupCommit>,
    /// Session checks waiting to be read together; shared by every clone of this pool.
    session_reads: Arc<SessionReads>,
    /// Reads of a video's row (`get_video`), shared by every clone of this pool.
    video_reads: Arc<AtomicU64>,
}

impl PrimaryPool {
    /// A primary whose read-your-writes reads run on `reads` (see the field).
    pub(crate) fn new(pool: Pool, reads: Pool) -> Self {
        Self {
            pool,
            reads,
            group_commit: Arc::default(),
            session_reads: Arc::default(),
            video_reads: Arc::default(),
        }
    }

    pub(crate) fn group_commit(&self) -> &Arc<GroupCommit> {
        &self.group_commit
    }

    /// Batches of new comments committed so far, and the comments in them.
    pub fn group_commit_stats(&self) -> GroupCommitStats {
        self.group_commit.stats()
    }

    pub(crate) fn session_reads(&self) -> &Arc<SessionReads> {
        &self.session_reads
    }

    /// Queries that checked sessions so far, and the sessions they checked.
    pub fn session_read_stats(&self) -> SessionReadStats {
        self.session_reads.stats()
    }

    /// How many times a video's row was read here so far (the access checks' read).
    pub fn video_reads(&self) -> u64 {
        self.video_reads.load(Ordering::Relaxed)
    }

    pub(crate) fn count_video_read(&self) {
        self.video_reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The pool for reads that must see every committed write (not for writes).
    pub(crate) fn reads(&self) -> &Pool {
        &self.reads
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(&self.pool, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
