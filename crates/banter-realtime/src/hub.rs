//! `Hub`: this node's channels by topic, created on first join and removed after the last
//! leave; the bus handler that routes committed changes to them; and the access handler that
//! turns a committed access change into re-checks of the sockets it concerns (a user's
//! sockets for an account or membership change, a video's channel for a visibility change).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use banter_bus::{Bus, BusEvent, NodeLoad, PresenceSnapshot};
use banter_core::{AccessChange, UserId, VideoId};
use banter_store::Store;
use tokio::runtime::Handle;

use crate::channel::{Channel, Command};
use crate::channel_actor::ChannelActor;
use crate::outq::Close;
use crate::registry::{SessionEntry, Sessions};
use crate::{Gateway, RealtimeConfig};

/// After a bus outage every socket re-checks its access, this many at a time, `RESYNC_PAUSE` apart (10k
/// sockets take 5 s).
const RESYNC_BATCH: usize = 200;
const RESYNC_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

#[derive(Clone)]
pub struct Hub {
    pub(crate) inner: Arc<HubInner>,
}

pub(crate) struct HubInner {
    channels: Mutex<HashMap<VideoId, ChannelHandle>>,
    next_id: AtomicU64,
    store: Store,
    pub(crate) bus: Arc<dyn Bus>,
    pub gateway: Arc<dyn Gateway>,
    pub config: Arc<RealtimeConfig>,
    runtime: Handle,
    connections: Mutex<HashMap<IpAddr, usize>>,
    /// Flips to `true` once when the node shuts down; every session closes with 1012.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Set once when the node starts draining: new sockets are refused and each open one closes
    /// with 1012 at its turn within the window (see [`Hub::drain`]).
    pub draining: tokio::sync::watch::Sender<Option<Drain>>,
    /// Other nodes' socket counts, for rebalancing.
    pub(crate) loads: Arc<crate::rebalance::Loads>,
    /// Each open socket by session id: its outbound queue (to close it), its re-check queue and
    /// its signed-in user (to re-check it when access changes).
    sessions: Arc<Sessions>,
    /// The clock sessions stamp their last inbound frame with (whole seconds since this).
    epoch: std::time::Instant,
}

/// A drain in progress: sockets close in batches spread over `window` from `started`.
#[derive(Clone, Copy, Debug)]
pub struct Drain {
    pub started: tokio::time::Instant,
    pub window: std::time::Duration,
}

impl Drain {
    /// Batches are 100 ms apart; a socket's batch follows from its id, so the batches are even.
    pub fn turn_of(&self, session_id: u64) -> tokio::time::Instant {
        let slots = (self.window.as_millis() / 100).max(1) as u64;
        let slot = session_id % slots;
        self.started + self.window.mul_f64(slot as f64 / slots as f64)
    }
}

/// A topic's channel, as the hub and each of its sessions hold it. The address is shared, not
/// cloned: each clone of an actix `Addr` allocates its own sender state (about 150 bytes), and
/// every joined socket holds one handle.
#[derive(Clone)]
pub(crate) struct ChannelHandle {
    pub tx: Arc<actix::Addr<ChannelActor>>,
    id: u64,
}

impl Hub {
    /// Builds the hub and registers it as the bus's handler. Channel tasks run on the current
    /// tokio runtime (the server's), not on the HTTP workers'.
    pub fn new(
        store: Store,
        bus: Arc<dyn Bus>,
        gateway: Arc<dyn Gateway>,
        config: RealtimeConfig,
    ) -> Hub {
        let inner = Arc::new(HubInner {
            channels: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            store,
            bus: bus.clone(),
            gateway,
            config: Arc::new(config),
            runtime: Handle::current(),
            connections: Mutex::new(HashMap::new()),
            shutdown: tokio::sync::watch::Sender::new(false),
            draining: tokio::sync::watch::Sender::new(None),
            loads: Default::default(),
            sessions: Default::default(),
            epoch: std::time::Instant::now(),
        });
        let weak: Weak<HubInner> = Arc::downgrade(&inner);
        bus.set_handler(Arc::new(move |event: BusEvent| {
            if let Some(inner) = weak.upgrade() {
                inner.route(event);
            }
        }));
        let weak: Weak<HubInner> = Arc::downgrade(&inner);
        bus.set_load_handler(Arc::new(move |load: NodeLoad| {
            if let Some(inner) = weak.upgrade() {
                inner.loads.record(load);
            }
        }));
        let weak: Weak<HubInner> = Arc::downgrade(&inner);
        inner.runtime.spawn(crate::rebalance::run(
            bus.clone(),
            inner.loads.clone(),
            Arc::downgrade(&inner.sessions),
            inner.config.clone(),
            move || weak.upgrade().is_none_or(|h| h.draining.borrow().is_some()),
        ));
        let idle = inner.config.idle_timeout;
        // Once a second (sooner for idle timeouts under 4 s): token expiry is acted on within a
        // second, and one pass over 19k sockets takes well under a millisecond.
        let every = (idle / 4).clamp(
            std::time::Duration::from_millis(100),
            std::time::Duration::from_secs(1),
        );
        let epoch = inner.epoch;
        inner.runtime.spawn(crate::registry::sweep_every(
            Arc::downgrade(&inner.sessions),
            every,
            idle,
            move || seconds_since(epoch),
        ));
        let weak: Weak<HubInner> = Arc::downgrade(&inner);
        bus.set_access_handler(Arc::new(move |change: AccessChange| {
            if let Some(inner) = weak.upgrade() {
                inner.on_access_change(change);
            }
        }));
        let weak: Weak<HubInner> = Arc::downgrade(&inner);
        bus.set_reconnect_handler(Arc::new(move || {
            if let Some(inner) = weak.upgrade() {
                inner.on_bus_reconnected();
            }
        }));
        let weak: Weak<HubInner> = Arc::downgrade(&inner);
        bus.set_presence_handler(Arc::new(move |snapshot: PresenceSnapshot| {
            if let Some(inner) = weak.upgrade() {
                inner.route_presence(snapshot);
            }
        }));
        Hub { inner }
    }

    /// Closes every socket with 1012 ("service restart") so clients reconnect, to another
    /// node if this one is going away, and refuses new ones.
    pub fn shut_down(&self) {
        self.inner.shutdown.send_replace(true);
        self.inner.sessions.close_all(Close::new(
            banter_protocol::reasons::close::RESTART,
            "server restarting",
        ));
    }

    /// Drains the node: refuses new sockets at once, closes the open ones with 1012 in batches
    /// spread evenly over `window` (each finishes its in-flight comment posts first), and
    /// returns when all are closed, closing any stragglers two seconds after the window.
    pub async fn drain(&self, window: std::time::Duration) {
        let started = tokio::time::Instant::now();
        self.inner
            .draining
            .send_replace(Some(Drain { started, window }));
        let drain = Drain { started, window };
        let close = Close {
            finish_posts: true,
            ..Close::new(banter_protocol::reasons::close::RESTART, "server draining")
        };
        let deadline = started + window + std::time::Duration::from_secs(2);
        while self.connection_count() > 0 && tokio::time::Instant::now() < deadline {
            let now = tokio::time::Instant::now();
            self.inner
                .sessions
                .close_where(|id| drain.turn_of(id) <= now, &close);
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.shut_down();
    }

    /// Sockets currently open on this node.
    pub fn connection_count(&self) -> usize {
        self.inner.connection_count()
    }

    /// Channels currently open on this node.
    pub fn channel_count(&self) -> usize {
        self.inner.channels.lock().expect("hub lock").len()
    }
}

impl HubInner {
    pub fn connection_count(&self) -> usize {
        self.connections
            .lock()
            .expect("connections lock")
            .values()
            .sum()
    }

    pub(crate) fn register_session(&self, id: u64, entry: SessionEntry) {
        self.sessions.register(id, entry);
    }

    /// Whole seconds since the hub started: the clock of the idle sweep.
    pub(crate) fn now_secs(&self) -> u32 {
        seconds_since(self.epoch)
    }

    /// Queues the re-checks a committed access change calls for. Caches are dropped first, so
    /// every re-check reads the new state.
    fn on_access_change(self: &Arc<Self>, change: AccessChange) {
        metrics::counter!(crate::metrics::ACCESS_CHANGES).increment(1);
        self.gateway.access_changed(&change);
        match change {
            AccessChange::User(user) => {
                for outq in self.sessions_of(user) {
                    outq.recheck_account();
                }
            }
            AccessChange::Member { video, user } => {
                for outq in self.sessions_of(user) {
                    outq.recheck_video(video.clone());
                }
            }
            AccessChange::Chat(video) => {
                let Some(handle) = self.channels.lock().expect("hub lock").get(&video).cloned()
                else {
                    return; // nobody here watches it
                };
                // Waits for room rather than dropping: a lost change would not be repaired.
                self.runtime.spawn(async move {
                    let _ = handle.tx.send(Command::ChatChanged).await;
                });
            }
            AccessChange::SiteChat => {}
            AccessChange::Video(video) => {
                let Some(handle) = self.channels.lock().expect("hub lock").get(&video).cloned()
                else {
                    return; // nobody here watches it
                };
                let gateway = self.gateway.clone();
                self.runtime.spawn(async move {
                    // Still (or now) public: everyone may watch, nothing to re-check.
                    if gateway.check_view(None, video).await.is_ok() {
                        return;
                    }
                    let _ = handle.tx.send(Command::Recheck).await;
                });
            }
        }
    }

    /// The bus is back after a loss: every channel re-reads its tail at once (comments posted
    /// meanwhile reach viewers now, not at the next repair tick), and every socket re-checks
    /// its access, paced, so an outage does not turn into one burst of database reads.
    fn on_bus_reconnected(self: &Arc<Self>) {
        self.gateway.forget_cached_access();
        let channels: Vec<ChannelHandle> = self
            .channels
            .lock()
            .expect("hub lock")
            .values()
            .cloned()
            .collect();
        for channel in channels {
            // Full mailbox: the periodic repair catches up instead.
            let _ = channel.tx.try_send(Command::CatchUp);
        }
        let sessions = self.sessions.select(|_| true);
        tracing::info!(
            sockets = sessions.len(),
            "bus reconnected: catching up every topic and re-checking every socket"
        );
        self.runtime.spawn(async move {
            for batch in sessions.chunks(RESYNC_BATCH) {
                for outq in batch {
                    outq.recheck_account();
                }
                tokio::time::sleep(RESYNC_PAUSE).await;
            }
        });
    }

    /// The re-check queues of `user`'s open sockets on this node.
    fn sessions_of(&self, user: UserId) -> Vec<Arc<crate::outq::Outq>> {
        self.sessions.select(|e| e.user == Some(user))
    }

    pub(crate) fn unregister_session(&self, id: u64) {
        self.sessions.unregister(id);
    }

    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn route(&self, event: BusEvent) {
        let handle = self
            .channels
            .lock()
            .expect("hub lock")
            .get(&event.comment.video_id)
            .cloned();
        if let Some(handle) = handle
            && handle.tx.try_send(Command::Event(event)).is_err()
        {
            // Full mailbox: the channel repairs the gap from the database by `seq`.
            tracing::warn!("channel mailbox full; dropped a bus event");
        }
    }

    fn route_presence(&self, snapshot: PresenceSnapshot) {
        let handle = self
            .channels
            .lock()
            .expect("hub lock")
            .get(&snapshot.video)
            .cloned();
        if let Some(handle) = handle {
            // Full mailbox: dropped; the next heartbeat carries the same state.
            let _ = handle.tx.try_send(Command::Presence(snapshot));
        }
    }

    /// The topic's channel, started if there is none.
    pub fn channel(self: &Arc<Self>, video: &VideoId) -> ChannelHandle {
        let mut channels = self.channels.lock().expect("hub lock");
        if let Some(handle) = channels.get(video)
            && handle.tx.connected()
        {
            return handle.clone();
        }
        let id = self.next_id();
        metrics::gauge!(crate::metrics::CHANNELS).increment(1.0);
        self.bus.subscribe(video.as_ref());
        let channel = Channel::new(
            video.clone(),
            self.store.clone(),
            self.config.clone(),
            self.bus.clone(),
        );
        let weak = Arc::downgrade(self);
        let topic = video.clone();
        // On the arbiter of the worker whose socket asked first; other threads reach it
        // through its address.
        let tx = ChannelActor::start(channel, move || {
            if let Some(hub) = weak.upgrade() {
                let mut channels = hub.channels.lock().expect("hub lock");
                if channels.get(&topic).is_some_and(|h| h.id == id) {
                    channels.remove(&topic);
                    metrics::gauge!(crate::metrics::CHANNELS).decrement(1.0);
                    hub.bus.unsubscribe(topic.as_ref());
                }
            }
        });
        let handle = ChannelHandle {
            tx: Arc::new(tx),
            id,
        };
        channels.insert(video.clone(), handle.clone());
        handle
    }

    /// Counts a new connection from `ip`; `None` when the per-IP limit is reached.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionGuard> {
        let mut connections = self.connections.lock().expect("connections lock");
        let count = connections.entry(ip).or_insert(0);
        if *count >= self.config.max_connections_per_ip {
            return None;
        }
        *count += 1;
        Some(ConnectionGuard {
            hub: self.clone(),
            ip,
        })
    }
}

fn seconds_since(epoch: std::time::Instant) -> u32 {
    u32::try_from(epoch.elapsed().as_secs()).unwrap_or(u32::MAX)
}

/// Releases a connection's place in the per-IP count when dropped.
pub(crate) struct ConnectionGuard {
    hub: Arc<HubInner>,
    ip: IpAddr,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut connections = self.hub.connections.lock().expect("connections lock");
        if let Some(count) = connections.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                connections.remove(&self.ip);
            }
        }
    }
}
