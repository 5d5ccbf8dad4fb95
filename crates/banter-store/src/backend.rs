//! `Pool`: one connection pool of either backend, and `on_pool!`, which runs the same query code
//! against whichever backend a pool is. Each arm of the macro is type-checked for its own
//! database, so no generic sqlx bounds are needed and the SQL text is shared.

use sqlx::{PgPool, SqlitePool};

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// `on_pool!(pool, |p| expr)` evaluates `expr` with `p` bound to the concrete `&PgPool` or
/// `&SqlitePool`.
macro_rules! on_pool {
    ($pool:expr, |$p:ident| $body:expr) => {
        match $pool {
            $crate::backend::Pool::Postgres($p) => $body,
            $crate::backend::Pool::Sqlite($p) => $body,
        }
    };
}
pub(crate) use on_pool;

impl Pool {
    pub(crate) async fn close(&self) {
        on_pool!(self, |p| p.close().await)
    }

    /// Open connections and how many of them are idle.
    pub(crate) fn usage(&self) -> (u32, usize) {
        on_pool!(self, |p| (p.size(), p.num_idle()))
    }
}
