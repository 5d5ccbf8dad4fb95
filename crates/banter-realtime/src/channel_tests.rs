//! Tests of a topic's channel running in its actor: ordering and repair, join history, a
//! restart after a panic, shards on another worker, presence across nodes.

use std::time::{Duration, Instant};

use banter_protocol::payloads::Meta;

use banter_core::{CommentBody, Email, Role, UserId, Username};
use banter_store::{NewUser, StoreConfig};

use super::*;
use crate::channel::Announce;
use crate::channel_actor::ChannelActor;
use crate::outq::{Outq, Receiver};

async fn store() -> (Store, UserId, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&StoreConfig::new(format!(
        "sqlite://{}",
        dir.path().join("t.db").display()
    )))
    .await
    .unwrap();
    let user = store
        .primary()
        .create_user(NewUser {
            email: Email::parse("a@example.com").unwrap(),
            username: Username::parse("alice").unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await
        .unwrap();
    (store, user.id, dir)
}

/// Subscriber `sid` on `outq`, anonymous or as `member`.
fn subscriber(
    sid: u64,
    outq: Arc<Outq>,
    member: Option<(String, String)>,
    home: Option<crate::shard::Home>,
) -> Subscriber {
    Subscriber {
        outq,
        vsn: banter_protocol::Vsn::V2,
        member,
        phx_ref: format!("r{sid}"),
        home,
    }
}

/// Joins one anonymous subscriber (sid 1) and returns its frames.
async fn join_anonymous(tx: &actix::Addr<ChannelActor>) -> Receiver {
    join_since(tx, None).await.0
}

/// Joins one anonymous subscriber (sid 1); returns its frames and the join's result.
async fn join_since(tx: &actix::Addr<ChannelActor>, since_seq: Option<i64>) -> (Receiver, JoinOk) {
    join_sid_since(tx, 1, since_seq).await
}

/// Joins anonymous subscriber `sid` resuming after `since_seq`; returns its frames and the
/// join's result.
async fn join_sid_since(
    tx: &actix::Addr<ChannelActor>,
    sid: u64,
    since_seq: Option<i64>,
) -> (Receiver, JoinOk) {
    let outq = Arc::new(Outq::new(64, 1 << 20));
    let frames = Receiver::new(outq.clone());
    let (reply_tx, reply_rx) = oneshot::channel();
    let subscriber = subscriber(sid, outq, None, None);
    let join = Command::Join {
        sid,
        subscriber,
        since_seq,
        announce: None,
        reply: reply_tx,
    };
    tx.send(join).await.unwrap();
    let Ok(ok) = reply_rx.await.unwrap() else {
        panic!("join refused")
    };
    (frames, ok)
}

/// The `seq`s of the next `n` comments on `frames` (other frames skipped), each within 5 s.
async fn next_seqs(frames: &mut Receiver, n: usize) -> Vec<i64> {
    let mut seen = Vec::new();
    while seen.len() < n {
        let frame = tokio::time::timeout(Duration::from_secs(5), frames.recv())
            .await
            .expect("the next comment arrives")
            .expect("open");
        seen.extend(seq_of(frame));
    }
    seen
}

fn seq_of(frame: bytes::Bytes) -> Option<i64> {
    let value: Value = serde_json::from_str(&crate::wire::text_of(&frame)).unwrap();
    (value[3] == events::COMMENT_CREATED).then(|| value[4]["seq"].as_i64().unwrap())
}

/// The default configuration with the delivery budget off: these tests count every comment.
fn every_comment() -> RealtimeConfig {
    RealtimeConfig {
        max_comments_per_second_per_viewer: 0,
        ..Default::default()
    }
}

/// The slot the budget tests count in: at the default 20/s, 5 a slot.
const QUARTER: Duration = Duration::from_millis(250);

/// The default configuration with a quarter-second budget slot (5 comments a slot).
fn budgeted() -> RealtimeConfig {
    RealtimeConfig {
        budget_slot: QUARTER,
        ..Default::default()
    }
}

/// Starts the channel actor of `video`; the receiver completes when it stops.
fn start(
    store: &Store,
    video: &VideoId,
    config: RealtimeConfig,
) -> (actix::Addr<ChannelActor>, oneshot::Receiver<()>) {
    let channel = Channel::new(
        video.clone(),
        store.clone(),
        Arc::new(config),
        Arc::new(banter_bus::MemoryBus::new()),
    );
    let (done_tx, done) = oneshot::channel();
    let tx = ChannelActor::start(channel, move || {
        let _ = done_tx.send(());
    });
    (tx, done)
}

/// Commits `n` comments by `author` on `video`.
async fn commit(store: &Store, video: &VideoId, author: UserId, n: usize) -> Vec<Comment> {
    let mut committed = Vec::new();
    for i in 0..n {
        let body = CommentBody::parse(&format!("c{i}")).unwrap();
        committed.push(
            store
                .primary()
                .create_comment(video, author, &body)
                .await
                .unwrap(),
        );
    }
    committed
}

/// Joins a second anonymous subscriber (sid 2) on a channel already running.
async fn join_second(tx: &actix::Addr<ChannelActor>) -> Receiver {
    join_from(tx, 2, Arc::new(Outq::new(64, 1 << 20)), None).await
}

/// Joins subscriber `sid` with its own queue and home; returns its frames.
async fn join_from(
    tx: &actix::Addr<ChannelActor>,
    sid: u64,
    outq: Arc<Outq>,
    home: Option<crate::shard::Home>,
) -> Receiver {
    join_as(tx, sid, outq, home, None).await
}

/// Joins subscriber `sid`, anonymous or as the member `(user id, username)`.
async fn join_as(
    tx: &actix::Addr<ChannelActor>,
    sid: u64,
    outq: Arc<Outq>,
    home: Option<crate::shard::Home>,
    member: Option<(String, String)>,
) -> Receiver {
    let frames = Receiver::new(outq.clone());
    let (reply, joined) = oneshot::channel();
    let subscriber = subscriber(sid, outq, member, home);
    tx.send(Command::Join {
        sid,
        subscriber,
        since_seq: None,
        announce: None,
        reply,
    })
    .await
    .unwrap();
    assert!(joined.await.unwrap().is_ok(), "join of {sid}");
    frames
}

#[actix_rt::test]
async fn viewers_on_another_worker_get_every_comment_in_order_through_its_shard() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let (tx, _done) = start(&store, &video, every_comment());
    // A second worker, as the HTTP server has one per core.
    let worker = actix_rt::Arbiter::new();
    let (home_tx, home_rx) = oneshot::channel();
    worker.spawn(async move {
        let _ = home_tx.send(crate::shard::Home::current());
    });
    let home = home_rx.await.unwrap().expect("an arbiter thread");
    assert_ne!(home.thread, std::thread::current().id());
    let mut local = join_anonymous(&tx).await;
    let mut remote = join_from(&tx, 2, Arc::new(Outq::new(64, 1 << 20)), Some(home.clone())).await;
    // A slow consumer on that worker: room for one frame, never read.
    let mut slow = join_from(&tx, 3, Arc::new(Outq::new(1, 1 << 20)), Some(home)).await;
    let committed = commit(&store, &video, author, 5).await;
    for comment in &committed {
        tx.send(Command::Event(BusEvent::new(
            ChangeKind::Created,
            comment.clone(),
        )))
        .await
        .unwrap();
    }
    for frames in [&mut local, &mut remote] {
        let seen = next_seqs(frames, 5).await;
        assert_eq!(seen, vec![1, 2, 3, 4, 5], "in order, once");
    }
    // The slow one was closed by its shard and left the topic.
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        while slow.recv().await.is_some() {}
    })
    .await;
    assert!(closed.is_ok(), "the slow consumer is closed");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (count_tx, counted) = oneshot::channel();
    let probe = Subscriber {
        outq: Arc::new(Outq::new(64, 1 << 20)),
        vsn: banter_protocol::Vsn::V2,
        member: None,
        phx_ref: "probe".into(),
        home: None,
    };
    tx.send(Command::Join {
        sid: 9,
        subscriber: probe,
        since_seq: None,
        announce: None,
        reply: count_tx,
    })
    .await
    .unwrap();
    let Ok(Ok(ok)) = counted.await else {
        panic!("probe join")
    };
    assert_eq!(ok.response["viewers"], 3, "local, remote and the probe");
    worker.stop();
}

#[actix_rt::test]
async fn a_panicking_channel_restarts_and_its_viewers_lose_and_repeat_nothing() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let (tx, done) = start(&store, &video, every_comment());
    let mut viewers = [join_anonymous(&tx).await, join_second(&tx).await];
    let committed = commit(&store, &video, author, 6).await;
    let event = |i: usize| Command::Event(BusEvent::new(ChangeKind::Created, committed[i].clone()));
    // 1 and 2 delivered; the channel panics; 3's event was in the mailbox behind the panic
    // and 4's is lost outright; 5 and 6 arrive after the restart.
    for command in [
        event(0),
        event(1),
        Command::Panic,
        event(2),
        event(4),
        event(5),
    ] {
        tx.send(command).await.unwrap();
    }
    for frames in &mut viewers {
        let seen = next_seqs(frames, 6).await;
        assert_eq!(seen, vec![1, 2, 3, 4, 5, 6]);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    for frames in &mut viewers {
        while let Some(frame) = frames.try_recv() {
            assert_eq!(seq_of(frame), None, "no comment delivered twice");
        }
    }
    // Still serving: a later comment reaches both, and the last leave ends the task.
    let body = CommentBody::parse("after").unwrap();
    let late = store
        .primary()
        .create_comment(&video, author, &body)
        .await
        .unwrap();
    tx.send(Command::Event(BusEvent::new(ChangeKind::Created, late)))
        .await
        .unwrap();
    for frames in &mut viewers {
        let frame = tokio::time::timeout(Duration::from_secs(5), frames.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(seq_of(frame), Some(7));
    }
    tx.send(Command::Leave { sid: 1 }).await.unwrap();
    tx.send(Command::Leave { sid: 2 }).await.unwrap();
    done.await.unwrap();
}

#[actix_rt::test]
async fn lost_reordered_and_duplicated_bus_events_reach_viewers_in_seq_order_once() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let (tx, done) = start(&store, &video, every_comment());
    let mut frames = join_anonymous(&tx).await;

    let committed = commit(&store, &video, author, 6).await;
    let event = |i: usize| Command::Event(BusEvent::new(ChangeKind::Created, committed[i].clone()));
    // seq 1 arrives, 2 is lost, 4 arrives before 3, 4 is duplicated, 5 is lost, 6 arrives.
    for i in [0, 3, 2, 3, 5] {
        tx.send(event(i)).await.unwrap();
    }
    let seen = next_seqs(&mut frames, 6).await;
    assert_eq!(seen, vec![1, 2, 3, 4, 5, 6]);
    // Nothing more: the duplicate was dropped.
    tokio::time::sleep(Duration::from_millis(100)).await;
    while let Some(frame) = frames.try_recv() {
        assert_eq!(seq_of(frame), None, "no comment delivered twice");
    }
    tx.send(Command::Leave { sid: 1 }).await.unwrap();
    done.await.unwrap();
}

#[actix_rt::test]
async fn a_joiner_history_and_live_stream_meet_without_gap_or_overlap() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    for i in 0..3 {
        let body = CommentBody::parse(&format!("c{i}")).unwrap();
        store
            .primary()
            .create_comment(&video, author, &body)
            .await
            .unwrap();
    }
    let (tx, _done) = start(&store, &video, every_comment());
    // A comment committed whose bus event has not arrived yet when the viewer joins.
    let body = CommentBody::parse("in flight").unwrap();
    let in_flight = store
        .primary()
        .create_comment(&video, author, &body)
        .await
        .unwrap();
    let (mut frames, ok) = join_since(&tx, Some(1)).await;
    let history: Vec<i64> = ok.response["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(history, vec![2, 3, 4]);
    assert_eq!(ok.response["last_seq"], 4);
    // The late bus event is a duplicate now and is not delivered again.
    tx.send(Command::Event(BusEvent::new(
        ChangeKind::Created,
        in_flight,
    )))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    while let Some(frame) = frames.try_recv() {
        assert_eq!(seq_of(frame), None);
    }
}

/// A storm of rejoins older than what the channel loaded: the first miss fills the window, and
/// every later one (further back, within the window's size) is answered from memory. The store
/// is closed after the first, so any read per joiner would fail and answer `recovered: false`.
#[actix_rt::test]
async fn rejoins_missing_the_window_cost_one_read_per_topic_not_one_per_viewer() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    commit(&store, &video, author, 300).await;
    // The channel starts with the latest page (50) in its window.
    let (tx, _done) = start(&store, &video, every_comment());
    let seqs = |ok: &JoinOk| -> Vec<i64> {
        ok.response["comments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["seq"].as_i64().unwrap())
            .collect()
    };
    let (_a, ok) = join_sid_since(&tx, 1, Some(200)).await;
    assert_eq!(seqs(&ok), (201..=300).collect::<Vec<_>>());
    store.close().await;
    for (sid, since) in [(2, 100), (3, 0), (4, 250)] {
        let (_frames, ok) = join_sid_since(&tx, sid, Some(since)).await;
        assert_eq!(ok.response["recovered"], true, "since {since}");
        assert_eq!(seqs(&ok), (since + 1..=300).collect::<Vec<_>>());
    }
    let (_e, ok) = join_sid_since(&tx, 5, None).await;
    assert_eq!(seqs(&ok), (251..=300).collect::<Vec<_>>());
}

/// A viewer moved here from a node that was ahead (during a rolling restart) resumes after what
/// it saw; the comments it already has must not reach it again as broadcasts. Its join waits
/// for this node to deliver that far (no database read), or, if the bus lost the message,
/// reads it after a short wait, even within a second of another join's read.
#[actix_rt::test]
async fn a_joiner_ahead_of_the_node_is_not_sent_again_what_it_saw_elsewhere() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let (tx, _done) = start(&store, &video, every_comment());
    // The first viewer's join made this second's read.
    let mut first = join_anonymous(&tx).await;
    // Three comments committed on another node; their bus events have not arrived here.
    let committed = commit(&store, &video, author, 3).await;
    // A viewer that saw them there arrives, resuming after seq 3; the events follow.
    let moved = tokio::spawn({
        let tx = tx.clone();
        async move { join_sid_since(&tx, 2, Some(3)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    for comment in &committed {
        tx.send(Command::Event(BusEvent::new(
            ChangeKind::Created,
            comment.clone(),
        )))
        .await
        .unwrap();
    }
    let (mut moved, ok) = moved.await.unwrap();
    assert_eq!(ok.response["last_seq"], 3);
    assert_eq!(ok.response["comments"], json!([]));
    assert_eq!(next_seqs(&mut first, 3).await, vec![1, 2, 3]);
    // Two more whose bus events are lost: a viewer ahead by them is answered after its wait,
    // from the database, and gets nothing twice either.
    commit(&store, &video, author, 2).await;
    let (mut third, ok) = join_sid_since(&tx, 3, Some(5)).await;
    assert_eq!(ok.response["last_seq"], 5);
    assert_eq!(next_seqs(&mut first, 2).await, vec![4, 5]);
    // The first moved viewer had not seen those: it gets them, once.
    assert_eq!(next_seqs(&mut moved, 2).await, vec![4, 5]);
    tokio::time::sleep(Duration::from_millis(100)).await;
    for frames in [&mut moved, &mut third] {
        while let Some(frame) = frames.try_recv() {
            assert_eq!(
                seq_of(frame),
                None,
                "a comment the viewer saw elsewhere came again"
            );
        }
    }
}

#[actix_rt::test]
async fn other_nodes_count_and_list_until_they_stop_heart_beating() {
    let (store, _author, _dir) = store().await;
    let config = RealtimeConfig {
        viewer_count_interval: Duration::from_millis(50),
        node_timeout: Duration::from_millis(400),
        ..Default::default()
    };
    let (tx, _done) = start(&store, &VideoId::parse("v").unwrap(), config);
    let mut frames = join_anonymous(&tx).await;
    let ghost = PresenceSnapshot {
        node: "ghost".into(),
        video: VideoId::parse("v").unwrap(),
        viewers: 3,
        members: vec![(
            "u9".into(),
            vec![Meta {
                phx_ref: "g1".into(),
                username: "gina".into(),
                online_at: 0,
            }],
        )],
    };
    tx.send(Command::Presence(ghost)).await.unwrap();
    let mut saw_join = false;
    let mut saw_leave = false;
    let mut counts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(saw_leave && counts.last() == Some(&1)) {
        assert!(
            Instant::now() < deadline,
            "joins {saw_join} leaves {saw_leave} counts {counts:?}"
        );
        let Ok(Some(frame)) = tokio::time::timeout(Duration::from_secs(1), frames.recv()).await
        else {
            continue;
        };
        // A moved count rides with a diff in one offer.
        for text in crate::wire::texts_of(&frame) {
            let value: Value = serde_json::from_str(&text).unwrap();
            match value[3].as_str().unwrap() {
                events::PRESENCE_DIFF => {
                    saw_join |= value[4]["joins"].get("u9").is_some();
                    saw_leave |= value[4]["leaves"].get("u9").is_some();
                }
                events::VIEWER_COUNT => counts.push(value[4]["count"].as_i64().unwrap()),
                _ => {}
            }
        }
    }
    assert!(saw_join, "the other node's member joined");
    assert!(
        counts.contains(&4),
        "1 local + 3 on the other node: {counts:?}"
    );
}

/// What a viewer was told about new comments, in order: a comment, or a skipped run.
#[derive(Debug, PartialEq, Eq)]
enum Told {
    Comment(i64),
    Skipped(i64, i64),
}

/// What one offer told (a burst holds several frames).
fn told(frame: bytes::Bytes) -> Vec<Told> {
    crate::wire::texts_of(&frame)
        .iter()
        .filter_map(|text| {
            let value: Value = serde_json::from_str(text).unwrap();
            match value[3].as_str()? {
                events::COMMENT_CREATED => Some(Told::Comment(value[4]["seq"].as_i64()?)),
                events::COMMENTS_SKIPPED => {
                    let (from, to) = (value[4]["from_seq"].as_i64()?, value[4]["to_seq"].as_i64()?);
                    assert_eq!(value[4]["count"].as_i64(), Some(to - from + 1));
                    Some(Told::Skipped(from, to))
                }
                _ => None,
            }
        })
        .collect()
}

/// Reads until the viewer was told about every seq up to `last` (sent or skipped).
async fn told_until(frames: &mut Receiver, last: i64) -> Vec<Told> {
    told_and_offers(frames, last).await.0
}

/// Like `told_until`, with how many offers (socket writes' worth) carried more than one item.
async fn told_and_offers(frames: &mut Receiver, last: i64) -> (Vec<Told>, usize) {
    let mut offers = 0;
    let mut out = Vec::new();
    let mut covered = 0;
    while covered < last {
        let frame = tokio::time::timeout(Duration::from_secs(5), frames.recv())
            .await
            .unwrap_or_else(|_| panic!("told up to {covered} of {last}: {out:?}"))
            .unwrap();
        let items = told(frame);
        offers += usize::from(items.len() > 1);
        for item in items {
            covered = covered.max(match item {
                Told::Comment(seq) => seq,
                Told::Skipped(_, to) => to,
            });
            out.push(item);
        }
    }
    (out, offers)
}

/// Joins subscriber `sid` signed in as `user`; returns its frames.
async fn join_member(tx: &actix::Addr<ChannelActor>, sid: u64, user: UserId) -> Receiver {
    let member = Some((user.to_string(), "alice".into()));
    join_as(tx, sid, Arc::new(Outq::new(256, 1 << 20)), None, member).await
}

#[actix_rt::test]
async fn over_the_budget_two_nodes_send_the_same_sample_and_markers_cover_every_skipped_seq() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    // Two nodes' channels of one topic, fed the same bus events.
    let (node_a, _a) = start(&store, &video, budgeted());
    let (node_b, _b) = start(&store, &video, budgeted());
    let mut viewer_a = join_anonymous(&node_a).await;
    let mut viewer_b = join_anonymous(&node_b).await;
    let mut own = join_member(&node_a, 2, author).await;
    // 60 comments in three bursts a slot apart: far above 20/s.
    let mut committed = Vec::new();
    for _ in 0..3 {
        committed.extend(commit(&store, &video, author, 20).await);
        tokio::time::sleep(QUARTER + Duration::from_millis(10)).await;
    }
    for node in [&node_a, &node_b] {
        for comment in &committed {
            node.send(Command::Event(BusEvent::new(
                ChangeKind::Created,
                comment.clone(),
            )))
            .await
            .unwrap();
        }
    }
    let (told_a, bursts) = told_and_offers(&mut viewer_a, 60).await;
    let told_b = told_until(&mut viewer_b, 60).await;
    // Over the budget, a slot's marker and sample go out together, in one offer.
    assert!(bursts > 0, "no burst in {told_a:?}");
    assert_eq!(
        told_a, told_b,
        "the same sample and the same markers on both nodes"
    );
    // In order, and every seq exactly once: sent, or inside one marker.
    let mut next = 1;
    let mut sent = 0;
    for item in &told_a {
        match *item {
            Told::Comment(seq) => {
                assert_eq!(seq, next, "{told_a:?}");
                next += 1;
                sent += 1;
            }
            Told::Skipped(from, to) => {
                assert_eq!(from, next, "{told_a:?}");
                next = to + 1;
            }
        }
    }
    assert_eq!(next, 61);
    assert!((5..60).contains(&sent), "a sample was sent: {told_a:?}");
    // The author got every one of their own comments, with the markers too.
    let told_own = told_until(&mut own, 60).await;
    let own_seqs: Vec<i64> = told_own
        .iter()
        .filter_map(|t| match t {
            Told::Comment(seq) => Some(*seq),
            Told::Skipped(..) => None,
        })
        .collect();
    assert_eq!(own_seqs, (1..=60).collect::<Vec<_>>());
    // It is told of the skipped runs too (the last one after the flush delay).
    let mut marked = told_own.iter().any(|t| matches!(t, Told::Skipped(..)));
    while !marked {
        let frame = tokio::time::timeout(Duration::from_secs(5), own.recv())
            .await
            .expect("a marker for the author too")
            .unwrap();
        marked = told(frame).iter().any(|t| matches!(t, Told::Skipped(..)));
    }
}

#[actix_rt::test]
async fn a_recovery_over_the_budget_replays_a_sample_and_lists_what_it_skipped() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    commit(&store, &video, author, 60).await;
    let (tx, _done) = start(&store, &video, budgeted());
    let (_frames, ok) = join_since(&tx, Some(0)).await;
    let replayed: Vec<i64> = ok.response["comments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["seq"].as_i64().unwrap())
        .collect();
    let skipped = ok.response["skipped"].as_array().expect("skipped runs");
    assert!(replayed.len() < 60, "{replayed:?}");
    let mut covered: Vec<i64> = replayed.clone();
    for run in skipped {
        let (from, to) = (
            run["from_seq"].as_i64().unwrap(),
            run["to_seq"].as_i64().unwrap(),
        );
        assert_eq!(run["count"].as_i64(), Some(to - from + 1));
        covered.extend(from..=to);
    }
    covered.sort_unstable();
    assert_eq!(covered, (1..=60).collect::<Vec<_>>());
    assert_eq!(ok.response["recovered"], true);
}

#[actix_rt::test]
async fn a_joiners_reply_is_on_its_socket_before_any_broadcast() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let (tx, _done) = start(&store, &video, every_comment());
    let _first = join_anonymous(&tx).await;
    let committed = commit(&store, &video, author, 1).await;
    let outq = Arc::new(Outq::new(64, 1 << 20));
    let mut frames = Receiver::new(outq.clone());
    let (reply, joined) = oneshot::channel();
    let subscriber = Subscriber {
        outq,
        vsn: banter_protocol::Vsn::V2,
        member: None,
        phx_ref: "r2".into(),
        home: None,
    };
    let announce: Announce = Box::new(|ok: &JoinOk| {
        vec![crate::wire::encode(banter_protocol::Frame::Text(format!(
            "reply last_seq={}",
            ok.response["last_seq"]
        )))]
    });
    // The join and a broadcast right behind it in the mailbox.
    tx.send(Command::Join {
        sid: 2,
        subscriber,
        since_seq: None,
        announce: Some(announce),
        reply,
    })
    .await
    .unwrap();
    tx.send(Command::Event(BusEvent::new(
        ChangeKind::Created,
        committed[0].clone(),
    )))
    .await
    .unwrap();
    assert!(joined.await.unwrap().is_ok());
    let first = tokio::time::timeout(Duration::from_secs(5), frames.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        crate::wire::text_of(&first).starts_with("reply"),
        "the reply comes first, not {}",
        crate::wire::text_of(&first)
    );
}

#[actix_rt::test]
async fn a_burst_of_member_joins_is_one_presence_diff_carrying_all_of_them() {
    let (store, _author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let (tx, _done) = start(&store, &video, every_comment());
    let mut observer = join_anonymous(&tx).await;
    let members: Vec<UserId> = (0..10).map(|_| UserId::generate()).collect();
    // All ten joins queued at once, as a burst of viewers arrives.
    let mut replies = Vec::new();
    for (i, user) in members.iter().enumerate() {
        let (reply, joined) = oneshot::channel();
        tx.send(Command::Join {
            sid: 10 + i as u64,
            subscriber: Subscriber {
                outq: Arc::new(Outq::new(64, 1 << 20)),
                vsn: banter_protocol::Vsn::V2,
                member: Some((user.to_string(), format!("member{i}"))),
                phx_ref: format!("m{i}"),
                home: None,
            },
            since_seq: None,
            announce: None,
            reply,
        })
        .await
        .unwrap();
        replies.push(joined);
    }
    for joined in replies {
        assert!(joined.await.unwrap().is_ok());
    }
    let mut diffs = 0;
    let mut joined = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        let Ok(Some(frame)) =
            tokio::time::timeout(Duration::from_millis(100), observer.recv()).await
        else {
            continue;
        };
        for text in crate::wire::texts_of(&frame) {
            let value: Value = serde_json::from_str(&text).unwrap();
            if value[3] == events::PRESENCE_DIFF {
                diffs += 1;
                joined.extend(value[4]["joins"].as_object().unwrap().keys().cloned());
            }
        }
    }
    let expected: std::collections::BTreeSet<String> =
        members.iter().map(|u| u.to_string()).collect();
    assert_eq!(joined, expected, "every member's join is announced");
    assert!(
        diffs < members.len(),
        "{diffs} diffs for {} joins",
        members.len()
    );
}

/// Joins subscriber `sid` on a channel driven directly (no actor), anonymous or as `member`.
async fn join_direct(
    channel: &mut Channel,
    sid: u64,
    member: Option<(String, String)>,
) -> Receiver {
    let outq = Arc::new(Outq::new(64, 1 << 20));
    let frames = Receiver::new(outq.clone());
    let (reply, joined) = oneshot::channel();
    let subscriber = subscriber(sid, outq, member, None);
    channel
        .handle(Command::Join {
            sid,
            subscriber,
            since_seq: None,
            announce: None,
            reply,
        })
        .await;
    assert!(joined.await.unwrap().is_ok(), "join of {sid}");
    frames
}

/// The events of one offer, in order, with the count of a `viewer_count`.
fn events_of(offer: bytes::Bytes) -> Vec<(String, Option<i64>)> {
    crate::wire::texts_of(&offer)
        .iter()
        .map(|text| {
            let value: Value = serde_json::from_str(text).unwrap();
            (
                value[3].as_str().unwrap().to_owned(),
                value[4]["count"].as_i64(),
            )
        })
        .collect()
}

#[actix_rt::test]
async fn no_timer_cuts_a_slots_sample_in_two_and_authors_still_get_theirs() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let mut channel = started(&store, &video, budgeted()).await;
    let mut viewer = join_direct(&mut channel, 1, None).await;
    let member = Some((author.to_string(), "alice".to_owned()));
    let mut own = join_direct(&mut channel, 2, member).await;
    channel.tick().await;
    // Ten comments in one slot (5 sent, 5 skipped: those held for their author), then five
    // in the next slot.
    let mut comments = committed_at_once(commit(&store, &video, author, 15).await);
    for comment in &mut comments[10..] {
        comment.created_at += QUARTER;
    }
    let mut events = comments
        .into_iter()
        .map(|c| Command::Event(BusEvent::new(ChangeKind::Created, c)));
    for event in events.by_ref().take(10) {
        channel.handle(event).await;
    }
    while viewer.try_recv().is_some() {}
    // The next slot's first comment is held after the author's; the timer the author's set
    // comes before the sample is complete, and sends nothing for everyone.
    let before = Instant::now();
    channel.handle(events.next().unwrap()).await;
    let due = channel.due(Instant::now()).expect("held");
    assert!(due >= before + HOLD, "due by the comment held for everyone");
    channel.flush_if_due(before + HOLD - Duration::from_millis(1));
    assert_eq!(viewer.try_recv(), None, "nothing cut off the sample");
    // The sample completes: the marker and the slot's five in one write.
    for event in events {
        channel.handle(event).await;
    }
    let offer = viewer.try_recv().expect("the sample");
    assert_eq!(
        told(offer),
        vec![
            Told::Skipped(6, 10),
            Told::Comment(11),
            Told::Comment(12),
            Told::Comment(13),
            Told::Comment(14),
            Told::Comment(15)
        ]
    );
    assert_eq!(viewer.try_recv(), None);
    // The author got all fifteen of theirs, in order.
    let mut seqs = Vec::new();
    while let Some(offer) = own.try_recv() {
        seqs.extend(told(offer).into_iter().filter_map(|t| match t {
            Told::Comment(seq) => Some(seq),
            Told::Skipped(..) => None,
        }));
    }
    assert_eq!(seqs, (1..=15).collect::<Vec<_>>());
}

#[actix_rt::test]
async fn a_big_topic_holds_even_its_first_comments_so_a_flood_starts_in_one_write() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let config = RealtimeConfig {
        big_topic_viewers: 2,
        ..budgeted()
    };
    let mut channel = started(&store, &video, config).await;
    let mut first = join_direct(&mut channel, 1, None).await;
    channel.tick().await;
    let comments = committed_at_once(commit(&store, &video, author, 5).await);
    let mut events = comments
        .into_iter()
        .map(|c| Command::Event(BusEvent::new(ChangeKind::Created, c)));
    // One viewer: a comment under the budget goes out at once.
    channel.handle(events.next().unwrap()).await;
    assert_eq!(
        told(first.try_recv().expect("sent at once")),
        vec![Told::Comment(1)]
    );
    // Two viewers: big. The next comments wait for the slot's sample, not for a skip...
    let mut second = join_direct(&mut channel, 2, None).await;
    while first.try_recv().is_some() {}
    let before = Instant::now();
    for event in events.by_ref().take(3) {
        channel.handle(event).await;
    }
    assert_eq!(first.try_recv(), None, "held");
    let due = channel.due(Instant::now()).expect("held");
    assert!(
        due >= before + FIRST_HOLD && due < before + HOLD,
        "due after FIRST_HOLD"
    );
    channel.flush_if_due(before);
    assert_eq!(first.try_recv(), None, "not due yet");
    // ...and go as one write the moment it is complete (5 of this slot), before the timer.
    channel.handle(events.next().unwrap()).await;
    for viewer in [&mut first, &mut second] {
        let offer = viewer.try_recv().expect("the sample, at once");
        assert_eq!(
            told(offer),
            vec![
                Told::Comment(2),
                Told::Comment(3),
                Told::Comment(4),
                Told::Comment(5)
            ]
        );
    }
    // A comment that does not complete a sample goes when FIRST_HOLD is over.
    let mut next_slot = commit(&store, &video, author, 1).await;
    next_slot[0].created_at += QUARTER;
    let held_at = Instant::now();
    channel
        .handle(Command::Event(BusEvent::new(
            ChangeKind::Created,
            next_slot.remove(0),
        )))
        .await;
    assert_eq!(first.try_recv(), None, "held");
    channel.flush_if_due(held_at + FIRST_HOLD + Duration::from_millis(1));
    assert_eq!(told(first.try_recv().expect("due")), vec![Told::Comment(6)]);
}

#[actix_rt::test]
async fn a_paced_topic_sends_a_batch_at_once_and_a_lone_comment_when_its_interval_is_over() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let config = RealtimeConfig {
        max_writes_per_second_per_viewer: 5,
        paced_topic_viewers: 2,
        // No slot's sample completes early: only the pacing decides.
        max_comments_per_second_per_viewer: 0,
        ..RealtimeConfig::default()
    };
    let interval = Duration::from_millis(200);
    let mut channel = started(&store, &video, config).await;
    let mut first = join_direct(&mut channel, 1, None).await;
    channel.tick().await;
    let mut events = commit(&store, &video, author, 12)
        .await
        .into_iter()
        .map(|c| Command::Event(BusEvent::new(ChangeKind::Created, c)));
    // One viewer: too few to pace; comments go at once, one write each. With the two below,
    // ten in this second: two per interval, so a batch is two.
    for seq in 1..=8 {
        channel.handle(events.next().unwrap()).await;
        assert_eq!(
            told(first.try_recv().expect("at once")),
            vec![Told::Comment(seq)]
        );
    }
    let mut second = join_direct(&mut channel, 2, None).await;
    while first.try_recv().is_some() {}
    // Two viewers: paced. The last write was comment 8, so comment 9 waits...
    channel.handle(events.next().unwrap()).await;
    assert_eq!(first.try_recv(), None, "held");
    // ...for comment 10, which completes a batch: both go at once, in one write.
    channel.handle(events.next().unwrap()).await;
    for viewer in [&mut first, &mut second] {
        let offer = viewer.try_recv().expect("a batch: at once");
        assert_eq!(told(offer), vec![Told::Comment(9), Told::Comment(10)]);
        assert_eq!(viewer.try_recv(), None, "one write, not two");
    }
    // A lone comment waits a whole interval from that write.
    let wrote = Instant::now();
    channel.handle(events.next().unwrap()).await;
    assert_eq!(first.try_recv(), None, "held");
    let due = channel.due(Instant::now()).expect("held");
    assert!(
        due >= wrote + interval - Duration::from_millis(1) && due <= Instant::now() + interval,
        "due when the interval since the batch is over"
    );
    channel.flush_if_due(due - Duration::from_millis(1));
    assert_eq!(first.try_recv(), None, "not due yet");
    channel.flush_if_due(due);
    for viewer in [&mut first, &mut second] {
        let offer = viewer.try_recv().expect("due: one write");
        assert_eq!(told(offer), vec![Told::Comment(11)]);
    }
    // After a quiet interval a comment goes at once.
    tokio::time::sleep(interval).await;
    channel.handle(events.next().unwrap()).await;
    assert_eq!(
        told(first.try_recv().expect("at once")),
        vec![Told::Comment(12)]
    );
    assert_eq!(channel.due(Instant::now()), None, "nothing held");
}

#[actix_rt::test]
async fn pacing_off_sends_every_comment_of_a_big_topic_at_once() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let config = RealtimeConfig {
        max_writes_per_second_per_viewer: 0,
        paced_topic_viewers: 1,
        ..RealtimeConfig::default()
    };
    let mut channel = started(&store, &video, config).await;
    let mut viewer = join_direct(&mut channel, 1, None).await;
    channel.tick().await;
    for comment in commit(&store, &video, author, 3).await {
        let seq = comment.seq;
        channel
            .handle(Command::Event(BusEvent::new(ChangeKind::Created, comment)))
            .await;
        assert_eq!(
            told(viewer.try_recv().expect("at once")),
            vec![Told::Comment(seq)]
        );
    }
}

/// A channel of `video`, started, outside any actor: nothing runs unless the test calls it.
async fn started(store: &Store, video: &VideoId, config: RealtimeConfig) -> Channel {
    let mut channel = Channel::new(
        video.clone(),
        store.clone(),
        Arc::new(config),
        Arc::new(banter_bus::MemoryBus::new()),
    );
    channel.start().await;
    channel
}

/// `comments` as if all were committed in the same instant (one budget slot).
fn committed_at_once(mut comments: Vec<Comment>) -> Vec<Comment> {
    let at = comments[0].created_at;
    for comment in &mut comments {
        comment.created_at = at;
    }
    comments
}

#[actix_rt::test]
async fn the_configured_slot_sets_how_many_of_a_flood_one_write_carries() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    for (slot_ms, sample) in [(250, 5), (500, 10)] {
        let config = RealtimeConfig {
            budget_slot: Duration::from_millis(slot_ms),
            ..Default::default()
        };
        let mut channel = started(&store, &video, config).await;
        let mut viewer = join_direct(&mut channel, 1, None).await;
        channel.tick().await;
        while viewer.try_recv().is_some() {}
        // Twelve comments in one slot, over the default 20/s either way.
        let comments = committed_at_once(commit(&store, &video, author, 12).await);
        let first = comments[0].seq;
        for comment in comments {
            channel
                .handle(Command::Event(BusEvent::new(ChangeKind::Created, comment)))
                .await;
        }
        channel.flush_if_due(Instant::now() + HOLD * 2);
        let mut sent = Vec::new();
        while let Some(offer) = viewer.try_recv() {
            sent.extend(told(offer).into_iter().filter_map(|t| match t {
                Told::Comment(seq) => Some(seq),
                Told::Skipped(..) => None,
            }));
        }
        assert_eq!(
            sent,
            (first..first + sample).collect::<Vec<_>>(),
            "a {slot_ms} ms slot sends its first {sample}"
        );
    }
}

#[actix_rt::test]
async fn a_moved_viewer_count_rides_with_the_next_broadcast_or_goes_alone_a_tick_later() {
    let (store, author, _dir) = store().await;
    let video = VideoId::parse("v").unwrap();
    let mut channel = started(&store, &video, every_comment()).await;
    let mut first = join_direct(&mut channel, 1, None).await;

    // The count moved (0 → 1): owed at this tick, not sent on its own.
    channel.tick().await;
    assert_eq!(
        first.try_recv(),
        None,
        "a moved count waits for a broadcast"
    );
    // It rides with the next comment: one offer, the comment and then the count.
    let committed = commit(&store, &video, author, 1).await;
    let event = BusEvent::new(ChangeKind::Created, committed[0].clone());
    channel.handle(Command::Event(event)).await;
    let offer = first.try_recv().expect("the comment");
    assert_eq!(
        events_of(offer),
        vec![
            (events::COMMENT_CREATED.into(), None),
            (events::VIEWER_COUNT.into(), Some(1))
        ]
    );
    assert_eq!(first.try_recv(), None);

    // A second viewer and no comment: owed at one tick, sent alone at the next.
    let _second = join_direct(&mut channel, 2, None).await;
    channel.tick().await;
    assert_eq!(first.try_recv(), None);
    channel.tick().await;
    let offer = first.try_recv().expect("the count, a tick later");
    assert_eq!(
        events_of(offer),
        vec![(events::VIEWER_COUNT.into(), Some(2))]
    );

    // A member's join: its presence diff carries the count, members first.
    let member = Some((author.to_string(), "alice".to_owned()));
    let _third = join_direct(&mut channel, 3, member).await;
    channel.tick().await;
    let offer = first.try_recv().expect("the diff and the count");
    assert_eq!(
        events_of(offer),
        vec![
            (events::PRESENCE_DIFF.into(), None),
            (events::VIEWER_COUNT.into(), Some(3))
        ]
    );
    // Nothing moved: nothing more.
    channel.tick().await;
    channel.tick().await;
    assert_eq!(first.try_recv(), None);
}

#[test]
fn a_runtime_shutting_down_while_the_channel_reads_stops_it_without_a_panic() {
    let (store, _author, _dir) = actix_rt::System::new().block_on(store());
    let system = actix_rt::System::new();
    let mut stopped = None;
    system.block_on(async {
        let video = VideoId::parse("v").unwrap();
        let (_tx, done) = start(&store, &video, every_comment());
        stopped = Some(done);
        // Let the actor start: its first work reads the topic's tail, which is still running
        // (on SQLite's own thread) when the runtime goes.
        tokio::task::yield_now().await;
    });
    // Dropping the runtime stops the actor with its work pending; `stopped` used to panic on
    // the channel that work still held.
    drop(system);
    assert!(
        stopped.expect("started").blocking_recv().is_ok(),
        "the actor ran its stop (and told the hub it went idle)"
    );
}
