//! The report of a run: JSON with full histograms (so reports merge exactly), a readable
//! summary, and the merge of several generators' reports of one scenario into one.
//!
//! Kept out: taking the measurements (`recorder`, `run`), drawing them (`chart`).

use std::{collections::BTreeMap, fmt::Write as _};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::{
    histogram::{Latency, Summary},
    proc_watch::WatchedProcess,
    recorder::Interval,
    scenario::Scenario,
    seq_tracker::SeqCounts,
};

pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub format: u32,
    pub tool_version: String,
    pub scenario: Scenario,
    pub generators: Vec<Generator>,
    /// Seconds since the (earliest) generator started.
    pub phases: Phases,
    pub totals: Totals,
    /// Comments each viewer should have had, and what became of them.
    pub loss: SeqCounts,
    /// Viewers whose topic was tracked (those that joined at least once).
    pub viewers_tracked: u64,
    pub storm: Option<StormResult>,
    pub errors: BTreeMap<String, u64>,
    pub disconnects: BTreeMap<String, u64>,
    /// Derived from `histograms`, for people; merging recomputes it.
    pub percentiles: BTreeMap<String, Summary>,
    pub histograms: BTreeMap<String, Latency>,
    pub series: Vec<Interval>,
    pub watched: Vec<WatchedProcess>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Generator {
    pub host: String,
    pub pid: u32,
    pub started_unix: u64,
    pub ended_unix: u64,
    pub connections: usize,
    pub source_addresses: Vec<String>,
    pub cpu_seconds: f64,
    pub peak_rss_kib: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Phases {
    pub ramp_end: f64,
    pub publish_from: f64,
    pub publish_until: f64,
    pub storm_at: Option<f64>,
    pub end: f64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct Totals {
    pub connections: u64,
    pub connects: u64,
    pub connect_failures: u64,
    pub joins: u64,
    pub join_errors: u64,
    pub peak_joined: i64,
    pub published: u64,
    pub acked: u64,
    /// Posts the server refused (an error reply or HTTP error).
    pub post_errors: u64,
    /// Posts with no answer when the run stopped or their socket ended (a backlog, or lost
    /// with the connection). Absent from reports of earlier versions, which counted them as
    /// refused.
    #[serde(default)]
    pub post_unanswered: u64,
    pub post_skipped: u64,
    pub deliveries: u64,
    pub frames_in: u64,
    pub reconnects: u64,
    pub disconnects: u64,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct StormResult {
    pub dropped: u64,
    pub rejoined: u64,
    /// Rejoins the server answered with `recovered: true`.
    pub recovered: u64,
    /// From the drop to the last client's rejoin.
    pub all_rejoined_after_ms: f64,
}

/// What a run says about the server, on the summary's last line and in the exit status (with
/// `--fail-on-loss` / `--fail-on-overload`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Everything owed was delivered once, in order, and every post was answered.
    Clean,
    /// Nothing lost, but the server fell behind: comments still undelivered at the end, or
    /// posts unanswered.
    Overloaded,
    /// Comments lost, duplicated or out of order.
    Lossy,
}

impl Report {
    pub fn verdict(&self) -> Verdict {
        let l = &self.loss;
        if l.lost > 0 || l.duplicates > 0 || l.out_of_order > 0 {
            Verdict::Lossy
        } else if l.late > 0 || self.totals.post_unanswered > 0 {
            Verdict::Overloaded
        } else {
            Verdict::Clean
        }
    }

    fn verdict_line(&self) -> String {
        let l = &self.loss;
        match self.verdict() {
            Verdict::Clean => {
                "verdict: clean (everything delivered once, in order; every post answered)"
                    .to_owned()
            }
            Verdict::Overloaded => format!(
                "verdict: overloaded ({} comments still undelivered at the end, {} posts unanswered; none lost)",
                l.late, self.totals.post_unanswered
            ),
            Verdict::Lossy => format!(
                "verdict: lossy ({} lost, {} duplicated, {} out of order)",
                l.lost, l.duplicates, l.out_of_order
            ),
        }
    }

    pub fn refresh_percentiles(&mut self) {
        self.percentiles = self
            .histograms
            .iter()
            .filter(|(_, h)| h.count() > 0)
            .map(|(k, h)| (k.clone(), h.summary()))
            .collect();
    }

    pub fn from_json(text: &str) -> anyhow::Result<Report> {
        let report: Report = serde_json::from_str(text).context("not a banter-load report")?;
        if report.format != FORMAT {
            bail!("report format {} is not {FORMAT}", report.format);
        }
        Ok(report)
    }

    /// Median deliveries per second over the seconds in which comments arrived.
    pub fn deliveries_per_sec_median(&self) -> f64 {
        median(
            self.series
                .iter()
                .filter(|i| i.deliveries > 0)
                .map(|i| i.deliveries as f64),
        )
    }

    /// Acknowledged comments per second over the publishing window.
    pub fn acked_per_sec(&self) -> f64 {
        let window = self.phases.publish_until - self.phases.publish_from;
        if window > 0.0 {
            self.totals.acked as f64 / window
        } else {
            0.0
        }
    }

    /// The readable summary printed at the end of a run or a merge.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let t = &self.totals;
        let _ = writeln!(
            s,
            "banter-load: {} — {} generator(s), {:.0} s, target {}",
            self.scenario.name,
            self.generators.len(),
            self.phases.end,
            self.scenario.url
        );
        let _ = writeln!(
            s,
            "connections: {} planned, {} opened ({} failed attempts), {} joins ({} refused), peak joined {}",
            t.connections, t.connects, t.connect_failures, t.joins, t.join_errors, t.peak_joined
        );
        if t.published > 0 {
            let _ = writeln!(
                s,
                "comments: {} sent, {} acknowledged ({:.1}/s), {} refused, {} unanswered (no reply when the run stopped or the socket ended), {} skipped while disconnected",
                t.published,
                t.acked,
                self.acked_per_sec(),
                t.post_errors,
                t.post_unanswered,
                t.post_skipped
            );
        }
        let l = &self.loss;
        let _ = writeln!(
            s,
            "deliveries: {} ({:.0}/s median over active seconds); of {} expected: {} live, {} recovered on rejoin, {} skipped by the server's delivery budget, {} lost, {} still undelivered at the end, {} out of order, {} duplicates",
            t.deliveries,
            self.deliveries_per_sec_median(),
            l.expected,
            l.delivered,
            l.recovered,
            l.skipped,
            l.lost,
            l.late,
            l.out_of_order,
            l.duplicates
        );
        let _ = writeln!(
            s,
            "{:<10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "latency", "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
        );
        for (name, p) in &self.percentiles {
            let _ = writeln!(
                s,
                "{:<10} {:>10} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                name, p.count, p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms
            );
        }
        if let Some(storm) = &self.storm {
            let _ = writeln!(
                s,
                "storm: {} dropped, {} rejoined ({} recovered) — all rejoined {:.0} ms after the drop",
                storm.dropped, storm.rejoined, storm.recovered, storm.all_rejoined_after_ms
            );
        }
        let _ = writeln!(
            s,
            "reconnects: {}, disconnects: {}",
            t.reconnects, t.disconnects
        );
        for (title, map) in [("errors", &self.errors), ("disconnects", &self.disconnects)] {
            for (reason, n) in map {
                let _ = writeln!(s, "  {title}: {n} × {reason}");
            }
        }
        for w in &self.watched {
            let _ = writeln!(s, "{}", self.watched_line(w));
            if let Some(line) = self.storm_cpu_line(w) {
                let _ = writeln!(s, "{line}");
            }
        }
        for g in &self.generators {
            let secs = (g.ended_unix.saturating_sub(g.started_unix)).max(1) as f64;
            let _ = writeln!(
                s,
                "generator {} pid {}: {} connections, cpu {:.1} s ({:.0}% of a core), peak rss {} MiB",
                g.host,
                g.pid,
                g.connections,
                g.cpu_seconds,
                g.cpu_seconds / secs * 100.0,
                g.peak_rss_kib / 1024
            );
        }
        let _ = writeln!(s, "{}", self.verdict_line());
        s
    }

    /// What the storm cost a watched process: its CPU over the seconds from the drop to the
    /// last rejoin, less what it spent in as many seconds of the steady phase before the drop,
    /// per rejoin. A cost that does not depend on how long the storm took, which on a shared
    /// machine depends on what else runs (the generators, for one).
    pub fn storm_cpu_line(&self, w: &WatchedProcess) -> Option<String> {
        let (storm, at) = (self.storm.as_ref()?, self.phases.storm_at?);
        let until = at + storm.all_rejoined_after_ms / 1000.0;
        // Each sample covers the second before it: take those that overlap the storm.
        let during: Vec<_> = w
            .samples
            .iter()
            .filter(|x| x.elapsed > at && x.elapsed - 1.0 < until)
            .collect();
        let before = median(
            w.samples
                .iter()
                .filter(|x| x.elapsed <= at && x.elapsed > self.phases.ramp_end + 2.0)
                .map(|x| x.cpu_percent),
        );
        if during.is_empty() || storm.rejoined == 0 {
            return None;
        }
        let cpu: f64 = during.iter().map(|x| x.cpu_percent / 100.0).sum();
        let above = (cpu - before / 100.0 * during.len() as f64).max(0.0);
        Some(format!(
            "{} over the storm: cpu {:.2} s in the {} s it touched ({:.2} s above its steady {:.0}% of a core), {:.0} µs per rejoin",
            w.label,
            cpu,
            during.len(),
            above,
            before,
            above / storm.rejoined as f64 * 1e6
        ))
    }

    /// Memory per joined connection and CPU, before the ramp and in the steady phase.
    pub fn watched_line(&self, w: &WatchedProcess) -> String {
        let Some(first) = w.samples.first() else {
            return format!("{} (pid {}): no samples", w.label, w.pid);
        };
        let steady: Vec<_> = w
            .samples
            .iter()
            .filter(|x| {
                x.elapsed >= self.phases.ramp_end + 2.0
                    && x.elapsed <= self.phases.end - self.scenario.drain_secs
            })
            .collect();
        let peak = w.samples.iter().map(|x| x.rss_kib).max().unwrap_or(0);
        let steady_rss = median(steady.iter().map(|x| x.rss_kib as f64));
        let cpu = median(steady.iter().map(|x| x.cpu_percent));
        let joined = self.totals.peak_joined.max(0) as f64;
        let (growth, whole) = if joined > 0.0 && steady_rss > 0.0 {
            (
                (steady_rss - first.rss_kib as f64) / joined,
                steady_rss / joined,
            )
        } else {
            (0.0, 0.0)
        };
        // Two figures, because the first depends on the process's history: a server that held
        // sockets before keeps memory it can reuse, so its growth per socket reads low.
        format!(
            "{} (pid {}): rss {} MiB before the ramp, {:.0} MiB steady (median), {} MiB peak; per joined connection: {:.1} KiB of growth this run (steady − before the ramp), {:.1} KiB of the whole process (steady ÷ joined); cpu {:.1}% of a core (steady median)",
            w.label,
            w.pid,
            first.rss_kib / 1024,
            steady_rss / 1024.0,
            peak / 1024,
            growth,
            whole,
            cpu
        )
    }
}

/// Moves a generator's process samples onto the merged report's clock.
fn shift_watched(watched: &mut [WatchedProcess], offset: f64) {
    for sample in watched.iter_mut().flat_map(|w| w.samples.iter_mut()) {
        sample.elapsed += offset;
    }
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Merges the reports of several generators that ran one scenario at the same time:
/// counts add, histograms merge exactly, seconds line up by Unix time.
pub fn merge(reports: Vec<Report>) -> anyhow::Result<Report> {
    let started = |r: &Report| {
        r.generators
            .iter()
            .map(|g| g.started_unix)
            .min()
            .unwrap_or(0)
    };
    // Times in the merged report count from the earliest generator's start.
    let base = reports
        .iter()
        .map(started)
        .min()
        .context("nothing to merge")?;
    let mut iter = reports.into_iter();
    let mut out = iter.next().expect("not empty");
    let offset = (started(&out) - base) as f64;
    let p = &mut out.phases;
    for t in [
        &mut p.ramp_end,
        &mut p.publish_from,
        &mut p.publish_until,
        &mut p.end,
    ] {
        *t += offset;
    }
    p.storm_at = p.storm_at.map(|t| t + offset);
    shift_watched(&mut out.watched, offset);
    let mut series: BTreeMap<u64, Interval> = BTreeMap::new();
    let mut add_series = |r: &Report| {
        for i in &r.series {
            let slot = series.entry(i.unix).or_default();
            slot.unix = i.unix;
            slot.open += i.open;
            slot.joined += i.joined;
            slot.published += i.published;
            slot.acked += i.acked;
            slot.deliveries += i.deliveries;
            slot.errors += i.errors;
            slot.disconnects += i.disconnects;
            slot.reconnects += i.reconnects;
            for (k, h) in &i.latency {
                slot.latency.entry(k.clone()).or_default().add(h);
            }
        }
    };
    add_series(&out);
    for r in iter {
        if r.scenario.name != out.scenario.name {
            bail!(
                "reports are of different scenarios: {} and {}",
                out.scenario.name,
                r.scenario.name
            );
        }
        let shift = (started(&r) - base) as f64;
        add_series(&r);
        out.scenario.connections += r.scenario.connections;
        out.generators.extend(r.generators);
        let (a, b) = (&mut out.totals, &r.totals);
        a.connections += b.connections;
        a.connects += b.connects;
        a.connect_failures += b.connect_failures;
        a.joins += b.joins;
        a.join_errors += b.join_errors;
        a.published += b.published;
        a.acked += b.acked;
        a.post_errors += b.post_errors;
        a.post_unanswered += b.post_unanswered;
        a.post_skipped += b.post_skipped;
        a.deliveries += b.deliveries;
        a.frames_in += b.frames_in;
        a.reconnects += b.reconnects;
        a.disconnects += b.disconnects;
        out.loss += r.loss;
        out.viewers_tracked += r.viewers_tracked;
        out.storm = match (out.storm, r.storm) {
            (Some(x), Some(y)) => Some(StormResult {
                dropped: x.dropped + y.dropped,
                rejoined: x.rejoined + y.rejoined,
                recovered: x.recovered + y.recovered,
                all_rejoined_after_ms: 0.0,
            }),
            (x, y) => x.or(y),
        };
        for (k, n) in r.errors {
            *out.errors.entry(k).or_default() += n;
        }
        for (k, n) in r.disconnects {
            *out.disconnects.entry(k).or_default() += n;
        }
        for (k, h) in &r.histograms {
            out.histograms.entry(k.clone()).or_default().add(h);
        }
        // Phases stay the first generator's; widen the end to cover everyone.
        out.phases.end = out.phases.end.max(r.phases.end + shift);
        let mut watched = r.watched;
        shift_watched(&mut watched, shift);
        out.watched.extend(watched);
    }
    out.series = series
        .into_values()
        .map(|mut i| {
            i.elapsed = i.unix.saturating_sub(base) as f64;
            i
        })
        .collect();
    out.totals.peak_joined = out.series.iter().map(|i| i.joined).max().unwrap_or(0);
    if let (Some(storm), Some(rejoin)) = (&mut out.storm, out.histograms.get("rejoin")) {
        storm.all_rejoined_after_ms = rejoin.summary().max_ms;
    }
    out.refresh_percentiles();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc_watch::ProcSample;

    fn report(gen_pid: u32, start: u64, deliveries: &[u64], latencies: &[u64]) -> Report {
        let scenario = Scenario::parse(
            "name='m'\nurl='ws://127.0.0.1:1/socket/websocket'\nconnections=10\nduration_secs=5",
            &[],
        )
        .unwrap();
        let mut hist = Latency::default();
        for &l in latencies {
            hist.record_us(l);
        }
        let series = deliveries
            .iter()
            .enumerate()
            .map(|(i, &d)| Interval {
                unix: start + i as u64 + 1,
                deliveries: d,
                joined: 10,
                latency: [("delivery".to_owned(), hist.clone())].into(),
                ..Interval::default()
            })
            .collect();
        let mut r = Report {
            format: FORMAT,
            tool_version: "test".into(),
            scenario,
            generators: vec![Generator {
                host: "h".into(),
                pid: gen_pid,
                started_unix: start,
                ended_unix: start + 5,
                connections: 10,
                source_addresses: vec![],
                cpu_seconds: 1.0,
                peak_rss_kib: 1024,
            }],
            phases: Phases::default(),
            totals: Totals {
                connections: 10,
                deliveries: deliveries.iter().sum(),
                ..Totals::default()
            },
            loss: SeqCounts {
                delivered: deliveries.iter().sum(),
                expected: deliveries.iter().sum::<u64>() + 1,
                lost: 1,
                ..SeqCounts::default()
            },
            viewers_tracked: 10,
            storm: None,
            errors: [("x".to_owned(), 2)].into(),
            disconnects: BTreeMap::new(),
            percentiles: BTreeMap::new(),
            histograms: [("delivery".to_owned(), hist)].into(),
            series,
            watched: vec![],
        };
        r.refresh_percentiles();
        r
    }

    #[test]
    fn the_verdict_tells_a_lossy_an_overloaded_and_a_clean_run_apart() {
        let mut r = report(1, 1000, &[5, 6], &[100]);
        assert_eq!(r.verdict(), Verdict::Lossy);
        assert!(r.summary().contains("verdict: lossy (1 lost"));
        r.loss.lost = 0;
        r.loss.late = 3;
        assert_eq!(r.verdict(), Verdict::Overloaded);
        r.loss.late = 0;
        r.totals.published = 2;
        r.totals.post_unanswered = 2;
        assert_eq!(r.verdict(), Verdict::Overloaded);
        let summary = r.summary();
        assert!(summary.contains("0 refused, 2 unanswered"), "{summary}");
        assert!(
            summary.contains(
                "verdict: overloaded (0 comments still undelivered at the end, 2 posts unanswered"
            ),
            "{summary}"
        );
        r.totals.post_unanswered = 0;
        assert_eq!(r.verdict(), Verdict::Clean);
    }

    #[test]
    fn merge_sums_counts_and_merges_histograms_exactly() {
        let a = report(1, 1000, &[5, 6], &[100, 200, 300]);
        let b = report(2, 1001, &[7, 8], &[400, 5000]);
        let roundtrip = |r: &Report| Report::from_json(&serde_json::to_string(r).unwrap()).unwrap();
        let m = merge(vec![roundtrip(&a), roundtrip(&b)]).unwrap();
        assert_eq!(m.totals.deliveries, 26);
        assert_eq!(m.totals.connections, 20);
        assert_eq!((m.loss.lost, m.loss.expected), (2, 28));
        assert_eq!(m.errors["x"], 4);
        assert_eq!(m.generators.len(), 2);
        let mut expect = Latency::default();
        for l in [100, 200, 300, 400, 5000] {
            expect.record_us(l);
        }
        assert_eq!(m.histograms["delivery"].0, expect.0);
        assert_eq!(m.percentiles["delivery"], expect.summary());
        // Seconds 1001 and 1002 overlap: their counts add and their histograms merge.
        let units: Vec<(u64, u64)> = m.series.iter().map(|i| (i.unix, i.deliveries)).collect();
        assert_eq!(units, [(1001, 5), (1002, 13), (1003, 8)]);
        assert_eq!(m.series[1].latency["delivery"].count(), 5);
        assert_eq!(m.series[1].joined, 20);
        assert_eq!(m.totals.peak_joined, 20);
        assert!(m.summary().contains("2 generator(s)"));
    }

    #[test]
    fn merge_refuses_mixed_scenarios_and_foreign_files() {
        let a = report(1, 1000, &[1], &[1]);
        let mut b = report(2, 1000, &[1], &[1]);
        b.scenario.name = "other".into();
        assert!(merge(vec![a, b]).is_err());
        assert!(Report::from_json("{\"format\": 1}").is_err());
        assert!(merge(vec![]).is_err());
    }

    fn watched(label: &str, cpu_by_second: &[f64]) -> WatchedProcess {
        WatchedProcess {
            pid: 9,
            label: label.into(),
            samples: cpu_by_second
                .iter()
                .enumerate()
                .map(|(i, &cpu)| ProcSample {
                    elapsed: (i + 1) as f64,
                    rss_kib: 1024,
                    cpu_percent: cpu,
                })
                .collect(),
        }
    }

    #[test]
    fn a_storm_costs_the_cpu_above_the_steady_load_per_rejoin() {
        let mut r = report(1, 1000, &[1], &[1]);
        r.phases.ramp_end = 1.0;
        r.phases.storm_at = Some(6.5);
        r.storm = Some(StormResult {
            dropped: 1000,
            rejoined: 1000,
            recovered: 1000,
            all_rejoined_after_ms: 1200.0,
        });
        // Steady at 40 % before the drop; the storm (6.5 s to 7.7 s) touches seconds 7 and 8.
        let w = watched(
            "banter",
            &[90.0, 40.0, 40.0, 40.0, 40.0, 40.0, 140.0, 120.0, 40.0],
        );
        let line = r.storm_cpu_line(&w).expect("a storm line");
        assert!(
            line.contains("cpu 2.60 s in the 2 s it touched (1.80 s above its steady 40% of a core), 1800 µs per rejoin"),
            "{line}"
        );
        r.watched = vec![w.clone()];
        assert!(r.summary().contains("banter over the storm: cpu 2.60 s"));
        r.storm = None;
        assert!(r.storm_cpu_line(&w).is_none());
    }

    #[test]
    fn merge_puts_every_generators_process_samples_on_one_clock() {
        let mut a = report(1, 1000, &[1], &[1]);
        let mut b = report(2, 1002, &[1], &[1]);
        a.watched = vec![watched("first", &[10.0])];
        b.watched = vec![watched("second", &[20.0])];
        let m = merge(vec![b, a]).unwrap();
        let at =
            |label: &str| m.watched.iter().find(|w| w.label == label).unwrap().samples[0].elapsed;
        // Counted from the earliest generator's start (1000): b's first second is 3.0.
        assert_eq!((at("first"), at("second")), (1.0, 3.0));
    }
}
