//! One generator's run of a scenario: sign up the posters, ramp the sockets up on schedule,
//! hold the steady phase (posting, an optional reconnect storm), let deliveries drain, stop
//! everyone, settle every viewer's loss against its video's final `seq`, and build the report.
//! Prints a one-line progress report every second. Bounded in time: it always ends.
//!
//! Kept out: what one client does (`client`); the report's format (`report`).

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use rand::{Rng, SeedableRng};
use tokio::{
    sync::watch,
    task::JoinSet,
    time::{Instant, MissedTickBehavior, interval_at, timeout},
};

use crate::{
    accounts,
    client::{self, ClientOutcome, ClientSpec, Control, Poster, Shared},
    proc_watch::{self, Watcher},
    recorder::{Metric, Recorder, unix_micros},
    report::{FORMAT, Generator, Phases, Report, StormResult, Totals},
    scenario::Scenario,
    seq_tracker::SeqCounts,
    sources::{SourcePlan, raise_fd_limit},
    topics::TopicPicker,
};

/// How long clients get to close after the stop before they are abandoned.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Default)]
pub struct RunOptions {
    /// Local processes to sample (pid, label), e.g. the server under test.
    pub watch: Vec<(u32, String)>,
    /// No progress lines on stderr.
    pub quiet: bool,
}

pub async fn run(scenario: Scenario, options: RunOptions) -> anyhow::Result<Report> {
    let url = url::Url::parse(&scenario.url)?;
    let host = url.host_str().context("url has no host")?;
    let port = url.port_or_known_default().context("url has no port")?;
    let target = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("cannot resolve {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let sources = SourcePlan::new(&scenario.source, target, scenario.connections)?;
    raise_fd_limit(scenario.connections)?;
    let mut watchers = options
        .watch
        .iter()
        .map(|(pid, label)| Watcher::new(*pid, label.clone()))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let run_tag = scenario
        .run_id
        .clone()
        .unwrap_or_else(|| format!("{:08x}", rand::rng().random::<u32>()));
    // reqwest is built without a TLS provider of its own (the workspace's choice: ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let api_base = scenario.api_base();
    let posters = scenario.publish.posters;
    if posters > 0 && !options.quiet {
        eprintln!("signing up {posters} posters at {api_base} …");
    }
    let tokens = accounts::register_posters(&http, &api_base, &run_tag, posters).await?;

    let recorder = Arc::new(Recorder::default());
    let start = Instant::now();
    let started_unix = unix_micros() / 1_000_000;
    let ramp = Duration::from_secs_f64(scenario.connections as f64 / scenario.ramp_per_sec);
    let ramp_end = start + ramp;
    let publish_from = ramp_end + Duration::from_secs_f64(scenario.publish.start_delay_secs);
    let publish_until = ramp_end + Duration::from_secs_f64(scenario.duration_secs);
    let storm_at = scenario
        .storm
        .as_ref()
        .map(|s| ramp_end + Duration::from_secs_f64(s.at_secs));
    let stop_at = publish_until + Duration::from_secs_f64(scenario.drain_secs);
    let since = |t: Instant| t.duration_since(start).as_secs_f64();

    let shared = Arc::new(Shared {
        scenario: scenario.clone(),
        recorder: Arc::clone(&recorder),
        target,
        socket_url: format!("{}://{}:{}{}", url.scheme(), host, port, url.path()),
        api_base: api_base.clone(),
        http: http.clone(),
        run_tag,
        publish_from,
        publish_until,
        epoch: (start, unix_micros()),
    });
    let (control_tx, control_rx) = watch::channel(Control::default());

    let picker = TopicPicker::new(&scenario.topics, &scenario.video_prefix);
    let mut rng = rand::rngs::StdRng::from_os_rng();
    let stride = scenario
        .connections
        .checked_div(posters)
        .unwrap_or(usize::MAX);
    let poster_interval = if posters > 0 {
        Duration::from_secs_f64(posters as f64 / scenario.publish.rate_per_sec)
    } else {
        Duration::ZERO
    };
    let mut clients = JoinSet::new();
    let mut tokens = tokens.into_iter();
    for i in 0..scenario.connections {
        let poster_index =
            (posters > 0 && i % stride == 0 && i / stride < posters).then_some(i / stride);
        let poster = poster_index.and_then(|k| {
            Some(Poster {
                token: tokens.next()?,
                interval: poster_interval,
                offset: poster_interval.mul_f64(k as f64 / posters as f64),
            })
        });
        let spec = ClientSpec {
            id: i,
            source: sources.for_client(i),
            start_at: start + Duration::from_secs_f64(i as f64 / scenario.ramp_per_sec),
            video: picker.video(picker.pick_rank(&mut rng)),
            poster,
        };
        clients.spawn(client::run(spec, Arc::clone(&shared), control_rx.clone()));
    }
    drop(control_rx);

    let mut series = Vec::new();
    let mut ticker = interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for w in &mut watchers {
        w.sample(0.0);
    }
    let mut storm_sent = false;
    loop {
        let storm_due = storm_at.filter(|_| !storm_sent);
        tokio::select! {
            _ = ticker.tick() => {
                let elapsed = since(Instant::now());
                let sample = recorder.interval(elapsed);
                if !options.quiet {
                    eprintln!("{}", sample.progress_line());
                }
                series.push(sample);
                for w in &mut watchers {
                    w.sample(elapsed);
                }
                if Instant::now() >= stop_at {
                    break;
                }
            }
            _ = tokio::time::sleep_until(storm_due.unwrap_or(stop_at)), if storm_due.is_some() => {
                storm_sent = true;
                if !options.quiet {
                    eprintln!("storm: every client drops its socket now");
                }
                control_tx.send_modify(|c| c.storm += 1);
            }
        }
    }

    control_tx.send_modify(|c| c.stop = true);
    let mut outcomes: Vec<ClientOutcome> = Vec::with_capacity(scenario.connections);
    let deadline = Instant::now() + STOP_GRACE;
    while let Ok(Some(joined)) = timeout(
        deadline.saturating_duration_since(Instant::now()),
        clients.join_next(),
    )
    .await
    {
        match joined {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => recorder.error(format!("client task failed: {e}")),
        }
    }
    let abandoned = clients.len();
    if abandoned > 0 {
        recorder.error(format!(
            "{abandoned} clients did not stop within {STOP_GRACE:?}"
        ));
        clients.abort_all();
    }
    let final_seqs = final_seqs(&http, &api_base, &outcomes, &recorder).await;
    let mut loss = SeqCounts::default();
    let mut viewers_tracked = 0;
    for o in &outcomes {
        if let Some(t) = &o.tracker {
            loss += t.finish(final_seqs.get(&o.video).copied().unwrap_or(0));
            viewers_tracked += 1;
        }
    }
    let elapsed_end = since(Instant::now());
    let me = proc_watch::usage("self")?;
    build_report(BuildInput {
        scenario,
        recorder: &recorder,
        series,
        loss,
        viewers_tracked,
        watchers,
        phases: Phases {
            ramp_end: since(ramp_end),
            publish_from: since(publish_from),
            publish_until: since(publish_until),
            storm_at: storm_at.map(since),
            end: elapsed_end,
        },
        generator: Generator {
            host: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default(),
            pid: std::process::id(),
            started_unix,
            ended_unix: unix_micros() / 1_000_000,
            connections: shared.scenario.connections,
            source_addresses: sources.addresses().iter().map(|a| a.to_string()).collect(),
            cpu_seconds: me.ticks as f64 / proc_watch::ticks_per_second(),
            peak_rss_kib: me.peak_rss_kib,
        },
    })
}

/// Each tracked video's last `seq` from the REST API, never below what any viewer saw.
async fn final_seqs(
    http: &reqwest::Client,
    api_base: &str,
    outcomes: &[ClientOutcome],
    recorder: &Recorder,
) -> HashMap<String, i64> {
    let mut seen: HashMap<String, i64> = HashMap::new();
    for o in outcomes {
        if let Some(t) = &o.tracker {
            let e = seen.entry(o.video.clone()).or_insert(i64::MIN);
            *e = (*e).max(t.highest());
        }
    }
    let videos: Vec<String> = seen.keys().cloned().collect();
    let fetched: Vec<(String, anyhow::Result<i64>)> = stream::iter(videos)
        .map(|video| async move {
            let url = format!("{api_base}/api/videos/{video}/comments?limit=1");
            let result = async {
                let response = http.get(&url).send().await?;
                if !response.status().is_success() {
                    bail!("{url}: {}", response.status());
                }
                let page: serde_json::Value = response.json().await?;
                page["last_seq"].as_i64().context("no last_seq")
            }
            .await;
            (video, result)
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (video, result) in fetched {
        match result {
            Ok(last) => {
                let e = seen.get_mut(&video).expect("from the same keys");
                *e = (*e).max(last);
            }
            Err(e) => recorder.error(format!(
                "final seq unknown, counting from what viewers saw: {e:#}"
            )),
        }
    }
    seen
}

struct BuildInput<'a> {
    scenario: Scenario,
    recorder: &'a Recorder,
    series: Vec<crate::recorder::Interval>,
    loss: SeqCounts,
    viewers_tracked: u64,
    watchers: Vec<Watcher>,
    phases: Phases,
    generator: Generator,
}

fn build_report(input: BuildInput) -> anyhow::Result<Report> {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &input.recorder.counters;
    let rejoin = input.recorder.total(Metric::Rejoin);
    let storm = input.phases.storm_at.map(|_| StormResult {
        dropped: c.storm_dropped.load(Relaxed),
        rejoined: c.storm_rejoined.load(Relaxed),
        recovered: c.storm_recovered.load(Relaxed),
        all_rejoined_after_ms: if rejoin.count() > 0 {
            rejoin.summary().max_ms
        } else {
            0.0
        },
    });
    let mut report = Report {
        format: FORMAT,
        tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        totals: Totals {
            connections: input.scenario.connections as u64,
            connects: c.connects.load(Relaxed),
            connect_failures: c.connect_failures.load(Relaxed),
            joins: c.joins.load(Relaxed),
            join_errors: c.join_errors.load(Relaxed),
            peak_joined: input.series.iter().map(|i| i.joined).max().unwrap_or(0),
            published: c.published.load(Relaxed),
            acked: c.acked.load(Relaxed),
            post_errors: c.post_errors.load(Relaxed),
            post_unanswered: c.post_unanswered.load(Relaxed),
            post_skipped: c.post_skipped.load(Relaxed),
            deliveries: c.deliveries.load(Relaxed),
            frames_in: c.frames_in.load(Relaxed),
            reconnects: c.reconnects.load(Relaxed),
            disconnects: c.disconnects.load(Relaxed),
        },
        scenario: input.scenario,
        generators: vec![input.generator],
        phases: input.phases,
        loss: input.loss,
        viewers_tracked: input.viewers_tracked,
        storm,
        errors: input.recorder.errors(),
        disconnects: input.recorder.disconnect_reasons(),
        percentiles: Default::default(),
        histograms: input.recorder.totals(),
        series: input.series,
        watched: input.watchers.into_iter().map(|w| w.process).collect(),
    };
    report.refresh_percentiles();
    Ok(report)
}
