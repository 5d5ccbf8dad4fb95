//! External identities: which local user each subject of an external identity provider (an
//! OIDC issuer) is, and just-in-time provisioning of that user on first sight.
//!
//! A provisioned user has a placeholder address (`ext-<id>@external.invalid`, never mailed, so
//! no local account is ever linked by a matching email) and no password ([`NO_PASSWORD`] is
//! not a hash: a password sign-in to it always fails). Two nodes provisioning one subject at
//! once agree: the identity's primary key lets one insert win and the other reads its user.
//!
//! Kept out: verifying the provider's tokens and deriving usernames (`banter-api`).

use banter_core::{Role, User, UserId, Username};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::on_pool;
use crate::users::UserRow;
use crate::{PrimaryPool, StoreError};

/// The `password_hash` of users who sign in through an external provider: not a PHC string,
/// so no password verifies against it.
pub const NO_PASSWORD: &str = "!external";

impl PrimaryPool {
    /// The local user of `subject` at `issuer`, active or not.
    #[tracing::instrument(name = "db.external_user", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn external_user(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<User>, StoreError> {
        const SQL: &str = "SELECT u.id, u.email, u.username, u.role, u.is_active, u.last_login_at, u.created_at, u.updated_at \
             FROM external_identities e JOIN users u ON u.id = e.user_id \
             WHERE e.issuer = $1 AND e.subject = $2";
        let row = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, UserRow>(SQL)
                .bind(issuer)
                .bind(subject)
                .fetch_optional(p)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    /// Creates the local user of `subject` at `issuer` with the first free name of `usernames`
    /// and `role`, or returns the user another request created first.
    #[tracing::instrument(name = "db.provision_external_user", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn provision_external_user(
        &self,
        issuer: &str,
        subject: &str,
        usernames: &[Username],
        role: Role,
    ) -> Result<User, StoreError> {
        for username in usernames {
            match self.try_provision(issuer, subject, username, role).await {
                Ok(Some(user)) => return Ok(user),
                // Someone else linked this subject first.
                Ok(None) => {
                    return self
                        .external_user(issuer, subject)
                        .await?
                        .ok_or_else(|| anyhow::anyhow!("external identity vanished").into());
                }
                Err(StoreError::Conflict("username")) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Conflict("username"))
    }

    async fn try_provision(
        &self,
        issuer: &str,
        subject: &str,
        username: &Username,
        role: Role,
    ) -> Result<Option<User>, StoreError> {
        const USER: &str = "INSERT INTO users (id, email, username, password_hash, role, is_active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, true, $6, $6) \
             RETURNING id, email, username, role, is_active, last_login_at, created_at, updated_at";
        const LINK: &str = "INSERT INTO external_identities (issuer, subject, user_id, created_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (issuer, subject) DO NOTHING";
        let now = OffsetDateTime::now_utc();
        let id: Uuid = UserId::generate().as_uuid();
        let email = format!("ext-{}@external.invalid", id.simple());
        let row = on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            let row = sqlx::query_as::<_, UserRow>(USER)
                .bind(id)
                .bind(&email)
                .bind(username.as_ref())
                .bind(NO_PASSWORD)
                .bind(role.as_str())
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            let linked = sqlx::query(LINK)
                .bind(issuer)
                .bind(subject)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if linked == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Some(row))
        })?;
        row.map(TryInto::try_into).transpose()
    }
}
