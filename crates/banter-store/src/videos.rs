//! Videos: visibility, ownership and membership, which decide who may read and post.

use banter_core::{
    BlockedTermsAction, ChatMode, ChatSettings, CommentId, UserId, Video, VideoId, Visibility,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::{Pool, on_pool};
use crate::webhooks::insert_event;
use crate::{PrimaryPool, ReadPool, StoreError};

#[derive(sqlx::FromRow)]
pub(crate) struct VideoRow {
    id: String,
    owner_id: Option<Uuid>,
    visibility: String,
    last_seq: i64,
    slow_mode_seconds: i32,
    chat_mode: String,
    pinned_comment_id: Option<Uuid>,
    blocked_terms_action: String,
}

impl TryFrom<VideoRow> for Video {
    type Error = StoreError;

    fn try_from(row: VideoRow) -> Result<Self, StoreError> {
        Ok(Video {
            id: VideoId::parse(&row.id)
                .map_err(|_| anyhow::anyhow!("stored video id is invalid"))?,
            owner_id: row.owner_id.map(UserId::from_uuid),
            visibility: row
                .visibility
                .parse::<Visibility>()
                .map_err(|_| anyhow::anyhow!("stored visibility is invalid"))?,
            last_seq: row.last_seq,
            chat: ChatSettings {
                slow_mode_seconds: ChatSettings::slow_mode(i64::from(row.slow_mode_seconds))
                    .map_err(|_| anyhow::anyhow!("stored slow mode is invalid"))?,
                chat_mode: row
                    .chat_mode
                    .parse::<ChatMode>()
                    .map_err(|_| anyhow::anyhow!("stored chat mode is invalid"))?,
                blocked_terms: row
                    .blocked_terms_action
                    .parse::<BlockedTermsAction>()
                    .map_err(|_| anyhow::anyhow!("stored blocked-terms action is invalid"))?,
            },
            pinned_comment: row.pinned_comment_id.map(CommentId::from_uuid),
        })
    }
}

pub(crate) async fn get_video(pool: &Pool, id: &VideoId) -> Result<Option<VideoRow>, sqlx::Error> {
    on_pool!(pool, |p| {
        sqlx::query_as::<_, VideoRow>(
            "SELECT id, owner_id, visibility, last_seq, slow_mode_seconds, chat_mode, pinned_comment_id, blocked_terms_action FROM videos WHERE id = $1",
        )
        .bind(id.as_ref())
        .fetch_optional(p)
        .await
    })
}

async fn is_member(pool: &Pool, video: &VideoId, user: UserId) -> Result<bool, sqlx::Error> {
    on_pool!(pool, |p| {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM video_members WHERE video_id = $1 AND user_id = $2",
        )
        .bind(video.as_ref())
        .bind(user.as_uuid())
        .fetch_one(p)
        .await
    })
    .map(|n| n > 0)
}

/// The outbox row of a video's registration or change (`video.created`, `video.updated`).
fn video_event(id: &VideoId, owner: Option<UserId>, visibility: Visibility) -> String {
    serde_json::json!({"video": {
        "id": id.as_ref(),
        "owner_id": owner.map(|o| o.as_uuid()),
        "visibility": visibility.as_str(),
    }})
    .to_string()
}

impl PrimaryPool {
    /// Registers a video with an owner and visibility. Conflict if it exists already (a video
    /// is also created, public and ownerless, by its first comment).
    #[tracing::instrument(name = "db.create_video", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn create_video(
        &self,
        id: &VideoId,
        owner: UserId,
        visibility: Visibility,
    ) -> Result<Video, StoreError> {
        const SQL: &str = "INSERT INTO videos (id, owner_id, visibility, last_seq, created_at) VALUES ($1, $2, $3, 0, $4) \
             RETURNING id, owner_id, visibility, last_seq, slow_mode_seconds, chat_mode, pinned_comment_id, blocked_terms_action";
        let now = OffsetDateTime::now_utc();
        let event = video_event(id, Some(owner), visibility);
        let row = on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            let row = sqlx::query_as::<_, VideoRow>(SQL)
                .bind(id.as_ref())
                .bind(owner.as_uuid())
                .bind(visibility.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            insert_event!(tx, "video.created", Some(id.as_ref()), event, now)?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(row)
        })?;
        row.try_into()
    }

    #[tracing::instrument(name = "db.get_video", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn get_video(&self, id: &VideoId) -> Result<Option<Video>, StoreError> {
        self.count_video_read();
        get_video(self.reads(), id)
            .await?
            .map(TryInto::try_into)
            .transpose()
    }

    #[tracing::instrument(name = "db.set_visibility", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn set_visibility(
        &self,
        id: &VideoId,
        visibility: Visibility,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            let owner: Option<Option<Uuid>> = sqlx::query_scalar(
                "UPDATE videos SET visibility = $2 WHERE id = $1 RETURNING owner_id",
            )
            .bind(id.as_ref())
            .bind(visibility.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(owner) = owner {
                let event = video_event(id, owner.map(UserId::from_uuid), visibility);
                insert_event!(tx, "video.updated", Some(id.as_ref()), event, now)?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }

    /// Adds (`true`) or removes (`false`) a member of a members-only video.
    #[tracing::instrument(name = "db.set_member", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn set_member(
        &self,
        video: &VideoId,
        user: UserId,
        member: bool,
    ) -> Result<(), StoreError> {
        let sql = if member {
            "INSERT INTO video_members (video_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM video_members WHERE video_id = $1 AND user_id = $2"
        };
        on_pool!(self.pool(), |p| {
            sqlx::query(sql)
                .bind(video.as_ref())
                .bind(user.as_uuid())
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    #[tracing::instrument(name = "db.is_member", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn is_member(&self, video: &VideoId, user: UserId) -> Result<bool, StoreError> {
        Ok(is_member(self.reads(), video, user).await?)
    }
}

impl ReadPool {
    pub async fn get_video(&self, id: &VideoId) -> Result<Option<Video>, StoreError> {
        let row = self
            .run(|pool| async move { get_video(&pool, id).await })
            .await?;
        row.map(TryInto::try_into).transpose()
    }

    pub async fn is_member(&self, video: &VideoId, user: UserId) -> Result<bool, StoreError> {
        Ok(self
            .run(|pool| async move { is_member(&pool, video, user).await })
            .await?)
    }
}
