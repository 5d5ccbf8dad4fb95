//! Devices a user signs in from, and the check that an access token's user and device are still
//! allowed in.

use banter_core::{Device, DeviceId, User, UserId};
use sqlx::types::Json;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::backend::{Pool, on_pool};
use crate::session_reads::SessionKey;
use crate::users::UserRow;
use crate::{PrimaryPool, StoreError};

#[derive(sqlx::FromRow)]
struct DeviceRow {
    user_id: Uuid,
    device_id: String,
    device_info: Json<serde_json::Value>,
    created_at: OffsetDateTime,
    last_seen_at: OffsetDateTime,
    is_active: bool,
}

impl TryFrom<DeviceRow> for Device {
    type Error = StoreError;

    fn try_from(row: DeviceRow) -> Result<Self, StoreError> {
        Ok(Device {
            user_id: UserId::from_uuid(row.user_id),
            device_id: DeviceId::parse(&row.device_id)
                .map_err(|_| anyhow::anyhow!("stored device id is invalid"))?,
            info_json: row.device_info.0.to_string(),
            created_at: row.created_at,
            last_seen_at: row.last_seen_at,
            is_active: row.is_active,
        })
    }
}

#[derive(sqlx::FromRow)]
struct PrincipalRow {
    /// Which of the asked sessions this row answers.
    i: i64,
    #[sqlx(flatten)]
    user: UserRow,
    device_active: Option<bool>,
    session_active: bool,
}

impl PrimaryPool {
    /// Records a sign-in from `device_id`: creates the device or refreshes its info and
    /// `last_seen_at`, and (re)activates it.
    #[tracing::instrument(name = "db.upsert_device", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn upsert_device(
        &self,
        user_id: UserId,
        device_id: &DeviceId,
        info: serde_json::Value,
        at: OffsetDateTime,
    ) -> Result<Device, StoreError> {
        const SQL: &str = "INSERT INTO user_devices (id, user_id, device_id, device_info, created_at, last_seen_at, is_active) \
             VALUES ($1, $2, $3, $4, $5, $5, true) \
             ON CONFLICT (user_id, device_id) DO UPDATE SET device_info = excluded.device_info, \
             last_seen_at = excluded.last_seen_at, is_active = true \
             RETURNING user_id, device_id, device_info, created_at, last_seen_at, is_active";
        let row = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, DeviceRow>(SQL)
                .bind(Uuid::now_v7())
                .bind(user_id.as_uuid())
                .bind(device_id.as_ref())
                .bind(Json(&info))
                .bind(at)
                .fetch_one(p)
                .await
        })?;
        row.try_into()
    }

    /// The user's devices, most recently seen first.
    #[tracing::instrument(name = "db.list_devices", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn list_devices(&self, user_id: UserId) -> Result<Vec<Device>, StoreError> {
        const SQL: &str = "SELECT user_id, device_id, device_info, created_at, last_seen_at, is_active \
             FROM user_devices WHERE user_id = $1 ORDER BY last_seen_at DESC, device_id";
        let rows = on_pool!(self.pool(), |p| {
            sqlx::query_as::<_, DeviceRow>(SQL)
                .bind(user_id.as_uuid())
                .fetch_all(p)
                .await
        })?;
        rows.into_iter().map(TryInto::try_into).collect()
    }

    /// Signs a device out: marks it inactive and revokes all of its refresh tokens, in one
    /// transaction. `false` if the user has no such device.
    #[tracing::instrument(name = "db.revoke_device", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn revoke_device(
        &self,
        user_id: UserId,
        device_id: &DeviceId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let found = on_pool!(self.pool(), |p| {
            let mut tx = p.begin().await?;
            let found = sqlx::query(
                "UPDATE user_devices SET is_active = false WHERE user_id = $1 AND device_id = $2",
            )
            .bind(user_id.as_uuid())
            .bind(device_id.as_ref())
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            sqlx::query(
                "UPDATE refresh_tokens SET revoked_at = $3 \
                 WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL",
            )
            .bind(user_id.as_uuid())
            .bind(device_id.as_ref())
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(found)
        })?;
        Ok(found)
    }

    /// The user behind an access token, if the account is active, the device has not been
    /// revoked and the token's session (its refresh-token family) has not ended: logout,
    /// revocation of the device, a password change elsewhere and detected refresh-token reuse
    /// all end a session. Read on the primary so any of them takes effect at once, in one query
    /// with the other sessions asked meanwhile (`session_reads.rs`).
    #[tracing::instrument(name = "db.active_principal", skip_all, fields(db.pool = "primary", otel.kind = "client"))]
    pub async fn active_principal(
        &self,
        user_id: UserId,
        device_id: &DeviceId,
        session_id: Uuid,
    ) -> Result<Option<User>, StoreError> {
        let pool = self.reads().clone();
        let reader = move |keys: Vec<SessionKey>| {
            let pool = pool.clone();
            async move { active_principals(&pool, &keys).await }
        };
        self.session_reads()
            .read((user_id, device_id.clone(), session_id), reader)
            .await
    }
}

/// Whether each session is alive (see `active_principal`), in the order asked, in one query.
pub(crate) async fn active_principals(
    pool: &Pool,
    keys: &[SessionKey],
) -> Result<Vec<Option<User>>, StoreError> {
    const SELECT: &str = ") SELECT a.i, u.id, u.email, u.username, u.role, u.is_active, u.last_login_at, \
         u.created_at, u.updated_at, d.is_active AS device_active, \
         EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = a.family_id AND t.user_id = u.id \
                 AND t.device_id = a.device_id AND t.revoked_at IS NULL) AS session_active \
         FROM asked a JOIN users u ON u.id = a.user_id \
         LEFT JOIN user_devices d ON d.user_id = u.id AND d.device_id = a.device_id";
    let rows = on_pool!(pool, |p| {
        let mut query =
            sqlx::QueryBuilder::new("WITH asked (i, user_id, device_id, family_id) AS (");
        // Padded to a power of two with rows that match no user, so the text takes one of nine
        // shapes: each connection prepares and caches (its cache holds 100) those nine, not one
        // per batch size.
        let padding = keys.len().next_power_of_two() - keys.len();
        let nobody = (Uuid::nil(), "", Uuid::nil());
        let asked = keys
            .iter()
            .map(|(user, device, session)| (user.as_uuid(), device.as_ref(), *session))
            .chain(std::iter::repeat_n(nobody, padding));
        query.push_values(
            asked.zip(0_i64..),
            |mut row, ((user, device, session), i)| {
                row.push_bind(i)
                    .push_bind(user)
                    .push_bind(device)
                    .push_bind(session);
            },
        );
        query.push(SELECT);
        query.build_query_as::<PrincipalRow>().fetch_all(p).await
    })?;
    let mut found = vec![None; keys.len()];
    for row in rows {
        let at = usize::try_from(row.i).ok().filter(|&at| at < keys.len());
        let at = at.ok_or_else(|| anyhow::anyhow!("a session read answered for row {}", row.i))?;
        if row.device_active == Some(true) && row.session_active {
            let user: User = row.user.try_into()?;
            found[at] = user.is_active.then_some(user);
        }
    }
    Ok(found)
}
