//! Session reads taken together: the checks that an access token's session is still alive
//! (`active_principal`) that arrive while the readers are busy are answered by their next read,
//! all of them in one query. A signed-in REST request checks its session every time, and a
//! socket's join or post whenever its cached answer (2 s) has expired, so a flood of posts from
//! many posters, or a storm of signed-in rejoins, would otherwise queue one query each for the
//! pool, ahead of the commits.
//!
//! At most [`MAX_READERS`] reader tasks per pool at a time: an ask that finds fewer running spawns
//! one, and each takes up to [`MAX_BATCH`] queued asks (one row each, the same session asked twice
//! is read once), answers each, and repeats until none are left. While fewer checks than readers
//! are in flight, an ask so costs what it did (one query, started at once); checks are read
//! together only when they arrive faster than the readers' queries finish. (Two: with one, the
//! checks of 2,000 REST posts a second waited behind each other's queries more often; four did
//! no better than two on PostgreSQL, see `BENCHMARKS.md`.) Beyond [`MAX_QUEUED`] waiting asks a new one is refused with [`StoreError::Busy`]
//! at once, and a failed read gives every ask in it the error.
//!
//! Kept out: what makes a session alive (the query, `devices.rs`) and any caching of the answer
//! (the socket gateway's `principals.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use banter_core::{DeviceId, User, UserId};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::StoreError;
use crate::backend::Pool;
use crate::devices;

/// The most sessions one query reads (four bound parameters each, far under either backend's
/// limit).
pub(crate) const MAX_BATCH: usize = 256;
/// The most asks that may wait for a reader; more are refused with `Busy`.
pub(crate) const MAX_QUEUED: usize = 8192;
/// The most session queries in flight at once per pool (of its 10 connections by default).
pub(crate) const MAX_READERS: usize = 2;

/// Which session: the token's user, device and session (refresh-token family).
pub(crate) type SessionKey = (UserId, DeviceId, Uuid);

type Answer = Result<Option<User>, StoreError>;

struct Ask {
    key: SessionKey,
    reply: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Queue {
    asks: Vec<Ask>,
    /// Reader tasks running.
    readers: usize,
}

/// The asks of one pool waiting for a reader.
#[derive(Default)]
pub(crate) struct SessionReads {
    waiting: Mutex<Queue>,
    queries: AtomicU64,
    sessions: AtomicU64,
}

/// What the session reads have done since start: queries run and the sessions they read.
/// `sessions / queries` is the mean batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionReadStats {
    pub queries: u64,
    pub sessions: u64,
}

impl std::fmt::Debug for SessionReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionReads").finish_non_exhaustive()
    }
}

impl SessionReads {
    pub(crate) fn stats(&self) -> SessionReadStats {
        SessionReadStats {
            queries: self.queries.load(Ordering::Relaxed),
            sessions: self.sessions.load(Ordering::Relaxed),
        }
    }

    /// The session's user if it is alive, read together with whatever else is asked meanwhile.
    pub(crate) async fn read(self: &Arc<Self>, pool: &Pool, key: SessionKey) -> Answer {
        let (reply, answer) = oneshot::channel();
        let start = {
            let mut queue = self.waiting.lock().expect("session reads lock");
            if queue.asks.len() >= MAX_QUEUED {
                return Err(StoreError::Busy);
            }
            queue.asks.push(Ask { key, reply });
            let start = queue.readers < MAX_READERS;
            queue.readers += usize::from(start);
            start
        };
        if start {
            // A task of its own, so a caller that gives up cannot cancel a read that answers
            // other callers too.
            tokio::spawn(self.clone().read_until_idle(pool.clone()));
        }
        answer.await.map_err(|_| {
            StoreError::Unexpected(anyhow::anyhow!("the session's read was abandoned"))
        })?
    }

    /// Reads the queued asks batch by batch until none are left, then ends.
    async fn read_until_idle(self: Arc<Self>, pool: Pool) {
        // If this task dies, it must not stay counted: with no reader left, later asks would
        // wait for one that no longer exists.
        let guard = Abandon(&self);
        loop {
            let batch = {
                let mut queue = self.waiting.lock().expect("session reads lock");
                if queue.asks.is_empty() {
                    queue.readers -= 1;
                    std::mem::forget(guard);
                    return;
                }
                let take = queue.asks.len().min(MAX_BATCH);
                queue.asks.drain(..take).collect::<Vec<_>>()
            };
            // Each session once, however many asked for it.
            let mut index: HashMap<&SessionKey, usize> = HashMap::new();
            let mut keys = Vec::new();
            for ask in &batch {
                index.entry(&ask.key).or_insert_with(|| {
                    keys.push(ask.key.clone());
                    keys.len() - 1
                });
            }
            let places: Vec<usize> = batch.iter().map(|ask| index[&ask.key]).collect();
            drop(index);
            let result = devices::active_principals(&pool, &keys).await;
            self.queries.fetch_add(1, Ordering::Relaxed);
            self.sessions
                .fetch_add(keys.len() as u64, Ordering::Relaxed);
            for (ask, place) in batch.into_iter().zip(places) {
                let answer = match &result {
                    Ok(found) => Ok(found[place].clone()),
                    Err(err) => Err(err.copy()),
                };
                let _ = ask.reply.send(answer);
            }
        }
    }
}

/// Uncounts a reader that ended abnormally; the last one drops the waiting asks, whose callers
/// are then told their read was abandoned.
struct Abandon<'a>(&'a SessionReads);

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.0.waiting.lock() {
            queue.readers = queue.readers.saturating_sub(1);
            if queue.readers == 0 {
                queue.asks.clear();
            }
        }
    }
}
