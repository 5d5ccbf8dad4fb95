//! Encode-once fan-out: one topic, N in-process subscribers, M comments, on one core (a
//! current-thread runtime). Prints deliveries per second for the real channel path and for
//! per-subscriber serialization, measured in the same run.
//!
//! A second measurement includes the socket write: each subscriber's frames are written to its
//! own loopback TCP connection by the production write path, and read and decoded by clients
//! on another thread (so the measured core does the server's work only).
//!
//! `cargo bench -p banter-realtime --bench fanout` (N=10000, M=50; override with
//! `FANOUT_SUBSCRIBERS`, `FANOUT_COMMENTS`, `FANOUT_ROUNDS`; the socket variant uses
//! `FANOUT_SOCKETS`, default 5000, two file descriptors each: `ulimit -n 20000`).

use banter_core::{Email, Role, Username, VideoId};
use banter_realtime::bench::{Sink, fanout, serialize_per_subscriber};
use banter_store::{NewUser, Store, StoreConfig};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let subscribers = env("FANOUT_SUBSCRIBERS", 10_000);
    let comments = env("FANOUT_COMMENTS", 50);
    let rounds = env("FANOUT_ROUNDS", 5);
    let socket_subscribers = env("FANOUT_SOCKETS", 5_000);
    // The channel is an actix actor: one actix System (a current-thread runtime) is the core.
    let runtime = actix_rt::System::new();
    let clients = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (mut shared, mut per_subscriber, mut sockets) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let (channel_rate, baseline_rate, socket_rate) = runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::connect(&StoreConfig::new(format!(
                "sqlite://{}",
                dir.path().join("b.db").display()
            )))
            .await
            .unwrap();
            let author = store
                .primary()
                .create_user(NewUser {
                    email: Email::parse("bench@example.com").unwrap(),
                    username: Username::parse("bench").unwrap(),
                    password_hash: "x".into(),
                    role: Role::User,
                })
                .await
                .unwrap();
            let video = VideoId::parse(&format!("bench{round}")).unwrap();
            let (report, committed) = fanout(
                store.clone(),
                video,
                author.id,
                subscribers,
                comments,
                Sink::Queue,
                clients.handle(),
            )
            .await;
            let baseline = serialize_per_subscriber(subscribers, &committed);
            let video = VideoId::parse(&format!("sockets{round}")).unwrap();
            let (written, _) = fanout(
                store.clone(),
                video,
                author.id,
                socket_subscribers,
                comments,
                Sink::Socket,
                clients.handle(),
            )
            .await;
            (
                report.deliveries as f64 / report.elapsed.as_secs_f64(),
                baseline.deliveries as f64 / baseline.elapsed.as_secs_f64(),
                written.deliveries as f64 / written.elapsed.as_secs_f64(),
            )
        });
        println!(
            "round {round}: channel {channel_rate:.0} deliveries/s, per-subscriber serialization {baseline_rate:.0} deliveries/s, \
             through {socket_subscribers} loopback sockets {socket_rate:.0} deliveries/s"
        );
        shared.push(channel_rate);
        per_subscriber.push(baseline_rate);
        sockets.push(socket_rate);
    }
    let (a, b, c) = (median(shared), median(per_subscriber), median(sockets));
    println!(
        "median over {rounds} rounds, {subscribers} subscribers x {comments} comments, one core: channel {a:.0} deliveries/s; \
         per-subscriber serialization {b:.0} deliveries/s; ratio {:.1}x; \
         with the socket write ({socket_subscribers} loopback sockets) {c:.0} deliveries/s",
        a / b
    );
}
