//! A report's run cut into time windows (before, during and after an event such as a rolling
//! restart): each window's deliveries, reconnects, and delivery and acknowledgement latency
//! percentiles, from the per-second intervals' histograms merged exactly.
//!
//! Kept out: running anything (`run.rs`), the whole-run summary (`report.rs`).

use std::fmt::Write;

use crate::histogram::Latency;
use crate::recorder::Interval;

/// One window of a run: `(from, to]` in Unix seconds.
#[derive(Clone, Debug)]
pub struct Window {
    pub name: String,
    pub from: u64,
    pub to: u64,
    pub deliveries: u64,
    pub acked: u64,
    pub reconnects: u64,
    pub disconnects: u64,
    pub delivery: Latency,
    /// Acknowledgements of the posts answered in the window.
    pub ack: Latency,
}

/// Cuts the run at `cuts` (name, Unix second at which that window starts, ascending); the
/// first window, `before`, starts with the run, and each lasts until the next cut.
pub fn windows(series: &[Interval], cuts: &[(String, u64)]) -> Vec<Window> {
    let start = series.first().map_or(0, |i| i.unix.saturating_sub(1));
    let mut bounds = vec![("before".to_owned(), start)];
    bounds.extend(cuts.iter().cloned());
    let mut out = Vec::new();
    for (k, (name, from)) in bounds.iter().enumerate() {
        let to = bounds.get(k + 1).map_or(u64::MAX, |(_, t)| *t);
        let mut w = Window {
            name: name.clone(),
            from: *from,
            to,
            deliveries: 0,
            acked: 0,
            reconnects: 0,
            disconnects: 0,
            delivery: Latency::default(),
            ack: Latency::default(),
        };
        // An interval's `unix` is the end of its second: it belongs to the window it ended in.
        for i in series.iter().filter(|i| i.unix > *from && i.unix <= to) {
            w.deliveries += i.deliveries;
            w.acked += i.acked;
            w.reconnects += i.reconnects;
            w.disconnects += i.disconnects;
            if let Some(l) = i.latency.get("delivery") {
                w.delivery.add(l);
            }
            if let Some(l) = i.latency.get("ack") {
                w.ack.add(l);
            }
        }
        out.push(w);
    }
    out
}

/// The windows as a table (the acknowledgement columns last, so that readers of the earlier
/// columns keep working).
pub fn table(windows: &[Window]) -> String {
    let mut s = String::from(
        "window     deliveries  acked  reconnects  disconnects  delivery p50 ms  p99 ms  p99.9 ms  \
         ack p50 ms  ack p99 ms\n",
    );
    for w in windows {
        let d = w.delivery.summary();
        let a = w.ack.summary();
        let _ = writeln!(
            s,
            "{:<10} {:>10}  {:>5}  {:>10}  {:>11}  {:>15.1}  {:>6.1}  {:>8.1}  {:>10.1}  {:>10.1}",
            w.name,
            w.deliveries,
            w.acked,
            w.reconnects,
            w.disconnects,
            d.p50_ms,
            d.p99_ms,
            d.p999_ms,
            a.p50_ms,
            a.p99_ms
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(unix: u64, delivery_ms: &[u64], reconnects: u64) -> Interval {
        let mut latency = Latency::default();
        for ms in delivery_ms {
            latency.record_us(ms * 1000);
        }
        // Each post acknowledged in a tenth of its deliveries' time.
        let mut ack = Latency::default();
        for ms in delivery_ms {
            ack.record_us(ms * 100);
        }
        let mut i = Interval {
            unix,
            deliveries: delivery_ms.len() as u64,
            reconnects,
            ..Interval::default()
        };
        i.latency.insert("delivery".into(), latency);
        i.latency.insert("ack".into(), ack);
        i
    }

    #[test]
    fn windows_split_the_seconds_and_merge_their_histograms() {
        let series = vec![
            interval(101, &[10, 10], 0),
            interval(102, &[10], 0),
            interval(103, &[500, 500, 500], 7),
            interval(104, &[20], 1),
        ];
        let w = windows(&series, &[("during".into(), 102), ("after".into(), 103)]);
        assert_eq!(w.len(), 3);
        assert_eq!(
            (w[0].deliveries, w[1].deliveries, w[2].deliveries),
            (3, 3, 1)
        );
        assert_eq!((w[1].reconnects, w[2].reconnects), (7, 1));
        assert!((w[0].delivery.summary().p99_ms - 10.0).abs() < 0.1);
        assert!((w[1].delivery.summary().p50_ms - 500.0).abs() < 1.0);
        assert!((w[1].ack.summary().p99_ms - 50.0).abs() < 0.1);
        assert!((w[2].ack.summary().p99_ms - 2.0).abs() < 0.1);
        let table = table(&w);
        assert!(table.contains("during"));
        assert!(
            table.lines().next().unwrap().ends_with("ack p99 ms"),
            "{table}"
        );
    }
}
