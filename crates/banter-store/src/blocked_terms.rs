//! Blocked terms (per video, or site-wide) and the comments held for review when a video holds
//! rather than refuses what matches them. Terms are written folded, as they are matched
//! (`banter_core::BlockedTerm`); a list is replaced whole, with its log row, in one transaction.
//!
//! Kept out: matching and what a match means (`banter-api`'s chat rules).

use banter_core::{BlockedTerm, CommentId, HeldComment, UserId, VideoId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::moderation::{BanScope, NewLogEntry, insert_log};
use crate::{PrimaryPool, StoreError};

#[derive(sqlx::FromRow)]
struct HeldRow {
    id: Uuid,
    video_id: String,
    user_id: Uuid,
    username: String,
    body: String,
    matched_term: String,
    created_at: OffsetDateTime,
}

impl TryFrom<HeldRow> for HeldComment {
    type Error = StoreError;

    fn try_from(row: HeldRow) -> Result<HeldComment, StoreError> {
        Ok(HeldComment {
            id: CommentId::from_uuid(row.id),
            video_id: VideoId::parse(&row.video_id)
                .map_err(|_| anyhow::anyhow!("stored video id is invalid"))?,
            user_id: UserId::from_uuid(row.user_id),
            username: row.username,
            body: row.body,
            matched_term: row.matched_term,
            created_at: row.created_at,
        })
    }
}

impl PrimaryPool {
    /// The blocked terms of `scope`, sorted.
    #[tracing::instrument(name = "db.blocked_terms", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn blocked_terms(&self, scope: &BanScope) -> Result<Vec<BlockedTerm>, StoreError> {
        let terms: Vec<String> = crate::backend::on_pool!(self.reads(), |p| {
            sqlx::query_scalar("SELECT term FROM blocked_terms WHERE scope = $1 ORDER BY term")
                .bind(scope.key())
                .fetch_all(p)
                .await
        })?;
        Ok(terms.into_iter().map(BlockedTerm::from_folded).collect())
    }

    /// Replaces the blocked terms of `scope` with `terms`.
    #[tracing::instrument(name = "db.set_blocked_terms", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn set_blocked_terms(
        &self,
        scope: &BanScope,
        terms: &[BlockedTerm],
        log: NewLogEntry<'_>,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        crate::backend::on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM blocked_terms WHERE scope = $1")
                .bind(scope.key())
                .execute(&mut *tx)
                .await?;
            for term in terms {
                sqlx::query(
                    "INSERT INTO blocked_terms (scope, term, added_by, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(scope.key())
                .bind(term.as_ref())
                .bind(log.actor.as_uuid())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            insert_log!(tx, log, now)?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// Keeps a comment for the video's moderators to review.
    #[tracing::instrument(name = "db.hold_comment", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn hold_comment(
        &self,
        video: &VideoId,
        author: UserId,
        body: &str,
        matched: &BlockedTerm,
    ) -> Result<HeldComment, StoreError> {
        let id = CommentId::generate();
        let now = OffsetDateTime::now_utc();
        crate::backend::on_pool!(self.pool(), |p| {
            sqlx::query(
                "INSERT INTO held_comments (id, video_id, user_id, body, matched_term, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id.as_uuid())
            .bind(video.as_ref())
            .bind(author.as_uuid())
            .bind(body)
            .bind(matched.as_ref())
            .bind(now)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })?;
        self.held_comment(video, id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("a held comment just written is gone").into())
    }

    /// The comments held on `video`, oldest first.
    #[tracing::instrument(name = "db.held_comments", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn held_comments(&self, video: &VideoId) -> Result<Vec<HeldComment>, StoreError> {
        const SQL: &str = "SELECT h.id, h.video_id, h.user_id, u.username, h.body, h.matched_term, h.created_at \
             FROM held_comments h JOIN users u ON u.id = h.user_id WHERE h.video_id = $1 ORDER BY h.created_at, h.id";
        let rows = crate::backend::on_pool!(self.reads(), |p| {
            sqlx::query_as::<_, HeldRow>(SQL)
                .bind(video.as_ref())
                .fetch_all(p)
                .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    async fn held_comment(
        &self,
        video: &VideoId,
        id: CommentId,
    ) -> Result<Option<HeldComment>, StoreError> {
        const SQL: &str = "SELECT h.id, h.video_id, h.user_id, u.username, h.body, h.matched_term, h.created_at \
             FROM held_comments h JOIN users u ON u.id = h.user_id WHERE h.video_id = $1 AND h.id = $2";
        let row = crate::backend::on_pool!(self.reads(), |p| {
            sqlx::query_as::<_, HeldRow>(SQL)
                .bind(video.as_ref())
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    /// Takes the held comment `id` of `video` off the queue (approved or rejected, as `log`
    /// says), in one transaction with its log row; `None` if it is not held (any more). Of two
    /// moderators deciding at once, one gets it.
    #[tracing::instrument(name = "db.take_held_comment", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn take_held_comment(
        &self,
        video: &VideoId,
        id: CommentId,
        log: NewLogEntry<'_>,
    ) -> Result<Option<HeldComment>, StoreError> {
        let Some(held) = self.held_comment(video, id).await? else {
            return Ok(None);
        };
        let now = OffsetDateTime::now_utc();
        let taken = crate::backend::on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            let taken = sqlx::query("DELETE FROM held_comments WHERE video_id = $1 AND id = $2")
                .bind(video.as_ref())
                .bind(id.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if taken > 0 {
                insert_log!(tx, log, now)?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(taken > 0)
        })?;
        Ok(taken.then_some(held))
    }

    /// Puts a taken comment back on the queue (its approval could not be committed).
    #[tracing::instrument(name = "db.restore_held_comment", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn restore_held_comment(&self, held: &HeldComment) -> Result<(), StoreError> {
        crate::backend::on_pool!(self.pool(), |p| {
            sqlx::query(
                "INSERT INTO held_comments (id, video_id, user_id, body, matched_term, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(held.id.as_uuid())
            .bind(held.video_id.as_ref())
            .bind(held.user_id.as_uuid())
            .bind(held.body.as_str())
            .bind(held.matched_term.as_str())
            .bind(held.created_at)
            .execute(p)
            .await
            .map(|r| r.rows_affected())
        })?;
        Ok(())
    }
}
