//! Refresh tokens: stored only as hashes, rotated on every use, grouped in families (one per
//! sign-in on a device). A family is a *session*: access tokens name it (`sid`) and die with it.
//! Presenting a token that was already rotated is treated as theft and revokes the whole
//! family, except within a short grace window after the rotation, when presenting it again
//! gets its direct successor again (two tabs refreshing at once). That needs the successor to
//! be a function of the old token (the API derives it with a keyed hash), since only hashes are
//! stored.

use banter_core::{DeviceId, UserId};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::on_pool;
use crate::{PrimaryPool, StoreError};

pub struct NewRefreshToken<'a> {
    /// Hash of the opaque token (the token itself is never stored).
    pub token_hash: &'a str,
    pub user_id: UserId,
    pub device_id: &'a DeviceId,
    /// `None` starts a new family (a sign-in); rotation passes the old token's family.
    pub family_id: Option<Uuid>,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, PartialEq, Eq)]
pub enum RotateOutcome {
    /// The old token is spent and the new one is the live one of its family: just stored, or,
    /// within the grace window, stored by the rotation a moment ago.
    Rotated {
        user_id: UserId,
        device_id: String,
        family_id: Uuid,
    },
    /// The token had already been used, outside the grace window: its family is now revoked.
    Reused {
        user_id: UserId,
    },
    /// The token's session had already ended (logout, device revoked, password changed,
    /// earlier reuse): nothing changes.
    Revoked,
    Expired,
    Unknown,
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    user_id: Uuid,
    device_id: String,
    family_id: Uuid,
    expires_at: OffsetDateTime,
    used_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

impl PrimaryPool {
    #[tracing::instrument(name = "db.insert_refresh_token", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn insert_refresh_token(
        &self,
        token: NewRefreshToken<'_>,
    ) -> Result<Uuid, StoreError> {
        let family = token.family_id.unwrap_or_else(Uuid::now_v7);
        const SQL: &str = "INSERT INTO refresh_tokens (id, token_hash, user_id, device_id, family_id, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)";
        on_pool!(self.pool(), |p| {
            sqlx::query(SQL)
                .bind(Uuid::now_v7())
                .bind(token.token_hash)
                .bind(token.user_id.as_uuid())
                .bind(token.device_id.as_ref())
                .bind(family)
                .bind(token.expires_at)
                .bind(OffsetDateTime::now_utc())
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(family)
    }

    /// Spends the token with hash `old_hash` and stores `new_hash` in its family, atomically.
    /// Of two concurrent rotations of one token exactly one stores the successor; the other,
    /// like any presentation of the old token within `grace` of its use, gets `Rotated` for the
    /// same successor as long as that successor is itself unused. `new_hash` must be derived
    /// from the old token, so that both rotations name the same successor.
    #[tracing::instrument(name = "db.rotate_refresh_token", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        new_expires_at: OffsetDateTime,
        grace: Duration,
    ) -> Result<RotateOutcome, StoreError> {
        let now = OffsetDateTime::now_utc();
        let outcome = on_pool!(self.pool(), |p| {
            async {
            let mut tx = p.begin().await?;
            let row = sqlx::query_as::<_, TokenRow>(
                "SELECT user_id, device_id, family_id, expires_at, used_at, revoked_at \
                 FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(old_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                return Ok::<_, sqlx::Error>(RotateOutcome::Unknown);
            };
            if row.revoked_at.is_some() {
                return Ok(RotateOutcome::Revoked);
            }
            let rotated = RotateOutcome::Rotated {
                user_id: UserId::from_uuid(row.user_id),
                device_id: row.device_id.clone(),
                family_id: row.family_id,
            };
            // The conditional update is the arbiter between concurrent rotations.
            let spent = row.used_at.is_none()
                && sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL",
                )
                .bind(old_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
            if !spent {
                // Used a moment ago (or just now, by a concurrent rotation that has committed
                // by the time our update returned): hand out the same successor again.
                let recent = row.used_at.is_none_or(|used| now - used <= grace);
                if recent {
                    let successor_live = sqlx::query_scalar::<_, i64>(
                        "SELECT count(*) FROM refresh_tokens WHERE token_hash = $1 AND family_id = $2 \
                         AND used_at IS NULL AND revoked_at IS NULL",
                    )
                    .bind(new_hash)
                    .bind(row.family_id)
                    .fetch_one(&mut *tx)
                    .await?
                        == 1;
                    if successor_live {
                        tx.commit().await?;
                        return Ok(rotated);
                    }
                }
                sqlx::query(
                    "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
                )
                .bind(row.family_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(RotateOutcome::Reused {
                    user_id: UserId::from_uuid(row.user_id),
                });
            }
            if row.expires_at <= now {
                tx.commit().await?;
                return Ok(RotateOutcome::Expired);
            }
            sqlx::query(
                "INSERT INTO refresh_tokens (id, token_hash, user_id, device_id, family_id, expires_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(Uuid::now_v7())
            .bind(new_hash)
            .bind(row.user_id)
            .bind(&row.device_id)
            .bind(row.family_id)
            .bind(new_expires_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(rotated)
        }
        .await
        })?;
        Ok(outcome)
    }

    /// Revokes the family of the token with this hash (logout): its refresh tokens and the
    /// access tokens of its session stop working. The family's user, or `None` if no such
    /// token exists.
    #[tracing::instrument(name = "db.revoke_token_family", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn revoke_token_family(
        &self,
        token_hash: &str,
    ) -> Result<Option<UserId>, StoreError> {
        const SQL: &str = "UPDATE refresh_tokens SET revoked_at = $2 WHERE revoked_at IS NULL AND family_id = \
             (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)";
        let user = on_pool!(self.pool(), |p| {
            sqlx::query_scalar::<_, Uuid>(
                "SELECT user_id FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(p)
            .await
        })?;
        on_pool!(self.pool(), |p| {
            sqlx::query(SQL)
                .bind(token_hash)
                .bind(OffsetDateTime::now_utc())
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(user.map(UserId::from_uuid))
    }

    /// Ends every session of `user` but `keep` (after a password change); how many ended.
    #[tracing::instrument(name = "db.revoke_other_sessions", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn revoke_other_sessions(&self, user: UserId, keep: Uuid) -> Result<u64, StoreError> {
        const SQL: &str = "UPDATE refresh_tokens SET revoked_at = $3 \
             WHERE user_id = $1 AND family_id <> $2 AND revoked_at IS NULL";
        Ok(on_pool!(self.pool(), |p| {
            sqlx::query(SQL)
                .bind(user.as_uuid())
                .bind(keep)
                .bind(OffsetDateTime::now_utc())
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?)
    }
}
