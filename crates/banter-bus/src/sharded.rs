//! The Redis Cluster transport's connection and subscriptions: sharded pub/sub (`SSUBSCRIBE`,
//! Redis 7), where each channel lives on the shard that owns its slot, so a video's messages
//! stay in order on one shard and the bus grows by adding shards. Publishing (`SPUBLISH`) is in
//! `redis.rs`, through [`Shards::connection`].
//!
//! The `redis` crate's cluster connection routes each command and subscription to its slot's
//! owner, follows `MOVED`, and resubscribes a node's channels when that node reconnects. What
//! is added here, so subscriptions follow the cluster:
//!
//! - **Slot moves.** When a resharding moves a slot away, its old owner ends the subscriptions
//!   with a `sunsubscribe` push. Every channel still wanted is subscribed again at once; the
//!   cluster connection sends it to the new owner (following `MOVED`). Retried with backoff
//!   (50 ms doubling to 2 s) while the channel is wanted.
//! - **Failovers and lost connections.** The cluster connection keeps reconnecting to a dead
//!   master's address and does not learn on its own that a replica took over. So a lost
//!   connection (a `Disconnection` push) or a failed publish renews the whole connection from
//!   the seed nodes (a fresh slot map) after 500 ms, subscribes every wanted channel on it, and
//!   drops the old one; until every subscription succeeds (the failover may still be under
//!   way) it tries again, backing off from 500 ms to 5 s. Then the node's reconnect handler
//!   repairs from the database whatever was published meanwhile. The node stays ready through
//!   a failover (every node sees it at once: all unready would refuse every new viewer); it
//!   reports the bus down only when renewal kept failing for 10 s.
//! - Node loads (`<prefix>:nodes`) and access changes (`<prefix>:access`) are a channel each,
//!   so each sits on one shard; presence and comments are a channel per video, spread over all.
//!
//! Kept out: message routing to handlers (`inbound.rs`).

use std::collections::HashSet;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures_util::StreamExt;
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, PushKind, Value};
use tokio::sync::{Notify, mpsc};

use crate::inbound::Inbound;
use crate::metrics as m;
use crate::redis::Interest;

/// The node's current connection to the cluster, renewed from the seed nodes after a loss.
pub(crate) struct Shards {
    seeds: Vec<String>,
    current: RwLock<ClusterConnection>,
    renew: Notify,
}

/// Pushes (messages, subscription changes, losses) from one generation of the connection.
type Pushes = mpsc::UnboundedReceiver<PushInfo>;

impl Shards {
    /// Connects through any of `seeds`; the first connection must succeed.
    pub async fn connect(seeds: &[String]) -> anyhow::Result<(Arc<Shards>, Pushes)> {
        let (connection, pushes) = open(seeds).await?;
        let shards = Arc::new(Shards {
            seeds: seeds.to_vec(),
            current: RwLock::new(connection),
            renew: Notify::new(),
        });
        Ok((shards, pushes))
    }

    /// The connection to publish on.
    pub fn connection(&self) -> ClusterConnection {
        self.current.read().expect("shards lock").clone()
    }

    /// Asks for the connection to be renewed (after a failed publish).
    pub fn renew_soon(&self) {
        self.renew.notify_one();
    }
}

async fn open(seeds: &[String]) -> redis::RedisResult<(ClusterConnection, Pushes)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = redis::cluster::ClusterClientBuilder::new(seeds.to_vec())
        .use_protocol(redis::ProtocolVersion::RESP3)
        .push_sender(tx)
        .connection_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(2))
        .build()?;
    Ok((client.get_async_connection().await?, rx))
}

/// The channels this node wants, shared with the retrying subscription tasks so that they stop
/// when a channel is no longer wanted.
type Wanted = Arc<Mutex<HashSet<String>>>;

const RENEW_AFTER: Duration = Duration::from_millis(500);
const RENEW_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long renewal may keep failing before the node reports the bus down (for readiness).
const UNREADY_AFTER: Duration = Duration::from_secs(10);

pub(crate) async fn subscriber(
    shards: Arc<Shards>,
    mut pushes: Pushes,
    inbound: Inbound,
    mut interest: mpsc::Receiver<Interest>,
    connected: Arc<AtomicBool>,
) {
    let wanted: Wanted = Arc::new(Mutex::new(HashSet::from([
        inbound.nodes_channel(),
        inbound.access_channel(),
    ])));
    for channel in [inbound.nodes_channel(), inbound.access_channel()] {
        subscribe_until_done(shards.connection(), wanted.clone(), channel).await;
    }
    connected.store(true, Ordering::Relaxed);
    tracing::info!(prefix = inbound.prefix, "redis cluster bus subscribed");
    let mut renew_at: Option<Pin<Box<tokio::time::Sleep>>> = None;
    let mut backoff = RENEW_AFTER;
    let mut pushes_open = true;
    // Since when the bus has been without a working connection.
    let mut lost_since: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            push = pushes.recv(), if pushes_open => {
                let Some(push) = push else {
                    // This generation is gone without a word: renew.
                    pushes_open = false;
                    renew_at.get_or_insert_with(|| Box::pin(tokio::time::sleep(backoff)));
                    continue;
                };
                match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        if let [channel, payload, ..] = push.data.as_slice()
                            && let (Some(channel), Some(payload)) = (text(channel), text(payload))
                        {
                            inbound.receive(&channel, &payload);
                        }
                    }
                    PushKind::SUnsubscribe => {
                        let Some(channel) = push.data.first().and_then(text) else { continue };
                        if wanted.lock().expect("wanted lock").contains(&channel) {
                            // The slot moved (or its shard dropped us): follow it.
                            metrics::counter!(m::RESUBSCRIBES).increment(1);
                            tracing::info!(channel, "shard ended a wanted subscription; resubscribing");
                            tokio::spawn(subscribe_until_done(shards.connection(), wanted.clone(), channel));
                        }
                    }
                    PushKind::Disconnection => {
                        // Still ready: a shard failing over takes seconds, and every node sees
                        // it at once; unready only if the renewal keeps failing (below).
                        lost_since.get_or_insert_with(std::time::Instant::now);
                        metrics::counter!(m::RECONNECTS).increment(1);
                        tracing::warn!("redis cluster connection lost; renewing it from the seeds");
                        renew_at.get_or_insert_with(|| Box::pin(tokio::time::sleep(backoff)));
                    }
                    _ => {}
                }
            }
            () = shards.renew.notified() => {
                renew_at.get_or_insert_with(|| Box::pin(tokio::time::sleep(backoff)));
            }
            () = async { renew_at.as_mut().expect("guarded").await }, if renew_at.is_some() => {
                renew_at = None;
                match renew(&shards, &wanted).await {
                    Some(fresh) => {
                        pushes = fresh;
                        pushes_open = true;
                        backoff = RENEW_AFTER;
                        lost_since = None;
                        connected.store(true, Ordering::Relaxed);
                        tracing::info!("redis cluster connection renewed; catching up");
                        inbound.reconnected();
                    }
                    None => {
                        if lost_since.get_or_insert_with(std::time::Instant::now).elapsed() > UNREADY_AFTER {
                            connected.store(false, Ordering::Relaxed);
                        }
                        backoff = (backoff * 2).min(RENEW_BACKOFF_MAX);
                        renew_at = Some(Box::pin(tokio::time::sleep(backoff)));
                    }
                }
            }
            change = interest.recv() => {
                let Some(change) = change else { return };
                match change {
                    Interest::Subscribe(channel) => {
                        if wanted.lock().expect("wanted lock").insert(channel.clone())
                            && let Err(e) = shards.connection().ssubscribe(&channel).await
                        {
                            tracing::warn!(error = %e, channel, "ssubscribe failed; retrying");
                            tokio::spawn(subscribe_until_done(shards.connection(), wanted.clone(), channel));
                        }
                    }
                    Interest::Unsubscribe(channel) => {
                        if wanted.lock().expect("wanted lock").remove(&channel)
                            && let Err(e) = shards.connection().sunsubscribe(&channel).await
                        {
                            // Extra messages are ignored by the node; nothing to repair.
                            tracing::warn!(error = %e, channel, "sunsubscribe failed");
                        }
                    }
                }
            }
        }
    }
}

/// A fresh connection from the seeds with every wanted channel subscribed, swapped in for the
/// old one (dropping it); `None` if the cluster cannot serve all of them yet.
async fn renew(shards: &Shards, wanted: &Wanted) -> Option<Pushes> {
    let (connection, pushes) = match open(&shards.seeds).await {
        Ok(fresh) => fresh,
        Err(e) => {
            tracing::warn!(error = %e, "redis cluster unreachable; retrying");
            return None;
        }
    };
    let channels: Vec<String> = wanted
        .lock()
        .expect("wanted lock")
        .iter()
        .cloned()
        .collect();
    let failed = futures_util::stream::iter(channels)
        .map(|channel| {
            let mut connection = connection.clone();
            async move { connection.ssubscribe(&channel).await.is_err() }
        })
        .buffer_unordered(64)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    if failed > 0 {
        tracing::warn!(
            failed,
            "some shards cannot take subscriptions yet; retrying"
        );
        return None;
    }
    *shards.current.write().expect("shards lock") = connection;
    Some(pushes)
}

/// Subscribes to `channel`, retrying with backoff for as long as it is wanted.
async fn subscribe_until_done(mut connection: ClusterConnection, wanted: Wanted, channel: String) {
    let mut backoff = Duration::from_millis(50);
    while wanted.lock().expect("wanted lock").contains(&channel) {
        match connection.ssubscribe(&channel).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, channel, "ssubscribe failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

fn text(value: &Value) -> Option<String> {
    redis::from_redis_value_ref(value).ok()
}
