//! A video's chat rules and what moderators do to them: appointed moderators, bans and
//! timeouts (per video, or site-wide), chat settings, the pinned comment, removing a user's
//! comments, and the moderation log.
//!
//! Every change is written in one transaction with its log row, so the log lists exactly the
//! actions that took effect. Expiry is decided here in Rust against the caller's clock, not in
//! SQL, so both backends compare timestamps the same way.
//!
//! Kept out: who may do what (`banter_core::ChatRole`, enforced by the API).

use banter_core::{ChatSettings, Comment, CommentId, UserId, Video, VideoId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::{Pool, on_pool};
use crate::comments::CommentRow;
use crate::videos::VideoRow;
use crate::webhooks::{comment_event, insert_event};
use crate::{PrimaryPool, StoreError};

/// Where a ban applies.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BanScope {
    Video(VideoId),
    Site,
}

impl BanScope {
    /// The `chat_bans.scope` column: the video id, or '' for the site.
    pub(crate) fn key(&self) -> &str {
        match self {
            BanScope::Video(video) => video.as_ref(),
            BanScope::Site => "",
        }
    }
}

/// A ban or timeout in force.
#[derive(Clone, Debug, PartialEq)]
pub struct Ban {
    pub user_id: UserId,
    pub username: String,
    /// `None`: permanent.
    pub expires_at: Option<OffsetDateTime>,
    pub reason: Option<String>,
    pub banned_by: UserId,
    pub created_at: OffsetDateTime,
}

impl Ban {
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// One action for the moderation log.
#[derive(Clone, Debug)]
pub struct NewLogEntry<'a> {
    /// `None`: a site-wide action.
    pub video: Option<&'a VideoId>,
    pub actor: UserId,
    /// A stable action name (`ban`, `timeout`, `unban`, `pin`, …).
    pub action: &'static str,
    pub target_user: Option<UserId>,
    pub target_comment: Option<CommentId>,
    pub reason: Option<&'a str>,
    /// A JSON object with the action's particulars (durations, settings).
    pub details: String,
}

/// One row of the moderation log, with the names of those involved.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    pub id: i64,
    pub video_id: Option<String>,
    pub actor_id: UserId,
    pub actor_username: Option<String>,
    pub action: String,
    pub target_user_id: Option<UserId>,
    pub target_username: Option<String>,
    pub target_comment_id: Option<CommentId>,
    pub reason: Option<String>,
    pub details: String,
    pub created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct BanRow {
    user_id: Uuid,
    username: String,
    expires_at: Option<OffsetDateTime>,
    reason: Option<String>,
    banned_by: Uuid,
    created_at: OffsetDateTime,
}

impl From<BanRow> for Ban {
    fn from(row: BanRow) -> Ban {
        Ban {
            user_id: UserId::from_uuid(row.user_id),
            username: row.username,
            expires_at: row.expires_at,
            reason: row.reason,
            banned_by: UserId::from_uuid(row.banned_by),
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct LogRow {
    id: i64,
    video_id: Option<String>,
    actor_id: Uuid,
    actor_username: Option<String>,
    action: String,
    target_user_id: Option<Uuid>,
    target_username: Option<String>,
    target_comment_id: Option<Uuid>,
    reason: Option<String>,
    details: String,
    created_at: OffsetDateTime,
}

impl From<LogRow> for LogEntry {
    fn from(row: LogRow) -> LogEntry {
        LogEntry {
            id: row.id,
            video_id: row.video_id,
            actor_id: UserId::from_uuid(row.actor_id),
            actor_username: row.actor_username,
            action: row.action,
            target_user_id: row.target_user_id.map(UserId::from_uuid),
            target_username: row.target_username,
            target_comment_id: row.target_comment_id.map(CommentId::from_uuid),
            reason: row.reason,
            details: row.details,
            created_at: row.created_at,
        }
    }
}

pub(crate) const LOG_INSERT: &str = "INSERT INTO moderation_log (video_id, actor_id, action, target_user_id, target_comment_id, reason, details, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// The event of a moderation action, as webhooks carry it (`moderation.<action>`).
pub(crate) fn log_event(entry: &NewLogEntry<'_>) -> String {
    serde_json::json!({
        "action": entry.action,
        "video_id": entry.video.map(|v| v.as_ref()),
        "actor_id": entry.actor.as_uuid(),
        "target_user_id": entry.target_user.map(|u| u.as_uuid()),
        "target_comment_id": entry.target_comment.map(|c| c.as_uuid()),
        "reason": entry.reason,
        "details": serde_json::from_str::<serde_json::Value>(&entry.details)
            .unwrap_or_else(|_| serde_json::Value::String(entry.details.clone())),
    })
    .to_string()
}

/// Appends `$entry` to the log inside the transaction `$tx`, with its event for webhooks.
macro_rules! insert_log_impl {
    ($tx:expr, $entry:expr, $now:expr) => {
        match sqlx::query($crate::moderation::LOG_INSERT)
            .bind($entry.video.map(|v| v.as_ref().to_owned()))
            .bind($entry.actor.as_uuid())
            .bind($entry.action)
            .bind($entry.target_user.map(|u| u.as_uuid()))
            .bind($entry.target_comment.map(|c| c.as_uuid()))
            .bind($entry.reason.map(str::to_owned))
            .bind($entry.details.clone())
            .bind($now)
            .execute(&mut *$tx)
            .await
        {
            Err(e) => Err(e),
            Ok(_) => $crate::webhooks::insert_event!(
                $tx,
                format!("moderation.{}", $entry.action),
                $entry.video.map(|v| v.as_ref().to_owned()),
                $crate::moderation::log_event(&$entry),
                $now
            ),
        }
    };
}

/// What `update_video` changes on a video's row.
enum VideoChange {
    Settings(ChatSettings),
    Pinned(Option<CommentId>),
}

pub(crate) use insert_log_impl as insert_log;

/// The video's row, created (public, ownerless) when it has none yet: settings may be set
/// before the first comment.
const ENSURE_VIDEO: &str = "INSERT INTO videos (id, visibility, last_seq, created_at) VALUES ($1, 'public', 0, $2) \
     ON CONFLICT (id) DO NOTHING";
const SELECT_VIDEO: &str = "SELECT id, owner_id, visibility, last_seq, slow_mode_seconds, chat_mode, pinned_comment_id, blocked_terms_action FROM videos WHERE id = $1";

async fn bans(pool: &Pool, scope: &BanScope) -> Result<Vec<BanRow>, sqlx::Error> {
    const SQL: &str = "SELECT b.user_id, u.username, b.expires_at, b.reason, b.banned_by, b.created_at \
         FROM chat_bans b JOIN users u ON u.id = b.user_id WHERE b.scope = $1 ORDER BY b.created_at";
    on_pool!(pool, |p| {
        sqlx::query_as::<_, BanRow>(SQL)
            .bind(scope.key())
            .fetch_all(p)
            .await
    })
}

impl PrimaryPool {
    /// Appoints (`true`) or removes a moderator of `video`; whether anything changed. The log
    /// row is written only when it did.
    #[tracing::instrument(name = "db.set_video_moderator", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn set_video_moderator(
        &self,
        video: &VideoId,
        user: UserId,
        appointed: bool,
        log: NewLogEntry<'_>,
    ) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let changed = on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            let changed = if appointed {
                sqlx::query(
                    "INSERT INTO video_moderators (video_id, user_id, appointed_by, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(video.as_ref())
                .bind(user.as_uuid())
                .bind(log.actor.as_uuid())
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            } else {
                sqlx::query("DELETE FROM video_moderators WHERE video_id = $1 AND user_id = $2")
                    .bind(video.as_ref())
                    .bind(user.as_uuid())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
            };
            if changed > 0 {
                insert_log!(tx, log, now)?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(changed > 0)
        })?;
        Ok(changed)
    }

    /// The moderators appointed for `video`, with their usernames, oldest first.
    #[tracing::instrument(name = "db.video_moderators", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn video_moderators(
        &self,
        video: &VideoId,
    ) -> Result<Vec<(UserId, String)>, StoreError> {
        const SQL: &str = "SELECT m.user_id, u.username FROM video_moderators m JOIN users u ON u.id = m.user_id \
             WHERE m.video_id = $1 ORDER BY m.created_at, m.user_id";
        let rows: Vec<(Uuid, String)> = on_pool!(self.reads(), |p| {
            sqlx::query_as(SQL).bind(video.as_ref()).fetch_all(p).await
        })?;
        Ok(rows
            .into_iter()
            .map(|(id, name)| (UserId::from_uuid(id), name))
            .collect())
    }

    /// Bans or times out `user` in `scope` until `expires_at` (`None`: permanently), replacing
    /// any earlier ban there.
    #[tracing::instrument(name = "db.ban", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn ban(
        &self,
        scope: &BanScope,
        user: UserId,
        expires_at: Option<OffsetDateTime>,
        log: NewLogEntry<'_>,
    ) -> Result<Ban, StoreError> {
        let now = OffsetDateTime::now_utc();
        on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            sqlx::query(
                "INSERT INTO chat_bans (scope, user_id, expires_at, reason, banned_by, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (scope, user_id) DO UPDATE SET expires_at = excluded.expires_at, reason = excluded.reason, \
                 banned_by = excluded.banned_by, created_at = excluded.created_at",
            )
            .bind(scope.key())
            .bind(user.as_uuid())
            .bind(expires_at)
            .bind(log.reason.map(str::to_owned))
            .bind(log.actor.as_uuid())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_log!(tx, log, now)?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        self.bans(scope)
            .await?
            .into_iter()
            .find(|b| b.user_id == user)
            .ok_or_else(|| anyhow::anyhow!("a ban just written is not in force").into())
    }

    /// Lifts `user`'s ban in `scope`; whether one was in force.
    #[tracing::instrument(name = "db.lift_ban", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn lift_ban(
        &self,
        scope: &BanScope,
        user: UserId,
        log: NewLogEntry<'_>,
    ) -> Result<bool, StoreError> {
        let now = OffsetDateTime::now_utc();
        let was_active = self.bans(scope).await?.iter().any(|b| b.user_id == user);
        on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            let deleted = sqlx::query("DELETE FROM chat_bans WHERE scope = $1 AND user_id = $2")
                .bind(scope.key())
                .bind(user.as_uuid())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted > 0 && was_active {
                insert_log!(tx, log, now)?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(was_active)
    }

    /// The bans in force in `scope`, oldest first.
    #[tracing::instrument(name = "db.bans", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn bans(&self, scope: &BanScope) -> Result<Vec<Ban>, StoreError> {
        let now = OffsetDateTime::now_utc();
        Ok(bans(self.reads(), scope)
            .await?
            .into_iter()
            .map(Ban::from)
            .filter(|b| b.is_active(now))
            .collect())
    }

    /// Sets `video`'s chat settings (creating its row if it has none) and returns the video.
    #[tracing::instrument(name = "db.set_chat_settings", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn set_chat_settings(
        &self,
        video: &VideoId,
        settings: ChatSettings,
        log: NewLogEntry<'_>,
    ) -> Result<Video, StoreError> {
        self.update_video(video, VideoChange::Settings(settings), log)
            .await
    }

    /// Pins `comment` above `video`'s chat (`None` unpins) and returns the video.
    #[tracing::instrument(name = "db.set_pinned", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn set_pinned(
        &self,
        video: &VideoId,
        comment: Option<CommentId>,
        log: NewLogEntry<'_>,
    ) -> Result<Video, StoreError> {
        self.update_video(video, VideoChange::Pinned(comment), log)
            .await
    }

    /// Applies `change` to `video`'s row (created if it has none) with its log row, in one
    /// transaction, and returns the video as it is then.
    async fn update_video(
        &self,
        video: &VideoId,
        change: VideoChange,
        log: NewLogEntry<'_>,
    ) -> Result<Video, StoreError> {
        let now = OffsetDateTime::now_utc();
        let row = on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            sqlx::query(ENSURE_VIDEO)
                .bind(video.as_ref())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            match change {
                    VideoChange::Settings(settings) => sqlx::query(
                        "UPDATE videos SET slow_mode_seconds = $2, chat_mode = $3, blocked_terms_action = $4 WHERE id = $1",
                    )
                    .bind(video.as_ref())
                    .bind(i32::try_from(settings.slow_mode_seconds).unwrap_or(i32::MAX))
                    .bind(settings.chat_mode.as_str())
                    .bind(settings.blocked_terms.as_str())
                    .execute(&mut *tx)
                    .await?,
                    VideoChange::Pinned(comment) => {
                        sqlx::query("UPDATE videos SET pinned_comment_id = $2 WHERE id = $1")
                            .bind(video.as_ref())
                            .bind(comment.map(|c| c.as_uuid()))
                            .execute(&mut *tx)
                            .await?
                    }
                };
            insert_log!(tx, log, now)?;
            let row = sqlx::query_as::<_, VideoRow>(SELECT_VIDEO)
                .bind(video.as_ref())
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(row)
        })?;
        row.try_into()
    }

    /// Deletes every live comment of `user` on `video` (their `seq`s stay taken) and returns
    /// them as deleted, in `seq` order; unpins the pinned one if it was among them.
    #[tracing::instrument(name = "db.remove_user_comments", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn remove_user_comments(
        &self,
        video: &VideoId,
        user: UserId,
        log: NewLogEntry<'_>,
    ) -> Result<Vec<Comment>, StoreError> {
        const LIVE: &str = "SELECT c.id, c.video_id, c.seq, c.user_id, u.username, c.body, c.created_at, c.updated_at, c.deleted_at, CASE WHEN u.role = 'admin' THEN 'admin' WHEN v.owner_id = c.user_id THEN 'owner' WHEN u.role = 'moderator' OR EXISTS (SELECT 1 FROM video_moderators m WHERE m.video_id = c.video_id AND m.user_id = c.user_id) THEN 'moderator' END AS author_role \
             FROM comments c JOIN users u ON u.id = c.user_id JOIN videos v ON v.id = c.video_id \
             WHERE c.video_id = $1 AND c.user_id = $2 AND c.deleted_at IS NULL ORDER BY c.seq";
        let now = OffsetDateTime::now_utc();
        let now = now
            .replace_nanosecond(now.nanosecond() / 1000 * 1000)
            .unwrap_or(now);
        let rows = on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            let rows = sqlx::query_as::<_, CommentRow>(LIVE)
                .bind(video.as_ref())
                .bind(user.as_uuid())
                .fetch_all(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE comments SET body = '', deleted_at = $3, updated_at = $3 \
                 WHERE video_id = $1 AND user_id = $2 AND deleted_at IS NULL",
            )
            .bind(video.as_ref())
            .bind(user.as_uuid())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE videos SET pinned_comment_id = NULL WHERE id = $1 AND pinned_comment_id IN \
                 (SELECT id FROM comments WHERE video_id = $1 AND user_id = $2)",
            )
            .bind(video.as_ref())
            .bind(user.as_uuid())
            .execute(&mut *tx)
            .await?;
            insert_log!(tx, log, now)?;
            let removed = rows
                .into_iter()
                .map(|row| {
                    let mut comment = Comment::try_from(row)?;
                    comment.body = None;
                    comment.deleted_at = Some(now);
                    comment.updated_at = now;
                    Ok(comment)
                })
                .collect::<Result<Vec<Comment>, StoreError>>()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            for comment in &removed {
                insert_event!(
                    tx,
                    "comment.deleted",
                    Some(video.as_ref()),
                    comment_event(comment),
                    now
                )?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(removed)
        })?;
        Ok(rows)
    }

    /// When `user` last commented on `video` (slow mode).
    #[tracing::instrument(name = "db.last_comment_at", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn last_comment_at(
        &self,
        video: &VideoId,
        user: UserId,
    ) -> Result<Option<OffsetDateTime>, StoreError> {
        const SQL: &str = "SELECT created_at FROM comments WHERE video_id = $1 AND user_id = $2 ORDER BY seq DESC LIMIT 1";
        Ok(on_pool!(self.reads(), |p| {
            sqlx::query_scalar::<_, OffsetDateTime>(SQL)
                .bind(video.as_ref())
                .bind(user.as_uuid())
                .fetch_optional(p)
                .await
        })?)
    }

    /// Writes one log row on its own (for actions whose change is written elsewhere).
    #[tracing::instrument(name = "db.log_moderation", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn log_moderation(&self, log: NewLogEntry<'_>) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            insert_log!(tx, log, now)?;
            tx.commit().await
        })?;
        Ok(())
    }

    /// The moderation log of `video`, newest first: `limit` entries with an id below `before`.
    #[tracing::instrument(name = "db.moderation_log", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn moderation_log(
        &self,
        video: &VideoId,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<LogEntry>, StoreError> {
        const SQL: &str = "SELECT l.id, l.video_id, l.actor_id, a.username AS actor_username, l.action, l.target_user_id, \
             t.username AS target_username, l.target_comment_id, l.reason, l.details, l.created_at \
             FROM moderation_log l LEFT JOIN users a ON a.id = l.actor_id LEFT JOIN users t ON t.id = l.target_user_id \
             WHERE l.video_id = $1 AND l.id < $2 ORDER BY l.id DESC LIMIT $3";
        let rows = on_pool!(self.reads(), |p| {
            sqlx::query_as::<_, LogRow>(SQL)
                .bind(video.as_ref())
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        })?;
        Ok(rows.into_iter().map(LogEntry::from).collect())
    }
}
