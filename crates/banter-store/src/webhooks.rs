//! Event hooks' storage: subscriptions, the outbox (`webhook_events`, written by a change in
//! its own transaction through [`insert_event`], and only while some subscription exists), and deliveries (one per event and matching
//! subscription), with what a dispatcher does to them: expand events into deliveries, find the
//! due ones, claim one, complete it, fail it (retry later or dead), replay a dead one.
//!
//! Order: expansions take the one `webhook_dispatch` row's lock, so deliveries are made in
//! event order; a subscription's deliveries of one video are due only once every earlier
//! pending one of them is gone (delivered or dead), so a receiver sees a video's events in
//! order. A claim is a lease (`claimed_until_ms`): a node that dies mid-delivery leaves a
//! lease that expires, and another node delivers the same event again (same event id).
//!
//! Kept out: matching rules beyond the event name, HTTP, signatures, backoff (`banter-api`'s
//! `webhooks/`).

use banter_core::{Comment, UserId};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::backend::on_pool;
use crate::{PrimaryPool, StoreError};

/// A subscription: where to post which events, and the secret that signs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub id: Uuid,
    /// `None`: a deployment's subscription from configuration, which hears every event;
    /// otherwise it hears the events of this user's videos.
    pub owner_id: Option<UserId>,
    /// Configuration subscriptions' names.
    pub name: Option<String>,
    pub url: String,
    /// Event names or patterns (`comment.created`, `moderation.*`, `*`).
    pub events: Vec<String>,
    pub secret: String,
    pub created_at: OffsetDateTime,
}

pub struct NewSubscription<'a> {
    pub owner_id: Option<UserId>,
    pub name: Option<&'a str>,
    pub url: &'a str,
    pub events: &'a [String],
    pub secret: &'a str,
}

/// One event owed to one subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub subscription_id: Uuid,
    pub url: String,
    pub secret: String,
    /// The event's id: the idempotency key a receiver sees on every attempt.
    pub event_id: i64,
    pub kind: String,
    /// `""` for an event of no video.
    pub video_id: String,
    /// The event's JSON data.
    pub payload: String,
    pub created_at: OffsetDateTime,
    pub attempts: i32,
    pub last_error: Option<String>,
    /// `pending` or `dead`.
    pub state: String,
}

/// How much the outbox holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Events not yet expanded into deliveries.
    pub events: i64,
    pub pending: i64,
    pub dead: i64,
    /// When the oldest event not yet delivered (expanded or not) was written.
    pub oldest: Option<OffsetDateTime>,
}

/// Whether a subscription's pattern covers an event name: the name itself, `prefix.*`, or `*`.
pub fn event_matches(pattern: &str, kind: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => prefix.ends_with('.') && kind.starts_with(prefix),
        None => pattern == kind,
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_default()
}

/// A comment as events carry it: the REST API's comment object (`banter-api`'s `CommentDto`,
/// which a test holds to the same shape).
pub fn comment_event_data(c: &Comment) -> serde_json::Value {
    serde_json::json!({
        "id": c.id.as_uuid(),
        "video_id": c.video_id.as_ref(),
        "seq": c.seq,
        "author": {
            "id": c.user_id.as_uuid(),
            "username": c.username,
            "role": c.author_role.map(|r| r.as_str()),
        },
        "body": c.body,
        "deleted": c.deleted_at.is_some(),
        "edited": c.deleted_at.is_none() && c.updated_at != c.created_at,
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}

/// The outbox rows of one change of a comment (`comment.created`, `.updated`, `.deleted`).
pub(crate) fn comment_event(c: &Comment) -> String {
    serde_json::json!({ "comment": comment_event_data(c) }).to_string()
}

/// Nothing is written while no subscription exists: an event nobody can hear is not kept.
pub(crate) const EVENT_INSERT: &str = "INSERT INTO webhook_events (kind, video_id, owner_id, payload, created_at) \
     SELECT $1, $2, (SELECT owner_id FROM videos WHERE id = $2), $3, $4 \
     WHERE EXISTS (SELECT 1 FROM webhook_subscriptions)";

/// Writes an event to the outbox inside the transaction `$tx`:
/// `insert_event!(tx, kind: &str, video: Option<&str>, payload: String, now)`.
macro_rules! insert_event_impl {
    ($tx:expr, $kind:expr, $video:expr, $payload:expr, $now:expr) => {
        sqlx::query($crate::webhooks::EVENT_INSERT)
            .bind($kind)
            .bind($video)
            .bind($payload)
            .bind($now)
            .execute(&mut *$tx)
            .await
    };
}
pub(crate) use insert_event_impl as insert_event;

#[derive(sqlx::FromRow)]
struct SubscriptionRow {
    id: Uuid,
    owner_id: Option<Uuid>,
    name: Option<String>,
    url: String,
    events: String,
    secret: String,
    created_at: OffsetDateTime,
}

impl From<SubscriptionRow> for Subscription {
    fn from(row: SubscriptionRow) -> Self {
        Subscription {
            id: row.id,
            owner_id: row.owner_id.map(UserId::from_uuid),
            name: row.name,
            url: row.url,
            events: row.events.split_whitespace().map(str::to_owned).collect(),
            secret: row.secret,
            created_at: row.created_at,
        }
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    id: i64,
    kind: String,
    video_id: Option<String>,
    owner_id: Option<Uuid>,
    payload: String,
    created_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    subscription_id: Uuid,
    url: String,
    secret: String,
    event_id: i64,
    kind: String,
    video_id: String,
    payload: String,
    created_at: OffsetDateTime,
    attempts: i32,
    last_error: Option<String>,
    state: String,
}

impl From<DeliveryRow> for Delivery {
    fn from(r: DeliveryRow) -> Self {
        Delivery {
            id: r.id,
            subscription_id: r.subscription_id,
            url: r.url,
            secret: r.secret,
            event_id: r.event_id,
            kind: r.kind,
            video_id: r.video_id,
            payload: r.payload,
            created_at: r.created_at,
            attempts: r.attempts,
            last_error: r.last_error,
            state: r.state,
        }
    }
}

/// Rows per multi-row insert (7 parameters each, far under either backend's limit).
const INSERT_CHUNK: usize = 1000;

impl PrimaryPool {
    #[tracing::instrument(name = "db.create_webhook", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn create_subscription(
        &self,
        new: NewSubscription<'_>,
    ) -> Result<Subscription, StoreError> {
        const SQL: &str = "INSERT INTO webhook_subscriptions (id, owner_id, name, url, events, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, owner_id, name, url, events, secret, created_at";
        let row = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, SubscriptionRow>(SQL)
                .bind(Uuid::now_v7())
                .bind(new.owner_id.map(|u| u.as_uuid()))
                .bind(new.name)
                .bind(new.url)
                .bind(new.events.join(" "))
                .bind(new.secret)
                .bind(OffsetDateTime::now_utc())
                .fetch_one(p)
                .await
        })?;
        Ok(row.into())
    }

    /// Subscriptions of `owner`, or every subscription (`None`), oldest first.
    #[tracing::instrument(name = "db.list_webhooks", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn subscriptions(
        &self,
        owner: Option<UserId>,
    ) -> Result<Vec<Subscription>, StoreError> {
        const SQL: &str = "SELECT id, owner_id, name, url, events, secret, created_at FROM webhook_subscriptions \
             WHERE ($1 IS NULL OR owner_id = $1) ORDER BY id";
        let rows = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, SubscriptionRow>(SQL)
                .bind(owner.map(|u| u.as_uuid()))
                .fetch_all(p)
                .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    pub async fn subscription(&self, id: Uuid) -> Result<Option<Subscription>, StoreError> {
        const SQL: &str = "SELECT id, owner_id, name, url, events, secret, created_at FROM webhook_subscriptions WHERE id = $1";
        let row = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, SubscriptionRow>(SQL)
                .bind(id)
                .fetch_optional(p)
                .await
        })?;
        Ok(row.map(Into::into))
    }

    /// Deletes a subscription and what it is still owed; `false` if there was none.
    pub async fn delete_subscription(&self, id: Uuid) -> Result<bool, StoreError> {
        let deleted = on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            sqlx::query("DELETE FROM webhook_deliveries WHERE subscription_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let n = sqlx::query("DELETE FROM webhook_subscriptions WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            tx.commit().await?;
            Ok::<_, sqlx::Error>(n)
        })?;
        Ok(deleted > 0)
    }

    /// Makes the configuration's subscriptions (by name) what the table holds: new ones
    /// created, changed ones updated, removed ones deleted with what they were owed.
    #[tracing::instrument(name = "db.sync_webhooks", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn sync_configured_subscriptions(
        &self,
        configured: &[NewSubscription<'_>],
    ) -> Result<(), StoreError> {
        let existing: Vec<Subscription> = self
            .subscriptions(None)
            .await?
            .into_iter()
            .filter(|s| s.name.is_some())
            .collect();
        for old in &existing {
            if !configured.iter().any(|c| c.name == old.name.as_deref()) {
                self.delete_subscription(old.id).await?;
            }
        }
        for new in configured {
            match existing.iter().find(|s| s.name.as_deref() == new.name) {
                Some(old)
                    if old.url == new.url
                        && old.events == new.events
                        && old.secret == new.secret => {}
                Some(old) => {
                    on_pool!(self.pool(), |p| {
                        sqlx::query("UPDATE webhook_subscriptions SET url = $2, events = $3, secret = $4 WHERE id = $1")
                            .bind(old.id)
                            .bind(new.url)
                            .bind(new.events.join(" "))
                            .bind(new.secret)
                            .execute(p)
                            .await
                            .map(|r| r.rows_affected())
                    })?;
                }
                None => match self.create_subscription(NewSubscription { ..*new }).await {
                    // Another node created it at the same start.
                    Ok(_) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e),
                },
            }
        }
        Ok(())
    }

    /// Moves up to `limit` events, oldest first, into one delivery per matching subscription;
    /// the number of events moved.
    #[tracing::instrument(name = "db.expand_webhook_events", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn expand_events(&self, limit: u32, now_ms: i64) -> Result<usize, StoreError> {
        const ANY: &str = "SELECT EXISTS (SELECT 1 FROM webhook_events)";
        let any: bool = on_pool!(self.pool(), |p| {
            sqlx::query_scalar(ANY).fetch_one(p).await
        })?;
        if !any {
            return Ok(0);
        }
        let moved = on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE webhook_dispatch SET expanded_at = $1 WHERE id = 1")
                .bind(OffsetDateTime::now_utc())
                .execute(&mut *tx)
                .await?;
            let events = sqlx::query_as::<_, EventRow>(
                "SELECT id, kind, video_id, owner_id, payload, created_at FROM webhook_events ORDER BY id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await?;
            if events.is_empty() {
                tx.commit().await?;
                return Ok(0);
            }
            let subscriptions: Vec<Subscription> = sqlx::query_as::<_, SubscriptionRow>(
                "SELECT id, owner_id, name, url, events, secret, created_at FROM webhook_subscriptions",
            )
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
            let owed: Vec<(&Subscription, &EventRow)> = events
                .iter()
                .flat_map(|e| {
                    subscriptions
                        .iter()
                        .filter(move |s| {
                            s.owner_id.is_none_or(|o| e.owner_id == Some(o.as_uuid()))
                                && s.events.iter().any(|p| event_matches(p, &e.kind))
                        })
                        .map(move |s| (s, e))
                })
                .collect();
            for chunk in owed.chunks(INSERT_CHUNK) {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO webhook_deliveries (subscription_id, event_id, kind, video_id, payload, created_at, next_attempt_ms) ",
                );
                insert.push_values(chunk, |mut row, (s, e)| {
                    row.push_bind(s.id)
                        .push_bind(e.id)
                        .push_bind(e.kind.clone())
                        .push_bind(e.video_id.clone().unwrap_or_default())
                        .push_bind(e.payload.clone())
                        .push_bind(e.created_at)
                        .push_bind(now_ms);
                });
                insert.build().execute(&mut *tx).await?;
            }
            let mut delete = sqlx::QueryBuilder::new("DELETE FROM webhook_events WHERE id IN (");
            let mut ids = delete.separated(", ");
            for e in &events {
                ids.push_bind(e.id);
            }
            delete.push(")");
            delete.build().execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(events.len())
        })?;
        Ok(moved)
    }

    /// Deliveries due at `now_ms`, unclaimed, each the first still pending of its subscription
    /// and video; oldest first.
    #[tracing::instrument(name = "db.due_webhook_deliveries", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        const SQL: &str = "SELECT d.id, d.subscription_id, s.url, s.secret, d.event_id, d.kind, d.video_id, d.payload, d.created_at, d.attempts, d.last_error, d.state \
             FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id \
             WHERE d.state = 'pending' AND d.next_attempt_ms <= $1 AND (d.claimed_until_ms IS NULL OR d.claimed_until_ms < $1) \
             AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.subscription_id = d.subscription_id \
                 AND e.video_id = d.video_id AND e.state = 'pending' AND e.id < d.id) \
             ORDER BY d.id LIMIT $2";
        let rows = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, DeliveryRow>(SQL)
                .bind(now_ms)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Takes a due delivery for this node until `until_ms`; `false` if another node has it.
    pub async fn claim_delivery(
        &self,
        id: i64,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE webhook_deliveries SET claimed_until_ms = $3 \
             WHERE id = $1 AND state = 'pending' AND (claimed_until_ms IS NULL OR claimed_until_ms < $2)";
        let n = on_pool!(self.pool(), |p| {
            sqlx::query(SQL)
                .bind(id)
                .bind(now_ms)
                .bind(until_ms)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// The receiver took it: it is gone.
    pub async fn complete_delivery(&self, id: i64) -> Result<(), StoreError> {
        on_pool!(self.pool(), |p| {
            sqlx::query("DELETE FROM webhook_deliveries WHERE id = $1")
                .bind(id)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// An attempt failed: tried again at `next_ms`, or `dead` (kept for inspection and replay).
    pub async fn fail_delivery(
        &self,
        id: i64,
        error: &str,
        next_ms: i64,
        dead: bool,
    ) -> Result<(), StoreError> {
        const SQL: &str = "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $2, \
             next_attempt_ms = $3, claimed_until_ms = NULL, state = $4 WHERE id = $1";
        on_pool!(self.pool(), |p| {
            sqlx::query(SQL)
                .bind(id)
                .bind(error)
                .bind(next_ms)
                .bind(if dead { "dead" } else { "pending" })
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// A subscription's deliveries in `state` (`pending` or `dead`), after `after`, by id.
    pub async fn deliveries(
        &self,
        subscription: Uuid,
        state: &str,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        const SQL: &str = "SELECT d.id, d.subscription_id, s.url, s.secret, d.event_id, d.kind, d.video_id, d.payload, d.created_at, d.attempts, d.last_error, d.state \
             FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id \
             WHERE d.subscription_id = $1 AND d.state = $2 AND d.id > $3 ORDER BY d.id LIMIT $4";
        let rows = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, DeliveryRow>(SQL)
                .bind(subscription)
                .bind(state)
                .bind(after.unwrap_or(0))
                .bind(i64::from(limit))
                .fetch_all(p)
                .await
        })?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// Puts a dead delivery back in line, attempts reset; `false` if there is no such dead one.
    pub async fn replay_delivery(
        &self,
        subscription: Uuid,
        id: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        const SQL: &str = "UPDATE webhook_deliveries SET state = 'pending', attempts = 0, last_error = NULL, \
             next_attempt_ms = $3, claimed_until_ms = NULL WHERE id = $1 AND subscription_id = $2 AND state = 'dead'";
        let n = on_pool!(self.pool(), |p| {
            sqlx::query(SQL)
                .bind(id)
                .bind(subscription)
                .bind(now_ms)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    pub async fn outbox_stats(&self) -> Result<OutboxStats, StoreError> {
        const SQL: &str = "SELECT (SELECT count(*) FROM webhook_events), \
             (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'), \
             (SELECT count(*) FROM webhook_deliveries WHERE state = 'dead'), \
             (SELECT min(created_at) FROM webhook_events), \
             (SELECT min(created_at) FROM webhook_deliveries WHERE state = 'pending')";
        let (events, pending, dead, oldest_event, oldest_delivery) = on_pool!(self.pool(), |p| {
            sqlx::query_as::<
                _,
                (
                    i64,
                    i64,
                    i64,
                    Option<OffsetDateTime>,
                    Option<OffsetDateTime>,
                ),
            >(SQL)
            .fetch_one(p)
            .await
        })?;
        Ok(OutboxStats {
            events,
            pending,
            dead,
            oldest: match (oldest_event, oldest_delivery) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::event_matches;

    #[test]
    fn patterns_cover_names_prefixes_and_everything() {
        assert!(event_matches("comment.created", "comment.created"));
        assert!(!event_matches("comment.created", "comment.deleted"));
        assert!(event_matches("comment.*", "comment.deleted"));
        assert!(!event_matches("comment.*", "commentary.x"));
        assert!(event_matches("moderation.*", "moderation.ban"));
        assert!(event_matches("*", "video.created"));
        assert!(!event_matches("comm*", "comment.created"));
    }
}
