//! Group commit per video (`banter-store`'s `group_commit.rs`): many writers, two nodes, one
//! video, on both backends; every acknowledgement matches what was stored; a failed batch fails
//! all of its comments and leaves nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use banter_core::{Comment, CommentBody, UserId, VideoId};
use banter_store::{CommentPage, Store, StoreConfig};
use banter_tests::TestApp;

use crate::both_backends;

async fn user(store: &Store, name: &str) -> UserId {
    banter_tests::create_user(store, name).await
}

/// Every comment of the video, oldest first, read on the primary.
async fn stored(store: &Store, video: &VideoId) -> Vec<Comment> {
    let mut all: Vec<Comment> = Vec::new();
    loop {
        let after = all.last().map_or(0, |c| c.seq);
        let page = store
            .primary()
            .list_comments(video, CommentPage::After(after), 100)
            .await
            .unwrap();
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// The bodies of the video's comments, oldest first.
async fn bodies(store: &Store, video: &VideoId) -> Vec<String> {
    stored(store, video)
        .await
        .into_iter()
        .map(|c| c.body.unwrap_or_default())
        .collect()
}

/// A second node: its own pools (and so its own batches) on the same database.
async fn second_node(app: &TestApp) -> Store {
    let mut config = StoreConfig::new(app.database_url.clone());
    config.run_migrations = false;
    Store::connect(&config).await.expect("a second store")
}

both_backends!(two_nodes_of_many_writers_batch_one_video_without_gaps);
async fn two_nodes_of_many_writers_batch_one_video_without_gaps(app: TestApp) {
    let node_a = app.store.clone();
    let node_b = second_node(&app).await;
    let author = user(&node_a, "writer").await;
    let video = VideoId::parse("hot-video").unwrap();
    const WRITERS: usize = 32;
    const EACH: usize = 25;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = if w % 2 == 0 {
            node_a.clone()
        } else {
            node_b.clone()
        };
        let video = video.clone();
        tasks.push(tokio::spawn(async move {
            let mut acks = Vec::with_capacity(EACH);
            for i in 0..EACH {
                let body = CommentBody::parse(&format!("w{w} c{i}")).unwrap();
                acks.push(
                    store
                        .primary()
                        .create_comment(&video, author, &body)
                        .await
                        .unwrap(),
                );
            }
            acks
        }));
    }
    let mut acks = Vec::new();
    for task in tasks {
        let mine = task.await.unwrap();
        assert!(
            mine.windows(2).all(|w| w[0].seq < w[1].seq),
            "one writer's seqs must increase"
        );
        acks.extend(mine);
    }
    let total = WRITERS * EACH;
    let seqs: BTreeSet<i64> = acks.iter().map(|c| c.seq).collect();
    assert_eq!(seqs.len(), total, "no seq acknowledged twice");
    assert_eq!(seqs, (1..=total as i64).collect::<BTreeSet<_>>());
    // Each acknowledgement is exactly what was stored under its seq.
    let rows: BTreeMap<i64, Comment> = stored(&node_a, &video)
        .await
        .into_iter()
        .map(|c| (c.seq, c))
        .collect();
    assert_eq!(rows.len(), total);
    for ack in &acks {
        let row = &rows[&ack.seq];
        assert_eq!(
            (row.id, &row.body, row.created_at),
            (ack.id, &ack.body, ack.created_at)
        );
        assert_eq!(row.username, "writer");
    }
    assert_eq!(
        node_b
            .primary()
            .get_video(&video)
            .await
            .unwrap()
            .unwrap()
            .last_seq,
        total as i64
    );
    // The writers overlapped, so comments were committed several to a batch on each node.
    for (name, node) in [("a", &node_a), ("b", &node_b)] {
        let stats = node.primary().group_commit_stats();
        assert_eq!(stats.comments, (total / 2) as u64, "node {name}");
        assert!(
            stats.batches < stats.comments,
            "node {name} committed one comment per batch: {stats:?}"
        );
    }
}

/// Holds the video's write lock from outside the app until `release` is called, so the app's
/// next batch waits and the comments after it queue up behind it.
enum OutsideLock {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl OutsideLock {
    async fn take(app: &TestApp, video: &str) -> OutsideLock {
        use sqlx::Connection;
        if app.database.is_some() {
            let mut conn = sqlx::PgConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
            sqlx::query("SELECT last_seq FROM videos WHERE id = $1 FOR UPDATE")
                .bind(video)
                .execute(&mut conn)
                .await
                .unwrap();
            OutsideLock::Postgres(conn)
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
                .await
                .unwrap();
            sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut conn)
                .await
                .unwrap();
            OutsideLock::Sqlite(conn)
        }
    }

    async fn release(self) {
        match self {
            OutsideLock::Postgres(mut c) => sqlx::query("COMMIT").execute(&mut c).await.map(drop),
            OutsideLock::Sqlite(mut c) => sqlx::query("COMMIT").execute(&mut c).await.map(drop),
        }
        .unwrap();
    }
}

both_backends!(a_failed_batch_fails_every_comment_in_it_and_stores_none_of_them);
async fn a_failed_batch_fails_every_comment_in_it_and_stores_none_of_them(app: TestApp) {
    let store = app.store.clone();
    let author = user(&store, "poster").await;
    let video = VideoId::parse("v-fail").unwrap();
    let post = |store: Store, author: UserId, text: &'static str| {
        let video = video.clone();
        tokio::spawn(async move {
            store
                .primary()
                .create_comment(&video, author, &CommentBody::parse(text).unwrap())
                .await
        })
    };
    post(store.clone(), author, "before")
        .await
        .unwrap()
        .unwrap();
    let lock = OutsideLock::take(&app, "v-fail").await;
    // The first waits on the lock as a batch of its own; the next three queue behind it and
    // will be committed together, and one of them names an author that does not exist.
    let first = post(store.clone(), author, "first");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let queued = [
        post(store.clone(), author, "queued one"),
        post(store.clone(), UserId::generate(), "no such author"),
        post(store.clone(), author, "queued two"),
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    lock.release().await;
    assert_eq!(first.await.unwrap().unwrap().seq, 2);
    for task in queued {
        let err = task
            .await
            .unwrap()
            .expect_err("a comment of the failed batch");
        assert!(
            format!("{err:#}").contains("database query failed"),
            "{err:#}"
        );
    }
    assert_eq!(bodies(&store, &video).await, ["before", "first"]);
    // The failed batch's seqs were rolled back with it: the next comment takes 3.
    assert_eq!(
        post(store.clone(), author, "after")
            .await
            .unwrap()
            .unwrap()
            .seq,
        3
    );
}

both_backends!(a_stuck_batch_gets_later_comments_refused_within_the_wait_bound_and_none_stored);
async fn a_stuck_batch_gets_later_comments_refused_within_the_wait_bound_and_none_stored(
    app: TestApp,
) {
    let store = app.store.clone();
    let author = user(&store, "poster").await;
    let video = VideoId::parse("v-stuck").unwrap();
    let post = |text: &'static str| {
        let (store, video) = (store.clone(), video.clone());
        tokio::spawn(async move {
            store
                .primary()
                .create_comment(&video, author, &CommentBody::parse(text).unwrap())
                .await
        })
    };
    post("before").await.unwrap().unwrap();
    let lock = OutsideLock::take(&app, "v-stuck").await;
    // `first` is the batch in flight, stuck on the lock; `queued` waits for the next batch.
    let first = post("first");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let queued = post("queued");
    // Within the wait bound (and well before the lock goes), `queued` withdraws and is refused.
    let refused = tokio::time::timeout(banter_store::MAX_WAIT * 3, queued)
        .await
        .expect("a queued comment is answered within its wait bound while the batch is stuck")
        .unwrap();
    assert!(
        matches!(refused, Err(banter_store::StoreError::Busy)),
        "{refused:?}"
    );
    // The batch in flight has taken longer than the bound: a new comment is refused at once.
    let late = tokio::time::timeout(banter_store::MAX_WAIT, post("late"))
        .await
        .expect("refused at once, not queued behind the stuck batch")
        .unwrap();
    assert!(
        matches!(late, Err(banter_store::StoreError::Busy)),
        "{late:?}"
    );
    lock.release().await;
    assert_eq!(first.await.unwrap().unwrap().seq, 2);
    assert_eq!(bodies(&store, &video).await, ["before", "first"]);
    // Once the batch is through, comments are taken again.
    assert_eq!(post("after").await.unwrap().unwrap().seq, 3);
}
