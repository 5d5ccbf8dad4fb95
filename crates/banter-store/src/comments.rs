//! Comments and the per-video order (`seq`).
//!
//! New comments are committed in batches per video (`group_commit.rs` decides what goes in a
//! batch). A batch's `seq`s are assigned inside its transaction by adding the batch's size to
//! `videos.last_seq`. The row lock taken by that upsert serialises writers of one video (and
//! only of that video, across nodes too), and a rolled-back batch rolls back its increment, so
//! committed comments get 1, 2, 3, … with no gaps. On SQLite the single writer connection gives
//! the same guarantee.

use banter_core::{ChatRole, Comment, CommentBody, CommentId, UserId, VideoId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::{Pool, on_pool};
use crate::webhooks::{comment_event, insert_event};
use crate::{PrimaryPool, ReadPool, StoreError};

/// Which slice of a video's comments to read, by `seq` (keyset pagination).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommentPage {
    /// The newest comments.
    Latest,
    /// Comments with `seq` greater than this, oldest first.
    After(i64),
    /// Comments with `seq` less than this, i.e. the page before it.
    Before(i64),
    /// Comments with `seq` strictly between the two, oldest first.
    Between(i64, i64),
}

#[derive(sqlx::FromRow)]
pub(crate) struct CommentRow {
    id: Uuid,
    video_id: String,
    seq: i64,
    user_id: Uuid,
    username: String,
    body: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
    deleted_at: Option<OffsetDateTime>,
    /// The author's role on the video, computed when read (see `author_role` in the SQL).
    author_role: Option<String>,
}

impl TryFrom<CommentRow> for Comment {
    type Error = StoreError;

    fn try_from(row: CommentRow) -> Result<Self, StoreError> {
        Ok(Comment {
            id: CommentId::from_uuid(row.id),
            video_id: VideoId::parse(&row.video_id)
                .map_err(|_| anyhow::anyhow!("stored video id is invalid"))?,
            seq: row.seq,
            user_id: UserId::from_uuid(row.user_id),
            username: row.username,
            body: row.deleted_at.is_none().then_some(row.body),
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
            author_role: row
                .author_role
                .as_deref()
                .map(str::parse::<ChatRole>)
                .transpose()
                .map_err(|_| anyhow::anyhow!("computed author role is invalid"))?,
        })
    }
}

const GET_COMMENT: &str = "SELECT c.id, c.video_id, c.seq, c.user_id, u.username, c.body, c.created_at, c.updated_at, c.deleted_at, CASE WHEN u.role = 'admin' THEN 'admin' WHEN v.owner_id = c.user_id THEN 'owner' WHEN u.role = 'moderator' OR EXISTS (SELECT 1 FROM video_moderators m WHERE m.video_id = c.video_id AND m.user_id = c.user_id) THEN 'moderator' END AS author_role \
         FROM comments c JOIN users u ON u.id = c.user_id JOIN videos v ON v.id = c.video_id WHERE c.id = $1";

async fn get_comment(pool: &Pool, id: CommentId) -> Result<Option<CommentRow>, sqlx::Error> {
    on_pool!(pool, |p| {
        sqlx::query_as::<_, CommentRow>(GET_COMMENT)
            .bind(id.as_uuid())
            .fetch_optional(p)
            .await
    })
}

async fn list_comments(
    pool: &Pool,
    video: &VideoId,
    page: CommentPage,
    limit: u32,
) -> Result<Vec<CommentRow>, sqlx::Error> {
    const AFTER: &str = "SELECT c.id, c.video_id, c.seq, c.user_id, u.username, c.body, c.created_at, c.updated_at, c.deleted_at, CASE WHEN u.role = 'admin' THEN 'admin' WHEN v.owner_id = c.user_id THEN 'owner' WHEN u.role = 'moderator' OR EXISTS (SELECT 1 FROM video_moderators m WHERE m.video_id = c.video_id AND m.user_id = c.user_id) THEN 'moderator' END AS author_role \
         FROM comments c JOIN users u ON u.id = c.user_id JOIN videos v ON v.id = c.video_id WHERE c.video_id = $1 AND c.seq > $2 AND c.seq < $4 ORDER BY c.seq ASC LIMIT $3";
    const BEFORE: &str = "SELECT c.id, c.video_id, c.seq, c.user_id, u.username, c.body, c.created_at, c.updated_at, c.deleted_at, CASE WHEN u.role = 'admin' THEN 'admin' WHEN v.owner_id = c.user_id THEN 'owner' WHEN u.role = 'moderator' OR EXISTS (SELECT 1 FROM video_moderators m WHERE m.video_id = c.video_id AND m.user_id = c.user_id) THEN 'moderator' END AS author_role \
         FROM comments c JOIN users u ON u.id = c.user_id JOIN videos v ON v.id = c.video_id WHERE c.video_id = $1 AND c.seq < $2 AND c.seq > $4 ORDER BY c.seq DESC LIMIT $3";
    let (sql, bound, other, descending) = match page {
        CommentPage::After(seq) => (AFTER, seq, i64::MAX, false),
        CommentPage::Between(after, before) => (AFTER, after, before, false),
        CommentPage::Before(seq) => (BEFORE, seq, i64::MIN, true),
        CommentPage::Latest => (BEFORE, i64::MAX, i64::MIN, true),
    };
    let mut rows = on_pool!(pool, |p| {
        sqlx::query_as::<_, CommentRow>(sql)
            .bind(video.as_ref())
            .bind(bound)
            .bind(i64::from(limit))
            .bind(other)
            .fetch_all(p)
            .await
    })?;
    if descending {
        rows.reverse();
    }
    Ok(rows)
}

/// Commits one batch of new comments for `video` in one transaction: creates the video if
/// needed and takes a block of `seq`s with one upsert of its row (which also says whether any
/// webhook subscription exists), inserts every comment with one multi-row `INSERT` that returns
/// them (with their authors' names and roles), and writes the webhooks' events only when a
/// subscription exists. The comments get consecutive `seq`s in the order given, and all share
/// one `created_at`. Four statements from `BEGIN` to `COMMIT` without subscriptions, five with:
/// on SQLite each is a round trip to sqlx's worker thread.
pub(crate) async fn insert_batch(
    pool: &Pool,
    video: &VideoId,
    batch: &[(UserId, &CommentBody)],
) -> Result<Vec<Comment>, StoreError> {
    // The inserted rows as every comment read returns them (`GET_COMMENT`'s columns), computed
    // per row by subqueries: a `RETURNING` clause sees only the table it writes.
    const RETURNING: &str = " RETURNING id, video_id, seq, user_id, \
         (SELECT u.username FROM users u WHERE u.id = comments.user_id) AS username, \
         body, created_at, updated_at, deleted_at, \
         CASE WHEN (SELECT u.role FROM users u WHERE u.id = comments.user_id) = 'admin' THEN 'admin' \
         WHEN (SELECT v.owner_id FROM videos v WHERE v.id = comments.video_id) = comments.user_id THEN 'owner' \
         WHEN (SELECT u.role FROM users u WHERE u.id = comments.user_id) = 'moderator' \
         OR EXISTS (SELECT 1 FROM video_moderators m WHERE m.video_id = comments.video_id AND m.user_id = comments.user_id) THEN 'moderator' END AS author_role";
    // Microseconds: what both backends store, so the answer equals a later read.
    let now = OffsetDateTime::now_utc();
    let now = now
        .replace_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now);
    let count = i64::try_from(batch.len()).map_err(anyhow::Error::from)?;
    let rows = on_pool!(pool, |p| {
        let mut tx = p.begin().await?;
        // One statement creates the video if needed and takes the block of seqs (one round
        // trip less per batch than an insert and an update), and tells whether the webhooks'
        // outbox is written at all (one round trip less again while no subscription exists).
        let (last, owner, hooks): (i64, Option<Uuid>, bool) = sqlx::query_as(
            "INSERT INTO videos (id, visibility, last_seq, created_at) VALUES ($1, 'public', $2, $3) \
             ON CONFLICT (id) DO UPDATE SET last_seq = videos.last_seq + excluded.last_seq \
             RETURNING last_seq, owner_id, EXISTS (SELECT 1 FROM webhook_subscriptions) AS hooks",
        )
        .bind(video.as_ref())
        .bind(count)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let first = last - count;
        let mut insert = sqlx::QueryBuilder::new(
            "INSERT INTO comments (id, video_id, seq, user_id, body, created_at, updated_at) ",
        );
        insert.push_values(
            batch.iter().zip(first + 1..),
            |mut row, ((author, body), seq)| {
                row.push_bind(CommentId::generate().as_uuid())
                    .push_bind(video.as_ref())
                    .push_bind(seq)
                    .push_bind(author.as_uuid())
                    .push_bind(body.as_ref())
                    .push_bind(now)
                    .push_bind(now);
            },
        );
        insert.push(RETURNING);
        let mut comments = insert
            .build_query_as::<CommentRow>()
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(Comment::try_from)
            .collect::<Result<Vec<Comment>, StoreError>>()
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        // `RETURNING` promises no order.
        comments.sort_unstable_by_key(|c| c.seq);
        // The batch's events, in the same transaction (the webhooks' outbox).
        if hooks && !comments.is_empty() {
            // Still checked here: a subscription may have been removed since the upsert.
            let mut events = sqlx::QueryBuilder::new(
                "INSERT INTO webhook_events (kind, video_id, owner_id, payload, created_at) \
                 SELECT * FROM (",
            );
            events.push_values(&comments, |mut row, c| {
                row.push_bind("comment.created")
                    .push_bind(video.as_ref())
                    .push_bind(owner)
                    .push_bind(comment_event(c))
                    .push_bind(now);
            });
            events.push(") AS v WHERE EXISTS (SELECT 1 FROM webhook_subscriptions)");
            events.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok::<_, sqlx::Error>(comments)
    })?;
    if rows.len() != batch.len() {
        return Err(anyhow::anyhow!(
            "a committed batch of {} comments read back {}",
            batch.len(),
            rows.len()
        )
        .into());
    }
    Ok(rows)
}

impl PrimaryPool {
    /// Commits a comment and assigns it the video's next `seq`, creating the video (public, no
    /// owner) if this is its first comment. Comments for one video that arrive while another
    /// batch of it commits are committed together (`group_commit.rs`); the answer comes after
    /// the commit.
    #[tracing::instrument(name = "db.create_comment", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn create_comment(
        &self,
        video: &VideoId,
        author: UserId,
        body: &CommentBody,
    ) -> Result<Comment, StoreError> {
        self.group_commit()
            .submit(self.pool(), video, author, body)
            .await
    }

    #[tracing::instrument(name = "db.get_comment", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn get_comment(&self, id: CommentId) -> Result<Option<Comment>, StoreError> {
        get_comment(self.reads(), id)
            .await?
            .map(TryInto::try_into)
            .transpose()
    }

    /// Replaces the body of a live comment; `None` if it does not exist or is deleted.
    #[tracing::instrument(name = "db.update_comment", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn update_comment(
        &self,
        id: CommentId,
        body: &CommentBody,
    ) -> Result<Option<Comment>, StoreError> {
        const SQL: &str =
            "UPDATE comments SET body = $2, updated_at = $3 WHERE id = $1 AND deleted_at IS NULL";
        self.change_comment("comment.updated", SQL, id, body.as_ref())
            .await
    }

    /// Soft-deletes a comment: the body is erased, the `seq` stays taken. `None` if it does not
    /// exist or is already deleted.
    #[tracing::instrument(name = "db.delete_comment", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn delete_comment(&self, id: CommentId) -> Result<Option<Comment>, StoreError> {
        const SQL: &str = "UPDATE comments SET body = $2, deleted_at = $3, updated_at = $3 WHERE id = $1 AND deleted_at IS NULL";
        self.change_comment("comment.deleted", SQL, id, "").await
    }

    /// Runs `sql` (binding the id, a body and now) on a live comment and writes the event of
    /// the change in the same transaction; the comment as changed, `None` if there was none.
    async fn change_comment(
        &self,
        kind: &'static str,
        sql: &'static str,
        id: CommentId,
        body: &str,
    ) -> Result<Option<Comment>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let changed = on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            let n = sqlx::query(sql)
                .bind(id.as_uuid())
                .bind(body)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let comment = sqlx::query_as::<_, CommentRow>(GET_COMMENT)
                .bind(id.as_uuid())
                .fetch_one(&mut *tx)
                .await
                .map(Comment::try_from)?
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            insert_event!(
                tx,
                kind,
                Some(comment.video_id.as_ref()),
                comment_event(&comment),
                now
            )?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some(comment))
        })?;
        Ok(changed)
    }

    /// Like [`ReadPool::list_comments`], on the primary (for recovery that must not miss a
    /// comment that was just committed).
    #[tracing::instrument(name = "db.list_comments", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn list_comments(
        &self,
        video: &VideoId,
        page: CommentPage,
        limit: u32,
    ) -> Result<Vec<Comment>, StoreError> {
        let rows = list_comments(self.reads(), video, page, limit).await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}

impl ReadPool {
    /// A page of a video's comments in ascending `seq` order, deleted ones included (with no
    /// body) so a client sees the order without holes.
    pub async fn list_comments(
        &self,
        video: &VideoId,
        page: CommentPage,
        limit: u32,
    ) -> Result<Vec<Comment>, StoreError> {
        let rows = self
            .run(|pool| async move { list_comments(&pool, video, page, limit).await })
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }
}
