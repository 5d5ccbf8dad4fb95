//! The live measurements of one generator process, shared by every client task: latency
//! histograms (run totals and the current one-second interval), counters, and tallies of errors
//! and disconnects by reason. The run loop takes an interval sample every second for the
//! progress line and the report's time series.
//!
//! Kept out: loss accounting per viewer (`seq_tracker`, summed at the end by `run`), the report's
//! file format (`report`).

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering::Relaxed},
    },
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use crate::histogram::Latency;

/// The latencies measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Metric {
    /// Intended start of a connection (by the ramp schedule) to the WebSocket being open.
    Connect,
    /// Join pushed to its `ok` reply.
    Join,
    /// A comment's intended publish time (by the posting schedule) to its arrival at a viewer.
    Delivery,
    /// A comment's intended publish time to the server's `ok` for it.
    Ack,
    /// A storm's drop to the rejoin's `ok` reply.
    Rejoin,
}

pub const METRICS: [Metric; 5] = [
    Metric::Connect,
    Metric::Join,
    Metric::Delivery,
    Metric::Ack,
    Metric::Rejoin,
];

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::Connect => "connect",
            Metric::Join => "join",
            Metric::Delivery => "delivery",
            Metric::Ack => "ack",
            Metric::Rejoin => "rejoin",
        }
    }
}

#[derive(Default)]
struct Hists {
    total: [Latency; 5],
    interval: [Latency; 5],
}

/// Counters; `open` and `joined` are gauges, the rest only grow.
#[derive(Default)]
pub struct Counters {
    pub open: AtomicI64,
    pub joined: AtomicI64,
    pub connects: AtomicU64,
    pub connect_failures: AtomicU64,
    pub joins: AtomicU64,
    pub join_errors: AtomicU64,
    pub published: AtomicU64,
    pub acked: AtomicU64,
    pub post_errors: AtomicU64,
    /// Posts with no answer when the run stopped or their socket ended.
    pub post_unanswered: AtomicU64,
    pub post_skipped: AtomicU64,
    pub deliveries: AtomicU64,
    pub frames_in: AtomicU64,
    pub reconnects: AtomicU64,
    pub disconnects: AtomicU64,
    pub storm_dropped: AtomicU64,
    pub storm_rejoined: AtomicU64,
    pub storm_recovered: AtomicU64,
}

#[derive(Default)]
pub struct Recorder {
    hists: Mutex<Hists>,
    pub counters: Counters,
    errors: Mutex<BTreeMap<String, u64>>,
    disconnects: Mutex<BTreeMap<String, u64>>,
    last: Mutex<Snapshot>,
}

/// Counter values at one instant, for per-second deltas.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    published: u64,
    acked: u64,
    deliveries: u64,
    errors: u64,
    disconnects: u64,
    reconnects: u64,
}

/// One second of a run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Interval {
    /// Unix time (seconds) at the end of the interval; generators merge on it.
    pub unix: u64,
    /// Seconds since this generator started.
    pub elapsed: f64,
    pub open: i64,
    pub joined: i64,
    pub published: u64,
    pub acked: u64,
    pub deliveries: u64,
    pub errors: u64,
    pub disconnects: u64,
    pub reconnects: u64,
    /// This second's latencies, by metric name; absent when nothing was recorded.
    pub latency: BTreeMap<String, Latency>,
}

pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Recorder {
    pub fn record(&self, metric: Metric, us: u64) {
        let mut h = self.hists.lock().expect("recorder lock");
        h.total[metric as usize].record_us(us);
        h.interval[metric as usize].record_us(us);
    }

    /// Records many latencies of one metric under one lock.
    pub fn record_all(&self, metric: Metric, us: impl IntoIterator<Item = u64>) {
        let mut h = self.hists.lock().expect("recorder lock");
        let h = &mut *h;
        for us in us {
            h.total[metric as usize].record_us(us);
            h.interval[metric as usize].record_us(us);
        }
    }

    pub fn error(&self, reason: impl Into<String>) {
        *self
            .errors
            .lock()
            .expect("recorder lock")
            .entry(reason.into())
            .or_default() += 1;
    }

    pub fn disconnect(&self, reason: impl Into<String>) {
        self.counters.disconnects.fetch_add(1, Relaxed);
        *self
            .disconnects
            .lock()
            .expect("recorder lock")
            .entry(reason.into())
            .or_default() += 1;
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().expect("recorder lock").clone()
    }

    pub fn disconnect_reasons(&self) -> BTreeMap<String, u64> {
        self.disconnects.lock().expect("recorder lock").clone()
    }

    pub fn totals(&self) -> BTreeMap<String, Latency> {
        let h = self.hists.lock().expect("recorder lock");
        METRICS
            .iter()
            .map(|m| (m.name().to_owned(), h.total[*m as usize].clone()))
            .collect()
    }

    pub fn total(&self, metric: Metric) -> Latency {
        self.hists.lock().expect("recorder lock").total[metric as usize].clone()
    }

    /// Closes the current interval and starts the next.
    pub fn interval(&self, elapsed: f64) -> Interval {
        let taken: Vec<(Metric, Latency)> = {
            let mut h = self.hists.lock().expect("recorder lock");
            METRICS
                .iter()
                .map(|m| (*m, std::mem::take(&mut h.interval[*m as usize])))
                .collect()
        };
        let c = &self.counters;
        let errors_now: u64 = self.errors.lock().expect("recorder lock").values().sum();
        let now = Snapshot {
            published: c.published.load(Relaxed),
            acked: c.acked.load(Relaxed),
            deliveries: c.deliveries.load(Relaxed),
            errors: errors_now,
            disconnects: c.disconnects.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
        };
        let before = std::mem::replace(&mut *self.last.lock().expect("recorder lock"), now);
        Interval {
            unix: unix_micros() / 1_000_000,
            elapsed,
            open: c.open.load(Relaxed),
            joined: c.joined.load(Relaxed),
            published: now.published - before.published,
            acked: now.acked - before.acked,
            deliveries: now.deliveries - before.deliveries,
            errors: now.errors - before.errors,
            disconnects: now.disconnects - before.disconnects,
            reconnects: now.reconnects - before.reconnects,
            latency: taken
                .into_iter()
                .filter(|(_, h)| h.count() > 0)
                .map(|(m, h)| (m.name().to_owned(), h))
                .collect(),
        }
    }
}

impl Interval {
    /// The one-line progress report.
    pub fn progress_line(&self) -> String {
        let mut line = format!(
            "[{:>5.0}s] open {:>6} joined {:>6} | pub {:>5}/s ack {:>5}/s | deliv {:>8}/s",
            self.elapsed, self.open, self.joined, self.published, self.acked, self.deliveries
        );
        if let Some(d) = self.latency.get("delivery") {
            line += &format!(
                " p50 {:.1}ms p99 {:.1}ms p999 {:.1}ms",
                d.ms_at(0.5),
                d.ms_at(0.99),
                d.ms_at(0.999)
            );
        }
        for name in ["connect", "rejoin"] {
            if let Some(h) = self.latency.get(name) {
                line += &format!(" | {name} {} p99 {:.0}ms", h.count(), h.ms_at(0.99));
            }
        }
        line += &format!(
            " | err {} disc {} reconn {}",
            self.errors, self.disconnects, self.reconnects
        );
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_hold_only_their_own_second() {
        let r = Recorder::default();
        r.record(Metric::Delivery, 1000);
        r.counters.deliveries.fetch_add(1, Relaxed);
        r.error("rate_limited");
        let first = r.interval(1.0);
        assert_eq!((first.deliveries, first.errors), (1, 1));
        assert_eq!(first.latency["delivery"].count(), 1);
        r.record(Metric::Delivery, 3000);
        r.counters.deliveries.fetch_add(2, Relaxed);
        let second = r.interval(2.0);
        assert_eq!((second.deliveries, second.errors), (2, 0));
        assert_eq!(second.latency["delivery"].count(), 1);
        assert!(!second.latency.contains_key("connect"));
        assert_eq!(r.total(Metric::Delivery).count(), 2);
        assert!(second.progress_line().contains("deliv        2/s"));
    }

    #[test]
    fn a_batch_is_recorded_in_the_total_and_the_interval() {
        let r = Recorder::default();
        r.record_all(Metric::Delivery, [1_000, 2_000, 30_000]);
        r.record(Metric::Ack, 500);
        let interval = r.interval(1.0);
        assert_eq!(interval.latency["delivery"].count(), 3);
        assert_eq!(r.total(Metric::Delivery).count(), 3);
        assert_eq!(r.total(Metric::Ack).count(), 1);
    }
}
