//! Encode-once fan-out: one topic, N in-process subscribers, M comments, on one core (a
//! current-thread runtime). Prints deliveries per second for the real channel path and for
//! per-subscriber serialization, measured in the same run.
//!
//! `cargo bench -p banter-realtime --bench fanout` (N=10000, M=50; override with
//! `FANOUT_SUBSCRIBERS`, `FANOUT_COMMENTS`, `FANOUT_ROUNDS`).

use banter_core::{Email, Role, Username, VideoId};
use banter_realtime::bench::{fanout, serialize_per_subscriber};
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut shared, mut per_subscriber) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let (channel_rate, baseline_rate) = runtime.block_on(async {
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
            let (report, committed) =
                fanout(store.clone(), video, author.id, subscribers, comments).await;
            let baseline = serialize_per_subscriber(subscribers, &committed);
            (
                report.deliveries as f64 / report.elapsed.as_secs_f64(),
                baseline.deliveries as f64 / baseline.elapsed.as_secs_f64(),
            )
        });
        println!(
            "round {round}: channel {channel_rate:.0} deliveries/s, per-subscriber serialization {baseline_rate:.0} deliveries/s"
        );
        shared.push(channel_rate);
        per_subscriber.push(baseline_rate);
    }
    let (a, b) = (median(shared), median(per_subscriber));
    println!(
        "median over {rounds} rounds, {subscribers} subscribers x {comments} comments, one core: channel {a:.0} deliveries/s; per-subscriber serialization {b:.0} deliveries/s; ratio {:.1}x",
        a / b
    );
}
