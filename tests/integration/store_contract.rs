//! The store contract: every behaviour the rest of Banter relies on, run against SQLite and
//! PostgreSQL alike.

use std::collections::BTreeSet;

use banter_core::{CommentBody, DeviceId, Email, Role, UserId, Username, VideoId};
use banter_store::{CommentPage, NewRefreshToken, NewUser, RotateOutcome, Store, StoreError};
use banter_tests::TestApp;
use time::OffsetDateTime;

use crate::both_backends;

async fn user(store: &Store, name: &str) -> UserId {
    banter_tests::create_user(store, name).await
}

both_backends!(concurrent_writers_get_gap_free_seqs);
async fn concurrent_writers_get_gap_free_seqs(app: TestApp) {
    let store = app.store.clone();
    let author = user(&store, "writer").await;
    let video = VideoId::parse("hot-video").unwrap();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let store = store.clone();
        let video = video.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::with_capacity(500);
            for i in 0..500 {
                let body = CommentBody::parse(&format!("w{w} c{i}")).unwrap();
                seqs.push(
                    store
                        .primary()
                        .create_comment(&video, author, &body)
                        .await
                        .unwrap()
                        .seq,
                );
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "one writer's seqs must increase"
        );
        all.extend(seqs);
    }
    let unique: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), 4000);
    assert_eq!(unique, (1..=4000).collect::<BTreeSet<_>>());
    let video_row = store.primary().get_video(&video).await.unwrap().unwrap();
    assert_eq!(video_row.last_seq, 4000);
}

both_backends!(emails_and_usernames_are_unique_case_insensitively);
async fn emails_and_usernames_are_unique_case_insensitively(app: TestApp) {
    let store = &app.store;
    user(store, "alice").await;
    let dup_username = store
        .primary()
        .create_user(NewUser {
            email: Email::parse("other@example.com").unwrap(),
            username: Username::parse("ALICE").unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await;
    assert!(
        matches!(dup_username, Err(StoreError::Conflict("username"))),
        "{dup_username:?}"
    );
    let dup_email = store
        .primary()
        .create_user(NewUser {
            email: Email::parse("Alice@Example.com").unwrap(),
            username: Username::parse("alice2").unwrap(),
            password_hash: "x".into(),
            role: Role::User,
        })
        .await;
    assert!(
        matches!(dup_email, Err(StoreError::Conflict("email"))),
        "{dup_email:?}"
    );
}

both_backends!(pages_are_keyset_by_seq_in_both_directions);
async fn pages_are_keyset_by_seq_in_both_directions(app: TestApp) {
    let store = &app.store;
    let author = user(store, "pager").await;
    let video = VideoId::parse("paged").unwrap();
    for i in 1..=25 {
        let body = CommentBody::parse(&format!("comment {i}")).unwrap();
        store
            .primary()
            .create_comment(&video, author, &body)
            .await
            .unwrap();
    }
    let seqs = |page: Vec<banter_core::Comment>| page.iter().map(|c| c.seq).collect::<Vec<_>>();
    let reads = store.replica();
    assert_eq!(
        seqs(
            reads
                .list_comments(&video, CommentPage::Latest, 10)
                .await
                .unwrap()
        ),
        (16..=25).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(
            reads
                .list_comments(&video, CommentPage::Before(16), 10)
                .await
                .unwrap()
        ),
        (6..=15).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(
            reads
                .list_comments(&video, CommentPage::Before(6), 10)
                .await
                .unwrap()
        ),
        (1..=5).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(
            reads
                .list_comments(&video, CommentPage::After(20), 10)
                .await
                .unwrap()
        ),
        (21..=25).collect::<Vec<_>>()
    );
    assert!(
        reads
            .list_comments(&video, CommentPage::After(25), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let other = VideoId::parse("empty").unwrap();
    assert!(
        reads
            .list_comments(&other, CommentPage::Latest, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

both_backends!(a_soft_deleted_comment_keeps_its_seq_and_loses_its_body);
async fn a_soft_deleted_comment_keeps_its_seq_and_loses_its_body(app: TestApp) {
    let store = &app.store;
    let author = user(store, "deleter").await;
    let video = VideoId::parse("v").unwrap();
    let body = CommentBody::parse("first").unwrap();
    let first = store
        .primary()
        .create_comment(&video, author, &body)
        .await
        .unwrap();
    store
        .primary()
        .create_comment(&video, author, &body)
        .await
        .unwrap();
    let deleted = store
        .primary()
        .delete_comment(first.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((deleted.seq, deleted.body.clone()), (1, None));
    assert!(deleted.deleted_at.is_some());
    assert!(
        store
            .primary()
            .delete_comment(first.id)
            .await
            .unwrap()
            .is_none(),
        "deleting twice"
    );
    let edited = store
        .primary()
        .update_comment(first.id, &body)
        .await
        .unwrap();
    assert!(edited.is_none(), "a deleted comment cannot be edited");
    let page = store
        .primary()
        .list_comments(&video, CommentPage::Latest, 10)
        .await
        .unwrap();
    assert_eq!(page.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 2]);
    let third = store
        .primary()
        .create_comment(&video, author, &body)
        .await
        .unwrap();
    assert_eq!(third.seq, 3);
}

both_backends!(text_round_trips_byte_for_byte);
async fn text_round_trips_byte_for_byte(app: TestApp) {
    let store = &app.store;
    let author = user(store, "texter").await;
    let video = VideoId::parse("v").unwrap();
    for raw in [
        "'; DROP TABLE comments; --",
        "\" OR 1=1 --",
        "<script>alert('x')</script>",
        "ünïcödé 🎉 \u{200b} \u{202e}rtl",
        "line one\nline two",
        "%s %n {} $1 ?1",
    ] {
        let body = CommentBody::parse(raw).unwrap();
        let stored = store
            .primary()
            .create_comment(&video, author, &body)
            .await
            .unwrap();
        let back = store
            .primary()
            .get_comment(stored.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(back.body.as_deref(), Some(raw));
    }
}

const NO_GRACE: std::time::Duration = std::time::Duration::ZERO;

both_backends!(refresh_token_reuse_revokes_the_family);
async fn refresh_token_reuse_revokes_the_family(app: TestApp) {
    let store = &app.store;
    let owner = user(store, "rotator").await;
    let device = DeviceId::parse("d1").unwrap();
    let expires = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let primary = store.primary();
    let family = primary
        .insert_refresh_token(NewRefreshToken {
            token_hash: "h1",
            user_id: owner,
            device_id: &device,
            family_id: None,
            expires_at: expires,
        })
        .await
        .unwrap();
    assert_eq!(
        primary
            .rotate_refresh_token("h1", "h2", expires, NO_GRACE)
            .await
            .unwrap(),
        RotateOutcome::Rotated {
            user_id: owner,
            device_id: "d1".into(),
            family_id: family
        }
    );
    assert_eq!(
        primary
            .rotate_refresh_token("h1", "h3", expires, NO_GRACE)
            .await
            .unwrap(),
        RotateOutcome::Reused { user_id: owner }
    );
    // The reuse revoked h2 as well: the thief's and the owner's tokens are both dead, and
    // presenting them now says the session ended (not another reuse).
    assert_eq!(
        primary
            .rotate_refresh_token("h2", "h4", expires, NO_GRACE)
            .await
            .unwrap(),
        RotateOutcome::Revoked
    );
    assert_eq!(
        primary
            .rotate_refresh_token("nope", "h5", expires, NO_GRACE)
            .await
            .unwrap(),
        RotateOutcome::Unknown
    );
    let past = OffsetDateTime::now_utc() - time::Duration::seconds(1);
    primary
        .insert_refresh_token(NewRefreshToken {
            token_hash: "old",
            user_id: owner,
            device_id: &device,
            family_id: None,
            expires_at: past,
        })
        .await
        .unwrap();
    assert_eq!(
        primary
            .rotate_refresh_token("old", "h6", expires, NO_GRACE)
            .await
            .unwrap(),
        RotateOutcome::Expired
    );
}

both_backends!(a_just_rotated_token_gets_its_successor_again_within_the_grace_window);
async fn a_just_rotated_token_gets_its_successor_again_within_the_grace_window(app: TestApp) {
    let store = &app.store;
    let owner = user(store, "twotabs").await;
    let device = DeviceId::parse("d1").unwrap();
    let expires = OffsetDateTime::now_utc() + time::Duration::hours(1);
    let grace = std::time::Duration::from_secs(10);
    let primary = store.primary();
    primary
        .insert_refresh_token(NewRefreshToken {
            token_hash: "t1",
            user_id: owner,
            device_id: &device,
            family_id: None,
            expires_at: expires,
        })
        .await
        .unwrap();
    let first = primary
        .rotate_refresh_token("t1", "t2", expires, grace)
        .await
        .unwrap();
    assert!(matches!(first, RotateOutcome::Rotated { .. }));
    // The second tab presents t1 too, naming the same successor: it gets t2 again.
    assert_eq!(
        primary
            .rotate_refresh_token("t1", "t2", expires, grace)
            .await
            .unwrap(),
        first
    );
    // Once t2 itself has been used, t1 is plain reuse again.
    assert!(matches!(
        primary
            .rotate_refresh_token("t2", "t3", expires, grace)
            .await
            .unwrap(),
        RotateOutcome::Rotated { .. }
    ));
    assert_eq!(
        primary
            .rotate_refresh_token("t1", "t2", expires, grace)
            .await
            .unwrap(),
        RotateOutcome::Reused { user_id: owner }
    );
}

both_backends!(a_revoked_device_is_no_longer_a_principal);
async fn a_revoked_device_is_no_longer_a_principal(app: TestApp) {
    let store = &app.store;
    let owner = user(store, "devices").await;
    let device = DeviceId::parse("phone").unwrap();
    let now = OffsetDateTime::now_utc();
    let expires = now + time::Duration::hours(1);
    let primary = store.primary();
    primary
        .upsert_device(owner, &device, serde_json::json!({"os": "x"}), now)
        .await
        .unwrap();
    let session = |hash: &'static str, device: DeviceId| {
        let primary = primary.clone();
        async move {
            primary
                .insert_refresh_token(NewRefreshToken {
                    token_hash: hash,
                    user_id: owner,
                    device_id: &device,
                    family_id: None,
                    expires_at: expires,
                })
                .await
                .unwrap()
        }
    };
    let alive = |device: DeviceId, session: uuid::Uuid| {
        let primary = primary.clone();
        async move {
            primary
                .active_principal(owner, &device, session)
                .await
                .unwrap()
                .is_some()
        }
    };
    let first = session("s1", device.clone()).await;
    assert!(alive(device.clone(), first).await);
    assert!(
        !alive(DeviceId::parse("other").unwrap(), first).await,
        "the session belongs to another device"
    );
    assert!(
        !alive(device.clone(), uuid::Uuid::now_v7()).await,
        "no such session"
    );
    assert!(primary.revoke_device(owner, &device, now).await.unwrap());
    assert!(!alive(device.clone(), first).await);
    // Signing in again on the same device starts a new session; the old one stays dead.
    primary
        .upsert_device(owner, &device, serde_json::json!({}), now)
        .await
        .unwrap();
    let second = session("s2", device.clone()).await;
    assert!(
        !alive(device.clone(), first).await,
        "a session ended by revocation is not revived by a new sign-in"
    );
    assert!(alive(device.clone(), second).await);
    // A password change ends the other sessions only.
    let third = session("s3", device.clone()).await;
    assert_eq!(
        primary.revoke_other_sessions(owner, third).await.unwrap(),
        1
    );
    assert!(!alive(device.clone(), second).await);
    assert!(alive(device.clone(), third).await);
    // Logout ends the session its token belongs to.
    assert_eq!(
        primary.revoke_token_family("s3").await.unwrap(),
        Some(owner)
    );
    assert_eq!(primary.revoke_token_family("nope").await.unwrap(), None);
    assert!(!alive(device.clone(), third).await);
    let fourth = session("s4", device.clone()).await;
    primary
        .update_standing(owner, None, Some(false))
        .await
        .unwrap();
    assert!(
        !alive(device.clone(), fourth).await,
        "a deactivated user is never a principal"
    );
}

both_backends!(sessions_checked_together_each_get_their_own_answer);
/// Session checks asked at once are read together (a few queries, not one each), and each still
/// gets its own session's answer: alive, ended, revoked, deactivated, unknown, or the same
/// session asked twice in one batch.
async fn sessions_checked_together_each_get_their_own_answer(app: TestApp) {
    let primary = app.store.primary();
    let now = OffsetDateTime::now_utc();
    let device = DeviceId::parse("phone").unwrap();
    let mut sessions = Vec::new();
    for n in 0..30 {
        let owner = user(&app.store, &format!("crowd{n}")).await;
        primary
            .upsert_device(owner, &device, serde_json::json!({}), now)
            .await
            .unwrap();
        let hash = format!("crowd-token-{n}");
        let session = primary
            .insert_refresh_token(NewRefreshToken {
                token_hash: &hash,
                user_id: owner,
                device_id: &device,
                family_id: None,
                expires_at: now + time::Duration::hours(1),
            })
            .await
            .unwrap();
        let alive = match n % 4 {
            0 => true,
            1 => primary.revoke_token_family(&hash).await.unwrap().is_none(),
            2 => !primary.revoke_device(owner, &device, now).await.unwrap(),
            _ => {
                primary
                    .update_standing(owner, None, Some(false))
                    .await
                    .unwrap();
                false
            }
        };
        sessions.push((owner, session, alive));
    }
    let mut asks = Vec::new();
    for &(owner, session, alive) in &sessions {
        for _ in 0..3 {
            asks.push((owner, session, alive.then_some(owner)));
        }
        asks.push((owner, uuid::Uuid::now_v7(), None)); // not a session of theirs
    }
    let before = primary.session_read_stats();
    let answers = futures_util::future::join_all(asks.iter().map(|(owner, session, _)| {
        let device = device.clone();
        async move {
            primary
                .active_principal(*owner, &device, *session)
                .await
                .unwrap()
                .map(|u| u.id)
        }
    }))
    .await;
    for ((owner, session, expected), answer) in asks.iter().zip(&answers) {
        assert_eq!(answer, expected, "user {owner}, session {session}");
    }
    let after = primary.session_read_stats();
    let queries = after.queries - before.queries;
    assert!(
        queries * 4 <= asks.len() as u64,
        "{} checks asked at once took {queries} queries",
        asks.len()
    );
    assert!(after.sessions - before.sessions <= asks.len() as u64);

    // A failed read answers every check in it with the error.
    app.store.close().await;
    let failed = futures_util::future::join_all(
        sessions
            .iter()
            .map(|(owner, session, _)| primary.active_principal(*owner, &device, *session)),
    )
    .await;
    assert!(failed.iter().all(Result::is_err), "{failed:?}");
}
