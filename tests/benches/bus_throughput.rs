//! Bus throughput: one Redis against a Redis Cluster of three shards (three masters with a
//! replica each), measured in the same run on loopback servers the harness starts. One
//! publishing node (`RedisBus`) sends comment events round-robin over `BUS_VIDEOS` videos at
//! each offered rate of `BUS_RATES` for `BUS_SECONDS`; one receiving node subscribed to every
//! video counts what arrives and the publish-to-receipt latency (the send time travels in the
//! body). A transport is saturated where it delivers less than is offered or its p99 climbs;
//! "lost connections" counts the receiver's reconnects (what was published meanwhile is missed).
//!
//! `cargo bench -p banter-tests --bench bus_throughput`
//! (BUS_RATES=20000,40000,80000,160000 BUS_SECONDS=3 BUS_VIDEOS=300 by default)

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use banter_bus::{Bus, BusEvent, ChangeKind, RedisBus};
use banter_core::{Comment, CommentId, UserId, VideoId};
use banter_tests::{RedisCluster, RedisServer};

fn micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn event(video: &VideoId, seq: i64) -> BusEvent {
    let now = time::OffsetDateTime::now_utc();
    BusEvent {
        kind: ChangeKind::Created,
        comment: Comment {
            id: CommentId::generate(),
            video_id: video.clone(),
            seq,
            user_id: UserId::generate(),
            username: "bench".to_owned(),
            body: Some(format!("t={}", micros())),
            created_at: now,
            updated_at: now,
            deleted_at: None,
            author_role: None,
        },
        trace: None,
    }
}

/// Received send times' latencies (µs).
type Latencies = Arc<Mutex<Vec<u64>>>;

async fn measure(name: &str, publisher: RedisBus, receiver: RedisBus, rates: &[u64]) {
    let seconds: u64 = setting("BUS_SECONDS", "3").parse().unwrap();
    let videos: Vec<VideoId> = (0..setting("BUS_VIDEOS", "300").parse::<usize>().unwrap())
        .map(|i| VideoId::parse(&format!("bench{i}")).unwrap())
        .collect();
    let latencies: Latencies = Arc::default();
    let sink = latencies.clone();
    receiver.set_handler(Arc::new(move |event: BusEvent| {
        let sent = event
            .comment
            .body
            .as_deref()
            .and_then(|b| b.strip_prefix("t="))
            .and_then(|t| t.parse::<u64>().ok());
        if let Some(sent) = sent {
            sink.lock().unwrap().push(micros().saturating_sub(sent));
        }
    }));
    // Each call: the receiver's connection was lost and renewed (messages meanwhile missed).
    let renewals = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = renewals.clone();
    receiver.set_reconnect_handler(Arc::new(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }));
    for video in &videos {
        receiver.subscribe(video.as_ref());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    for &rate in rates {
        latencies.lock().unwrap().clear();
        renewals.store(0, std::sync::atomic::Ordering::Relaxed);
        let per_tick = (rate / 1000).max(1);
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        let mut sent = 0u64;
        while started.elapsed() < Duration::from_secs(seconds) {
            tick.tick().await;
            // Catch up on ticks the timer could not keep, so the offered rate holds.
            let due = (started.elapsed().as_micros() as u64 * rate / 1_000_000).max(sent);
            for _ in 0..(due - sent).min(per_tick * 20) {
                let video = &videos[(sent as usize) % videos.len()];
                publisher.publish(event(video, sent as i64));
                sent += 1;
            }
        }
        let offered_for = started.elapsed();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut got = std::mem::take(&mut *latencies.lock().unwrap());
        got.sort_unstable();
        println!(
            "{name:<10} offered {rate:>7}/s  sent {:>8.0}/s  delivered {:>8.0}/s ({:>5.1} %)  latency p50 {:>8.2} ms  p99 {:>8.2} ms  lost connections {}",
            sent as f64 / offered_for.as_secs_f64(),
            got.len() as f64 / offered_for.as_secs_f64(),
            got.len() as f64 * 100.0 / sent.max(1) as f64,
            percentile(&got, 0.5),
            percentile(&got, 0.99),
            renewals.load(std::sync::atomic::Ordering::Relaxed),
        );
    }
}

fn main() {
    let rates: Vec<u64> = setting("BUS_RATES", "20000,40000,80000,160000")
        .split(',')
        .map(|r| r.trim().parse().expect("BUS_RATES: numbers"))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let single = RedisServer::start();
    let cluster = RedisCluster::start();
    let seeds: Vec<String> = cluster.urls().split(',').map(str::to_owned).collect();
    runtime.block_on(async {
        let publisher = RedisBus::connect(&single.url(), "bench").await.unwrap();
        let receiver = RedisBus::connect(&single.url(), "bench").await.unwrap();
        measure("one Redis", publisher, receiver, &rates).await;
        let publisher = RedisBus::connect_cluster(&seeds, "bench").await.unwrap();
        let receiver = RedisBus::connect_cluster(&seeds, "bench").await.unwrap();
        measure("3 shards", publisher, receiver, &rates).await;
    });
}
