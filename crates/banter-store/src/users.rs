//! Users: accounts, credentials lookup, profile and admin changes.

use banter_core::{Email, Role, User, UserId, Username};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::{Pool, on_pool};
use crate::{PrimaryPool, ReadPool, StoreError};

#[derive(sqlx::FromRow)]
pub(crate) struct UserRow {
    id: Uuid,
    email: String,
    username: String,
    role: String,
    is_active: bool,
    last_login_at: Option<OffsetDateTime>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(sqlx::FromRow)]
struct CredentialsRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> Result<Self, StoreError> {
        let invalid = |what: &str| anyhow::anyhow!("stored user {} has an invalid {what}", row.id);
        Ok(User {
            id: UserId::from_uuid(row.id),
            email: Email::parse(&row.email).map_err(|_| invalid("email"))?,
            username: Username::parse(&row.username).map_err(|_| invalid("username"))?,
            role: row.role.parse::<Role>().map_err(|_| invalid("role"))?,
            is_active: row.is_active,
            last_login_at: row.last_login_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

pub struct NewUser {
    pub email: Email,
    pub username: Username,
    pub password_hash: String,
    pub role: Role,
}

/// Changes a user makes to their own account; `None` leaves a field as it is.
#[derive(Default)]
pub struct ProfileChanges {
    pub email: Option<Email>,
    pub username: Option<Username>,
    pub password_hash: Option<String>,
}

impl PrimaryPool {
    #[tracing::instrument(name = "db.create_user", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn create_user(&self, new: NewUser) -> Result<User, StoreError> {
        let now = OffsetDateTime::now_utc();
        let id = UserId::generate().as_uuid();
        const SQL: &str = "INSERT INTO users (id, email, username, password_hash, role, is_active, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, true, $6, $6) \
             RETURNING id, email, username, role, is_active, last_login_at, created_at, updated_at";
        let row = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, UserRow>(SQL)
                .bind(id)
                .bind(new.email.as_ref())
                .bind(new.username.as_ref())
                .bind(&new.password_hash)
                .bind(new.role.as_str())
                .bind(now)
                .fetch_one(p)
                .await
        })?;
        row.try_into()
    }

    #[tracing::instrument(name = "db.get_user", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        get_user(self.reads(), id)
            .await?
            .map(TryInto::try_into)
            .transpose()
    }

    /// The user and password hash for a login name, which may be an email or a username.
    #[tracing::instrument(name = "db.find_credentials", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn find_credentials(
        &self,
        login: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        const SQL: &str = "SELECT id, email, username, role, is_active, last_login_at, created_at, updated_at, password_hash \
             FROM users WHERE lower(email) = lower($1) OR lower(username) = lower($1)";
        let row = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, CredentialsRow>(SQL)
                .bind(login)
                .fetch_optional(p)
                .await
        })?;
        row.map(|r| Ok((r.user.try_into()?, r.password_hash)))
            .transpose()
    }

    #[tracing::instrument(name = "db.password_hash", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn password_hash(&self, id: UserId) -> Result<Option<String>, StoreError> {
        Ok(on_pool!(self.pool(), |p| {
            sqlx::query_scalar::<_, String>("SELECT password_hash FROM users WHERE id = $1")
                .bind(id.as_uuid())
                .fetch_optional(p)
                .await
        })?)
    }

    #[tracing::instrument(name = "db.record_login", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn record_login(&self, id: UserId, at: OffsetDateTime) -> Result<(), StoreError> {
        on_pool!(self.pool(), |p| {
            sqlx::query("UPDATE users SET last_login_at = $2 WHERE id = $1")
                .bind(id.as_uuid())
                .bind(at)
                .execute(p)
                .await
                .map(|r| r.rows_affected())
        })?;
        Ok(())
    }

    /// Applies `changes`; `None` if the user does not exist.
    #[tracing::instrument(name = "db.update_profile", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn update_profile(
        &self,
        id: UserId,
        changes: ProfileChanges,
    ) -> Result<Option<User>, StoreError> {
        const SQL: &str = "UPDATE users SET email = COALESCE($2, email), username = COALESCE($3, username), \
             password_hash = COALESCE($4, password_hash), updated_at = $5 WHERE id = $1 \
             RETURNING id, email, username, role, is_active, last_login_at, created_at, updated_at";
        let row = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, UserRow>(SQL)
                .bind(id.as_uuid())
                .bind(changes.email.as_ref().map(AsRef::as_ref))
                .bind(changes.username.as_ref().map(AsRef::as_ref))
                .bind(changes.password_hash.as_deref())
                .bind(OffsetDateTime::now_utc())
                .fetch_optional(p)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }

    /// An admin's change of role and/or active flag; `None` if the user does not exist.
    #[tracing::instrument(name = "db.update_standing", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn update_standing(
        &self,
        id: UserId,
        role: Option<Role>,
        is_active: Option<bool>,
    ) -> Result<Option<User>, StoreError> {
        const SQL: &str = "UPDATE users SET role = COALESCE($2, role), is_active = COALESCE($3, is_active), \
             updated_at = $4 WHERE id = $1 \
             RETURNING id, email, username, role, is_active, last_login_at, created_at, updated_at";
        let row = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, UserRow>(SQL)
                .bind(id.as_uuid())
                .bind(role.map(|r| r.as_str()))
                .bind(is_active)
                .bind(OffsetDateTime::now_utc())
                .fetch_optional(p)
                .await
        })?;
        row.map(TryInto::try_into).transpose()
    }
}

impl ReadPool {
    /// Users ordered by id (which is time-ordered), after `after`, at most `limit`.
    pub async fn list_users(
        &self,
        after: Option<UserId>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        const SQL: &str = "SELECT id, email, username, role, is_active, last_login_at, created_at, updated_at \
             FROM users WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2";
        let after = after.map(|a| a.as_uuid());
        let rows = self
            .run(|pool| async move {
                on_pool!(&pool, |p| {
                    sqlx::query_as::<_, UserRow>(SQL)
                        .bind(after)
                        .bind(i64::from(limit))
                        .fetch_all(p)
                        .await
                })
            })
            .await?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    pub async fn get_user(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let row = self
            .run(|pool| async move { get_user(&pool, id).await })
            .await?;
        row.map(TryInto::try_into).transpose()
    }
}

async fn get_user(pool: &Pool, id: UserId) -> Result<Option<UserRow>, sqlx::Error> {
    const SQL: &str = "SELECT id, email, username, role, is_active, last_login_at, created_at, updated_at \
         FROM users WHERE id = $1";
    on_pool!(pool, |p| {
        sqlx::query_as::<_, UserRow>(SQL)
            .bind(id.as_uuid())
            .fetch_optional(p)
            .await
    })
}
