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
//! no better than two on PostgreSQL, see `BENCHMARKS.md`.) Beyond [`MAX_QUEUED`] waiting asks a
//! new one is refused with [`StoreError::Busy`] at once, and a failed read gives every ask in it
//! the error.
//!
//! Kept out: what makes a session alive (the query, `devices.rs`) and any caching of the answer
//! (the socket gateway's `principals.rs`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use banter_core::{DeviceId, User, UserId};
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::StoreError;

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
    /// `reader` reads sessions in one query, answering in their order (`devices.rs`); it is
    /// called only by a reader task this ask starts, if it starts one.
    pub(crate) async fn read<R, F>(self: &Arc<Self>, key: SessionKey, reader: R) -> Answer
    where
        R: FnMut(Vec<SessionKey>) -> F + Send + 'static,
        F: Future<Output = Result<Vec<Option<User>>, StoreError>> + Send + 'static,
    {
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
            tokio::spawn(self.clone().read_until_idle(reader));
        }
        answer.await.map_err(|_| {
            StoreError::Unexpected(anyhow::anyhow!("the session's read was abandoned"))
        })?
    }

    /// Reads the queued asks batch by batch until none are left, then ends.
    async fn read_until_idle<R, F>(self: Arc<Self>, mut reader: R)
    where
        R: FnMut(Vec<SessionKey>) -> F,
        F: Future<Output = Result<Vec<Option<User>>, StoreError>>,
    {
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
            let places: Vec<usize> = batch
                .iter()
                .map(|ask| {
                    *index.entry(&ask.key).or_insert_with(|| {
                        keys.push(ask.key.clone());
                        keys.len() - 1
                    })
                })
                .collect();
            drop(index);
            let read = keys.len();
            let result = reader(keys).await.and_then(|found| {
                if found.len() == read {
                    Ok(found)
                } else {
                    let err = anyhow::anyhow!("{read} sessions read, {} answered", found.len());
                    Err(StoreError::Unexpected(err))
                }
            });
            self.queries.fetch_add(1, Ordering::Relaxed);
            self.sessions.fetch_add(read as u64, Ordering::Relaxed);
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use banter_core::{Email, Role, Username};
    use time::OffsetDateTime;

    use super::*;

    fn key(n: u128) -> SessionKey {
        (
            UserId::from_uuid(Uuid::from_u128(n)),
            DeviceId::parse("phone").unwrap(),
            Uuid::from_u128(n),
        )
    }

    /// An alive session for even `n`, none for odd; each query takes `delay` and is counted,
    /// with the most in flight at once.
    #[derive(Clone, Default)]
    struct Fake {
        queries: Arc<AtomicUsize>,
        in_flight: Arc<AtomicUsize>,
        most_in_flight: Arc<AtomicUsize>,
        delay: Duration,
    }

    impl Fake {
        fn reader(
            &self,
        ) -> impl FnMut(
            Vec<SessionKey>,
        ) -> futures_util::future::BoxFuture<
            'static,
            Result<Vec<Option<User>>, StoreError>,
        > + Send
        + 'static {
            let fake = self.clone();
            move |keys| {
                let fake = fake.clone();
                Box::pin(async move {
                    fake.queries.fetch_add(1, Ordering::SeqCst);
                    let now = fake.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                    fake.most_in_flight.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(fake.delay).await;
                    fake.in_flight.fetch_sub(1, Ordering::SeqCst);
                    Ok(keys.iter().map(|(user, _, _)| alive(*user)).collect())
                })
            }
        }
    }

    fn alive(user: UserId) -> Option<User> {
        user.as_uuid().as_u128().is_multiple_of(2).then(|| User {
            id: user,
            email: Email::parse("a@example.com").unwrap(),
            username: Username::parse("alice").unwrap(),
            role: Role::User,
            is_active: true,
            last_login_at: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        })
    }

    #[tokio::test]
    async fn asks_arriving_together_share_few_queries_and_get_their_own_answers() {
        let reads = Arc::new(SessionReads::default());
        let fake = Fake {
            delay: Duration::from_millis(20),
            ..Fake::default()
        };
        // 600 asks of 300 sessions (each twice), all at once.
        let asks = (0..600u128).map(|n| {
            let (reads, reader) = (reads.clone(), fake.reader());
            async move { (n % 300, reads.read(key(n % 300), reader).await) }
        });
        for (n, answer) in futures_util::future::join_all(asks).await {
            let expected = alive(key(n).0).map(|u| u.id);
            assert_eq!(answer.unwrap().map(|u| u.id), expected, "session {n}");
        }
        let queries = fake.queries.load(Ordering::SeqCst);
        assert!(queries <= 4, "{queries} queries for 600 asks");
        assert_eq!(
            fake.most_in_flight.load(Ordering::SeqCst),
            MAX_READERS.min(queries)
        );
        let stats = reads.stats();
        assert_eq!(stats.queries, queries as u64);
        assert!(
            stats.sessions <= 600,
            "a session asked twice in a batch is read once"
        );
    }

    #[tokio::test]
    async fn a_lone_ask_is_read_at_once_and_a_full_queue_is_refused_busy() {
        let reads = Arc::new(SessionReads::default());
        let slow = Fake {
            delay: Duration::from_secs(3600),
            ..Fake::default()
        };
        // Two readers busy for an hour with their first batches, and the queue behind them full.
        let mut waiting = Vec::new();
        let mut n = 0u128;
        while reads.waiting.lock().unwrap().asks.len() < MAX_QUEUED {
            let (reads, reader) = (reads.clone(), slow.reader());
            waiting.push(tokio::spawn(
                async move { reads.read(key(n), reader).await },
            ));
            n += 1;
            if n.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
        }
        let refused =
            tokio::time::timeout(Duration::from_secs(5), reads.read(key(0), slow.reader()))
                .await
                .expect("refused at once, not queued");
        assert!(matches!(refused, Err(StoreError::Busy)), "{refused:?}");
        assert_eq!(slow.most_in_flight.load(Ordering::SeqCst), MAX_READERS);
        for task in waiting {
            task.abort();
        }

        let fresh = Arc::new(SessionReads::default());
        let quick = Fake::default();
        let found = fresh.read(key(2), quick.reader()).await.unwrap();
        assert_eq!(found.map(|u| u.id), alive(key(2).0).map(|u| u.id));
        assert_eq!(quick.queries.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failed_or_dead_reader_answers_its_asks_and_the_next_ask_reads_again() {
        let reads = Arc::new(SessionReads::default());
        let failed = reads
            .read(key(2), |_| async { Err(StoreError::Busy) })
            .await;
        assert!(matches!(failed, Err(StoreError::Busy)), "{failed:?}");
        let short = reads.read(key(2), |_| async { Ok(vec![]) }).await;
        assert!(
            short.is_err(),
            "an answer of the wrong length is an error, not a guess"
        );
        let panicked = reads
            .read(key(2), |_| async { panic!("the reader died") })
            .await;
        assert!(panicked.is_err());
        assert_eq!(
            reads.waiting.lock().unwrap().readers,
            0,
            "the dead reader is uncounted"
        );
        let quick = Fake::default();
        let found = reads.read(key(4), quick.reader()).await.unwrap();
        assert_eq!(found.map(|u| u.id), alive(key(4).0).map(|u| u.id));
    }
}
