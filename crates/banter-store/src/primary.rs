//! `PrimaryPool`: the handle for writes and read-your-writes reads. Entity modules add their
//! methods to it (`users.rs`, `comments.rs`, …).

use crate::StoreError;
use crate::backend::{Pool, on_pool};

#[derive(Clone, Debug)]
pub struct PrimaryPool {
    pool: Pool,
}

impl PrimaryPool {
    pub(crate) fn new(pool: Pool) -> Self {
        Self { pool }
    }

    pub(crate) fn pool(&self) -> &Pool {
        &self.pool
    }

    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(&self.pool, |p| sqlx::query("SELECT 1")
            .execute(p)
            .await
            .map(|r| r.rows_affected()))?;
        Ok(())
    }
}
