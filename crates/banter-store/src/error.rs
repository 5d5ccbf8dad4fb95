//! `StoreError`: what a caller of the store can act on.

use std::fmt;

#[derive(thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; the payload names the field (`email`, `username`,
    /// `video`).
    #[error("{0} is already taken")]
    Conflict(&'static str),
    /// No database connection came free within the pool's acquire timeout: the write path is
    /// saturated. Callers answer "busy, retry shortly" rather than waiting longer.
    #[error("the database is busy: no connection within the acquire timeout")]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl StoreError {
    /// The same error for another caller that waited on the same work (a batch, a shared read):
    /// an `Unexpected` keeps its message, not its chain.
    pub fn copy(&self) -> StoreError {
        match self {
            StoreError::Busy => StoreError::Busy,
            StoreError::Conflict(field) => StoreError::Conflict(field),
            StoreError::Unexpected(e) => StoreError::Unexpected(anyhow::anyhow!("{e:#}")),
        }
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Conflict(field) => write!(f, "Conflict({field})"),
            StoreError::Busy => write!(f, "Busy"),
            StoreError::Unexpected(e) => write!(f, "{e:?}"),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if matches!(err, sqlx::Error::PoolTimedOut) {
            return StoreError::Busy;
        }
        if let Some(db) = err.as_database_error()
            && db.is_unique_violation()
        {
            let what = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            let field = if what.contains("email") {
                "email"
            } else if what.contains("username") {
                "username"
            } else if what.contains("videos") {
                "video"
            } else {
                "value"
            };
            return StoreError::Conflict(field);
        }
        StoreError::Unexpected(anyhow::Error::new(err).context("database query failed"))
    }
}
