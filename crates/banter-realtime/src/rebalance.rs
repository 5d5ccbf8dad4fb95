//! Rebalancing after a scale-out. Every realtime node publishes its open-socket count on the
//! bus at the presence heartbeat; each keeps the others' counts (dropping nodes silent past the
//! node timeout). A node holding more than the average × (1 + threshold) closes its excess with
//! 1012 "rebalancing", a few sockets per tick (the cheapest to move first: idle anonymous
//! viewers before signed-in and active ones) at jittered moments across the tick, so clients
//! reconnect through the load balancer spread out, onto the other pods, and recover with
//! `since_seq`. While above that target it
//! also refuses new socket upgrades (503 with `Retry-After`), so a balancer that retries on 503
//! (our nginx and Ingress do) lands the shed clients on the other nodes instead of back here.
//! On by default in the server (`BANTER_REBALANCE_ENABLED`). A node sheds only when the
//! cluster's total is steady, no node is draining (the loads carry a draining flag: during a
//! rolling restart refusing here would leave the drained sockets nowhere to go), and its excess
//! is at least `min_excess` sockets.
//!
//! Kept out: how a socket is closed (the session's `Control`), which node a client lands on
//! (the load balancer).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use banter_bus::NodeLoad;

use banter_bus::Bus;

use crate::config::{RealtimeConfig, RebalanceConfig};
use crate::outq::{Close, Outq};
use crate::registry::Sessions;

/// Sockets closed to rebalance (counter).
pub const REBALANCED: &str = "banter_ws_rebalanced_total";

/// The other nodes' last reported loads.
#[derive(Default)]
pub(crate) struct Loads {
    /// Each other node's sockets, whether it is draining, and when it last said so.
    others: Mutex<HashMap<String, (usize, bool, Instant)>>,
    /// This node holds more than its target share: new upgrades are refused.
    over_target: std::sync::atomic::AtomicBool,
}

impl Loads {
    /// Whether this node is above its target share (set each heartbeat while rebalancing).
    pub fn over_target(&self) -> bool {
        self.over_target.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn record(&self, load: NodeLoad) {
        self.others
            .lock()
            .expect("loads lock")
            .insert(load.node, (load.connections, load.draining, Instant::now()));
    }

    /// Whether a node heard from within `timeout` is draining (a rolling restart is under way:
    /// its sockets are moving anyway, and it takes none of ours).
    pub fn any_draining(&self, timeout: Duration) -> bool {
        let others = self.others.lock().expect("loads lock");
        others
            .values()
            .any(|(_, draining, at)| *draining && at.elapsed() < timeout)
    }

    /// Loads of nodes heard from within `timeout`; older ones are forgotten.
    pub fn live(&self, timeout: Duration) -> Vec<usize> {
        let mut others = self.others.lock().expect("loads lock");
        others.retain(|_, (_, _, at)| at.elapsed() < timeout);
        others.values().map(|(n, _, _)| *n).collect()
    }
}

/// How many sockets to close this tick: none unless `own` exceeds the average (over this node
/// and `others`) by more than the threshold and by at least `min_excess` sockets; then the
/// excess over the average, at most `max`.
pub(crate) fn to_shed(own: usize, others: &[usize], config: RebalanceConfig, max: usize) -> usize {
    if others.is_empty() {
        return 0;
    }
    let total = own + others.iter().sum::<usize>();
    let average = total as f64 / (others.len() + 1) as f64;
    let excess = own.saturating_sub(average.ceil() as usize);
    if (own as f64) <= average * (1.0 + config.threshold) || excess < config.min_excess.max(1) {
        return 0;
    }
    excess.min(max)
}

/// Whether the cluster's socket total held within 10 % between two heartbeats: only then do
/// the loads heard (each up to a heartbeat old) describe the shares well enough to act on.
pub(crate) fn is_steady(previous: usize, total: usize) -> bool {
    previous.abs_diff(total) * 10 <= previous.max(total)
}

/// Whether the node refuses new sockets: from a steady total on which it is above the
/// threshold, until it is back at the average (the move itself unsettles the total, and a node
/// that stopped refusing at the threshold would take back a share of every reconnect still in
/// flight: it stayed about 11 % above even in the 15,000-socket run).
pub(crate) fn refuses(
    own: usize,
    others: &[usize],
    config: RebalanceConfig,
    steady: bool,
    refusing: bool,
) -> bool {
    if others.is_empty() {
        return false;
    }
    let average = (own + others.iter().sum::<usize>()) as f64 / (others.len() + 1) as f64;
    if refusing {
        own as f64 > average
    } else {
        steady && to_shed(own, others, config, usize::MAX) > 0
    }
}

/// Publishes this node's load every heartbeat and, when enabled, sheds its excess.
/// Announces this node's socket count every `interval` and, when rebalancing is on and the
/// node is not draining, sheds sockets above the cluster average.
pub(crate) async fn run(
    bus: Arc<dyn Bus>,
    loads: Arc<Loads>,
    sessions: Weak<Sessions>,
    config: Arc<RealtimeConfig>,
    draining: impl Fn() -> bool,
) {
    let interval = config.presence_heartbeat;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The cluster's socket total at the previous heartbeat.
    let mut last_total: Option<usize> = None;
    loop {
        tick.tick().await;
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        let own = sessions.len();
        let draining = draining();
        bus.publish_load(NodeLoad {
            node: String::new(),
            connections: own,
            draining,
        });
        let Some(rebalance) = config.rebalance else {
            continue;
        };
        // Not while this node or another drains (a rolling restart: refusing here would leave
        // the drained sockets nowhere to go), nor until a drained node's last word expired.
        if draining || loads.any_draining(config.node_timeout) {
            loads
                .over_target
                .store(false, std::sync::atomic::Ordering::Relaxed);
            last_total = None;
            continue;
        }
        let others = loads.live(config.node_timeout);
        let total = own + others.iter().sum::<usize>();
        // While sockets arrive or leave en masse (a ramp, a drain) the loads heard are a
        // heartbeat old and the shares they suggest are wrong: wait for a steady total.
        let steady = last_total
            .replace(total)
            .is_some_and(|previous| is_steady(previous, total));
        let over = refuses(own, &others, rebalance, steady, loads.over_target());
        loads
            .over_target
            .store(over, std::sync::atomic::Ordering::Relaxed);
        let per_tick = ((rebalance.max_per_second as f64) * interval.as_secs_f64()).ceil() as usize;
        let shed = if over && steady {
            to_shed(own, &others, rebalance, per_tick.max(1))
        } else {
            0
        };
        if shed > 0 {
            tracing::info!(
                own,
                shed,
                "rebalancing: closing sockets above the cluster average"
            );
            let victims = sessions.cheapest_to_move(shed);
            drop(sessions);
            close_spread(victims, interval).await;
        }
    }
}

/// Closes `victims` with 1012 "rebalancing" in small batches at random moments over `over`,
/// so that their reconnects reach the balancer spread out rather than as one burst.
async fn close_spread(victims: Vec<Arc<Outq>>, over: Duration) {
    let close = Close::new(banter_protocol::reasons::close::RESTART, "rebalancing");
    let started = tokio::time::Instant::now();
    for (when, batch) in schedule(victims.len(), over, jitter) {
        tokio::time::sleep_until(started + when).await;
        for outq in &victims[batch.clone()] {
            outq.close(close.clone());
        }
        metrics::counter!(REBALANCED).increment(batch.len() as u64);
    }
}

/// When to close which of `victims` sockets: up to `SPREAD_BATCHES` consecutive batches, each
/// at a moment `jitter` picks within `over`, in time order.
fn schedule(
    victims: usize,
    over: Duration,
    mut jitter: impl FnMut() -> f64,
) -> Vec<(Duration, std::ops::Range<usize>)> {
    if victims == 0 {
        return Vec::new();
    }
    let batches = victims.min(SPREAD_BATCHES);
    let size = victims.div_ceil(batches);
    let mut at: Vec<Duration> = (0..batches).map(|_| over.mul_f64(jitter())).collect();
    at.sort();
    (0..victims)
        .step_by(size)
        .zip(at)
        .map(|(start, when)| (when, start..(start + size).min(victims)))
        .collect()
}

/// A fraction in [0, 1) that differs per call and per process (std's per-instance random hash
/// keys: enough for spreading, not for secrets).
fn jitter() -> f64 {
    use std::hash::BuildHasher;
    let bits = std::collections::hash_map::RandomState::new().hash_one(0u8);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// How many moments a tick's closes are spread over.
const SPREAD_BATCHES: usize = 20;

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: RebalanceConfig = RebalanceConfig {
        threshold: 0.2,
        max_per_second: 10,
        min_excess: 0,
    };

    #[test]
    fn a_node_well_above_the_average_sheds_its_excess_gradually() {
        // 100 here, a new empty pod: average 50, shed 50 but at most 10 per tick.
        assert_eq!(to_shed(100, &[0], CONFIG, 10), 10);
        assert_eq!(to_shed(100, &[0], CONFIG, 100), 50);
        // Three nodes at 90, 60, 30: average 60; 90 > 72, shed 30.
        assert_eq!(to_shed(90, &[60, 30], CONFIG, 100), 30);
    }

    #[test]
    fn within_the_threshold_or_alone_nothing_is_shed() {
        assert_eq!(to_shed(55, &[45], CONFIG, 100), 0, "55 ≤ 50 × 1.2");
        assert_eq!(
            to_shed(1000, &[], CONFIG, 100),
            0,
            "a single node has no one to give to"
        );
        assert_eq!(to_shed(0, &[0], CONFIG, 100), 0);
        let sizable = RebalanceConfig {
            min_excess: 100,
            ..CONFIG
        };
        assert_eq!(
            to_shed(60, &[0], sizable, 1000),
            0,
            "30 above is too few to move"
        );
        assert_eq!(to_shed(300, &[0], sizable, 1000), 150);
    }

    #[test]
    fn a_ticks_closes_are_spread_over_it_in_batches_covering_every_victim() {
        let over = Duration::from_secs(2);
        let plan = schedule(100, over, jitter);
        assert_eq!(plan.len(), SPREAD_BATCHES);
        let covered: Vec<usize> = plan.iter().flat_map(|(_, r)| r.clone()).collect();
        assert_eq!(
            covered,
            (0..100).collect::<Vec<_>>(),
            "each victim once, in order"
        );
        assert!(plan.windows(2).all(|w| w[0].0 <= w[1].0), "in time order");
        assert!(plan.iter().all(|(at, _)| *at < over));
        let distinct: std::collections::HashSet<_> = plan.iter().map(|(at, _)| *at).collect();
        assert!(
            distinct.len() > SPREAD_BATCHES / 2,
            "moments are random, not one burst"
        );
        // Fewer victims than batches: one each; none: nothing.
        assert_eq!(schedule(3, over, || 0.5).len(), 3);
        assert!(schedule(0, over, jitter).is_empty());
    }

    #[test]
    fn a_ramp_or_a_drain_is_not_rebalanced_until_the_total_holds() {
        assert!(is_steady(6000, 6000));
        assert!(is_steady(6000, 5500), "sockets in transit between nodes");
        assert!(!is_steady(1300, 5300), "a ramp");
        assert!(!is_steady(6000, 4400), "a drain, or loads heard mid-move");
        assert!(is_steady(0, 0));
    }

    #[test]
    fn refusing_starts_above_the_threshold_and_lasts_down_to_the_average() {
        // 7,500 here, 7,500 and a new empty node: average 5,000.
        assert!(
            !refuses(7500, &[7500, 0], CONFIG, false, false),
            "not before steady"
        );
        assert!(refuses(7500, &[7500, 0], CONFIG, true, false));
        // 5,500 is within the threshold (6,000) but still above the average: keep refusing.
        assert!(!refuses(5500, &[5000, 4500], CONFIG, true, false));
        assert!(refuses(5500, &[5000, 4500], CONFIG, false, true));
        assert!(
            !refuses(4900, &[5100, 5000], CONFIG, false, true),
            "at its share"
        );
        assert!(!refuses(100, &[], CONFIG, true, true), "alone");
    }

    #[test]
    fn a_draining_node_holds_rebalancing_until_its_last_word_expires() {
        let loads = Loads::default();
        loads.record(NodeLoad {
            node: "a".into(),
            connections: 5,
            draining: false,
        });
        assert!(!loads.any_draining(Duration::from_secs(10)));
        loads.record(NodeLoad {
            node: "b".into(),
            connections: 900,
            draining: true,
        });
        assert!(loads.any_draining(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            !loads.any_draining(Duration::from_millis(10)),
            "it has gone"
        );
    }

    #[test]
    fn silent_nodes_are_forgotten() {
        let loads = Loads::default();
        loads.record(NodeLoad {
            node: "a".into(),
            connections: 5,
            draining: false,
        });
        assert_eq!(loads.live(Duration::from_secs(10)), vec![5]);
        std::thread::sleep(Duration::from_millis(20));
        assert!(loads.live(Duration::from_millis(10)).is_empty());
    }
}
