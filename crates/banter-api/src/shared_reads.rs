//! `SharedReads`: at most one read per key at a time; every caller that asks for a key while its
//! read runs awaits that read instead of starting its own. A cache in front of a read
//! (`AccessCache`) answers a burst only once the first read is back; until then, and every time
//! an entry expires under load, the whole burst misses at once: without this, 19,000 rejoins of
//! a reconnect storm queued 19,000 visibility reads, and thousands of posts a second on one video
//! queued four rule reads each whenever the video's chat rules expired, until the pool ran dry.
//!
//! Each read is also driven by a task of its own, so it finishes even when every caller gave up (a
//! closed request, a join that timed out): a read polled only by its callers stood still once
//! they were gone, holding the pool connection it had taken until the next caller of its key
//! came. `forget`
//! lets the read in progress finish unshared, so callers arriving after an access change read
//! again.
//!
//! Kept out: what is read and what is cached from it (the callers: `chat_rules.rs`, the
//! server's `public_videos.rs`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};

pub struct SharedReads<K, T> {
    reading: Mutex<HashMap<K, Shared<BoxFuture<'static, T>>>>,
}

impl<K: Eq + Hash + Clone, T: Clone> Default for SharedReads<K, T> {
    fn default() -> Self {
        Self {
            reading: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash + Clone, T: Clone + Send + Sync + 'static> SharedReads<K, T> {
    /// What `read` returns for `key`, shared with every caller asking while it runs: `read` is
    /// called only when no read of `key` is in progress, and is driven by a task of the current
    /// runtime as well as by its callers.
    pub async fn read(&self, key: &K, read: impl FnOnce() -> BoxFuture<'static, T>) -> T {
        let shared = {
            let mut reading = self.reading.lock().expect("reads in progress");
            match reading.get(key) {
                Some(running) => running.clone(),
                None => {
                    let started = read().shared();
                    // Driven to the end by a task even when every caller has gone; the callers
                    // poll it too, so it still finishes if that task's runtime stops first.
                    tokio::spawn(started.clone().map(drop));
                    reading.insert(key.clone(), started.clone());
                    started
                }
            }
        };
        let result = shared.clone().await;
        // The first caller to see it finish takes it out (unless `forget` already did, and a
        // newer read took its place).
        let mut reading = self.reading.lock().expect("reads in progress");
        if reading.get(key).is_some_and(|r| r.ptr_eq(&shared)) {
            reading.remove(key);
        }
        result
    }

    /// Callers of `key` arriving from now on start a read of their own.
    pub fn forget(&self, key: &K) {
        self.reading.lock().expect("reads in progress").remove(key);
    }

    /// Callers of any key arriving from now on start a read of their own.
    pub fn forget_all(&self) {
        self.reading.lock().expect("reads in progress").clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// A read that counts itself and takes 50 ms.
    fn counted(reads: &Arc<AtomicUsize>) -> BoxFuture<'static, usize> {
        let n = reads.fetch_add(1, Ordering::SeqCst) + 1;
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            n
        })
    }

    #[tokio::test]
    async fn callers_asking_while_a_read_runs_share_it_and_later_ones_read_again() {
        let shared: SharedReads<&str, usize> = SharedReads::default();
        let reads = Arc::new(AtomicUsize::new(0));
        let all =
            futures_util::future::join_all((0..100).map(|_| shared.read(&"k", || counted(&reads))))
                .await;
        assert!(all.iter().all(|&n| n == 1), "one read, shared: {all:?}");
        assert_eq!(shared.read(&"k", || counted(&reads)).await, 2);
        assert_eq!(shared.read(&"other", || counted(&reads)).await, 3);
    }

    #[tokio::test]
    async fn a_read_whose_callers_gave_up_still_finishes_and_gives_back_what_it_took() {
        // One pooled connection, as a semaphore of one permit.
        let pool = Arc::new(tokio::sync::Semaphore::new(1));
        let shared: SharedReads<&str, usize> = SharedReads::default();
        let (taken_tx, taken_rx) = tokio::sync::oneshot::channel();
        let read = {
            let pool = pool.clone();
            move || -> BoxFuture<'static, usize> {
                Box::pin(async move {
                    let _connection = pool.acquire_owned().await.expect("pool");
                    let _ = taken_tx.send(());
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    1
                })
            }
        };
        // The only caller gives up once the read holds the connection.
        let caller = shared.read(&"k", read);
        tokio::select! {
            _ = caller => panic!("the read cannot finish before its caller gives up"),
            _ = taken_rx => {}
        }
        let other = tokio::time::timeout(Duration::from_secs(5), pool.acquire())
            .await
            .expect("the abandoned read kept its connection");
        drop(other);
        // Callers of the key arriving later get that read's answer or a new one, not a hang.
        let later = tokio::time::timeout(
            Duration::from_secs(5),
            shared.read(&"k", || Box::pin(async { 2 })),
        )
        .await
        .expect("a later caller of the key hung");
        assert!(later == 1 || later == 2);
    }

    #[tokio::test]
    async fn a_read_still_finishes_for_its_callers_when_the_runtime_that_started_it_stops() {
        let shared: Arc<SharedReads<&str, usize>> = Arc::default();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        // Started by a caller on another runtime (another worker), which gives up at once and
        // whose runtime then stops, taking the task that drove the read with it.
        std::thread::spawn({
            let shared = shared.clone();
            move || {
                let other = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                other.block_on(async move {
                    let caller = shared.read(&"k", move || {
                        Box::pin(async move {
                            released.await.expect("released");
                            7
                        })
                    });
                    assert!(futures_util::future::poll_immediate(caller).await.is_none());
                });
            }
        })
        .join()
        .unwrap();
        let waiting = tokio::spawn({
            let shared = shared.clone();
            async move { shared.read(&"k", || Box::pin(async { 0 })).await }
        });
        tokio::task::yield_now().await;
        release.send(()).unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("the caller hung")
            .expect("the caller panicked");
        assert_eq!(answer, 7, "the read in progress, not a new one");
    }

    #[tokio::test]
    async fn a_forgotten_read_is_not_shared_with_later_callers() {
        let shared: Arc<SharedReads<&str, usize>> = Arc::default();
        let reads = Arc::new(AtomicUsize::new(0));
        let first = tokio::spawn({
            let (shared, reads) = (shared.clone(), reads.clone());
            async move { shared.read(&"k", || counted(&reads)).await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        shared.forget(&"k");
        assert_eq!(shared.read(&"k", || counted(&reads)).await, 2);
        assert_eq!(first.await.unwrap(), 1);
    }
}
