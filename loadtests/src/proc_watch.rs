//! Memory and CPU of local processes, read from `/proc` once a second: the server under test
//! (`--watch-pid`, when it runs on the same machine) and the generator itself, so a report says
//! whether the generator was the bottleneck.
//!
//! Kept out: anything remote; for a remote server, use its own metrics.

use std::time::Instant;

use anyhow::Context;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ProcSample {
    pub elapsed: f64,
    pub rss_kib: u64,
    /// Share of one core over the last interval (200 = two cores busy).
    pub cpu_percent: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WatchedProcess {
    pub pid: u32,
    pub label: String,
    pub samples: Vec<ProcSample>,
}

pub struct Watcher {
    pub process: WatchedProcess,
    last: Option<(Instant, u64)>,
}

/// CPU ticks (user + system) and resident memory of a process.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub ticks: u64,
    pub rss_kib: u64,
    pub peak_rss_kib: u64,
}

pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

pub fn usage(pid: &str) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("process {pid} is not running"))?;
    // Fields after the parenthesised command name, which may itself contain spaces.
    let after = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("unreadable /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
    let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Ok(Usage {
        ticks: utime + stime,
        rss_kib: kib("VmRSS:"),
        peak_rss_kib: kib("VmHWM:"),
    })
}

impl Watcher {
    pub fn new(pid: u32, label: String) -> anyhow::Result<Watcher> {
        usage(&pid.to_string())?;
        Ok(Watcher {
            process: WatchedProcess {
                pid,
                label,
                samples: Vec::new(),
            },
            last: None,
        })
    }

    /// Takes one sample; a process that has gone away is simply no longer sampled.
    pub fn sample(&mut self, elapsed: f64) {
        let Ok(u) = usage(&self.process.pid.to_string()) else {
            return;
        };
        let now = Instant::now();
        let cpu_percent = match self.last {
            Some((at, ticks)) => {
                let secs = now.duration_since(at).as_secs_f64().max(1e-3);
                (u.ticks.saturating_sub(ticks)) as f64 / ticks_per_second() / secs * 100.0
            }
            None => 0.0,
        };
        self.last = Some((now, u.ticks));
        self.process.samples.push(ProcSample {
            elapsed,
            rss_kib: u.rss_kib,
            cpu_percent,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let u = usage("self").unwrap();
        assert!(u.rss_kib > 0 && u.peak_rss_kib >= u.rss_kib);
        let mut w = Watcher::new(std::process::id(), "me".into()).unwrap();
        w.sample(0.0);
        let spin = Instant::now();
        while spin.elapsed().as_millis() < 50 {
            std::hint::black_box(0);
        }
        w.sample(0.05);
        assert_eq!(w.process.samples.len(), 2);
        assert!(w.process.samples[1].cpu_percent >= 0.0);
        assert!(Watcher::new(u32::MAX, "gone".into()).is_err());
    }
}
