//! API keys for trusted backends: each key is stored as the SHA-256 of its secret (the secret
//! is 32 random bytes, so a fast hash is enough; it is shown once, at creation), with its
//! scopes and the system author it posts as. A key's system author is a user without a
//! password and with a placeholder address, created with the first key naming it; several keys
//! may share one. Every use of a key is written to the moderation log ([`PrimaryPool::record_api_key_use`]).
//!
//! Kept out: the token format, scopes' meaning and checking the secret (`banter-api`'s
//! `auth/api_key.rs`).

use banter_core::{Role, User, UserId, Username};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::on_pool;
use crate::external_identities::NO_PASSWORD;
use crate::moderation::{NewLogEntry, insert_log};
use crate::{PrimaryPool, StoreError};

/// A stored key (never its secret).
#[derive(Clone, Debug, PartialEq)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// SHA-256 of the secret, hex.
    pub secret_hash: String,
    pub scopes: Vec<String>,
    pub author: User,
    pub created_by: UserId,
    pub created_at: OffsetDateTime,
    pub last_used_at: Option<OffsetDateTime>,
    pub revoked_at: Option<OffsetDateTime>,
}

pub struct NewApiKey<'a> {
    pub id: Uuid,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub scopes: &'a [String],
    pub author: &'a Username,
    pub created_by: UserId,
}

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Uuid,
    name: String,
    secret_hash: String,
    scopes: String,
    author_id: Uuid,
    created_by: Uuid,
    created_at: OffsetDateTime,
    last_used_at: Option<OffsetDateTime>,
    revoked_at: Option<OffsetDateTime>,
}

impl PrimaryPool {
    /// Creates a key; its author is the system user of that name, created if there is none.
    /// A name taken by a user who is not a key's author is a conflict (`username`), as is a
    /// key name in use (`value`).
    #[tracing::instrument(name = "db.create_api_key", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn create_api_key(&self, new: NewApiKey<'_>) -> Result<ApiKey, StoreError> {
        let now = OffsetDateTime::now_utc();
        let author_id = Uuid::now_v7();
        let email = format!("key-{}@system.invalid", author_id.simple());
        on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            let existing: Option<(Uuid, bool)> = sqlx::query_as(
                "SELECT u.id, EXISTS (SELECT 1 FROM api_keys k WHERE k.author_id = u.id) \
                 FROM users u WHERE lower(u.username) = lower($1)",
            )
            .bind(new.author.as_ref())
            .fetch_optional(&mut *tx)
            .await?;
            let author = match existing {
                Some((id, true)) => id,
                Some((_, false)) => {
                    tx.rollback().await?;
                    return Err(StoreError::Conflict("username"));
                }
                None => {
                    sqlx::query(
                        "INSERT INTO users (id, email, username, password_hash, role, is_active, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, true, $6, $6)",
                    )
                    .bind(author_id)
                    .bind(&email)
                    .bind(new.author.as_ref())
                    .bind(NO_PASSWORD)
                    .bind(Role::User.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    author_id
                }
            };
            sqlx::query(
                "INSERT INTO api_keys (id, name, secret_hash, scopes, author_id, created_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(new.id)
            .bind(new.name)
            .bind(new.secret_hash)
            .bind(new.scopes.join(" "))
            .bind(author)
            .bind(new.created_by.as_uuid())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        })?;
        self.api_key(new.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("a created API key vanished").into())
    }

    /// A key by id, revoked or not, with its author.
    pub async fn api_key(&self, id: Uuid) -> Result<Option<ApiKey>, StoreError> {
        const SQL: &str = "SELECT id, name, secret_hash, scopes, author_id, created_by, created_at, last_used_at, revoked_at \
             FROM api_keys WHERE id = $1";
        let row = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, KeyRow>(SQL)
                .bind(id)
                .fetch_optional(p)
                .await
        })?;
        match row {
            Some(row) => Ok(Some(self.with_author(row).await?)),
            None => Ok(None),
        }
    }

    /// Every key, newest first.
    pub async fn api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        const SQL: &str = "SELECT id, name, secret_hash, scopes, author_id, created_by, created_at, last_used_at, revoked_at \
             FROM api_keys ORDER BY created_at DESC, id";
        let rows = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, KeyRow>(SQL).fetch_all(p).await
        })?;
        let mut keys = Vec::with_capacity(rows.len());
        for row in rows {
            keys.push(self.with_author(row).await?);
        }
        Ok(keys)
    }

    async fn with_author(&self, row: KeyRow) -> Result<ApiKey, StoreError> {
        let author = self
            .get_user(UserId::from_uuid(row.author_id))
            .await?
            .ok_or_else(|| anyhow::anyhow!("API key {} has no author", row.id))?;
        Ok(ApiKey {
            id: row.id,
            name: row.name,
            secret_hash: row.secret_hash,
            scopes: row.scopes.split_whitespace().map(str::to_owned).collect(),
            author,
            created_by: UserId::from_uuid(row.created_by),
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }

    /// Revokes a key at once; `false` if there is no such live key.
    pub async fn revoke_api_key(&self, id: Uuid) -> Result<bool, StoreError> {
        let n = on_pool!(self.pool(), |p| {
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(OffsetDateTime::now_utc())
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(n == 1)
    }

    /// Writes one use of a key to the moderation log (`api_key`, on the request's video if it
    /// names one) and stamps the key's last use, in one transaction.
    #[tracing::instrument(name = "db.record_api_key_use", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn record_api_key_use(
        &self,
        key: Uuid,
        log: NewLogEntry<'_>,
    ) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1")
                .bind(key)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            insert_log!(tx, log, now)?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        })?;
        Ok(())
    }
}
