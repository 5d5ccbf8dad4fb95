//! Tokens of an external identity provider, against a real JWKS endpoint the test starts
//! (`banter_tests::JwksServer`) with keys `openssl` made: accepted on REST and on the socket
//! like Banter's own, the subject provisioned as a local user on first sight, roles from a
//! claim, key rotation and unknown `kid`s (rate-limited refreshes), wrong `aud`/`iss`, algorithm
//! confusion, expiry on open sockets, deactivation, and the provider going down.

use std::time::Duration;

use banter_tests::{JwksServer, TestApp, TestBackend, TestKey, WsClient, assert_error};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;

const ISS: &str = "https://idp.test/";
const AUD: &str = "banter-app";

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Claims of a token for `sub`, valid ten minutes, with `extra` merged in.
fn claims(sub: &str, extra: Value) -> Value {
    let mut claims = json!({
        "iss": ISS, "aud": AUD, "sub": sub, "iat": now(), "exp": now() + 600,
        "preferred_username": sub,
    });
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

/// The `BANTER_JWT_ISSUERS` value for one issuer at `jwks_url`, with `extra` merged in.
fn issuers(jwks_url: &str, extra: Value) -> String {
    let mut issuer = json!({
        "name": "idp", "issuer": ISS, "audience": [AUD], "jwks_url": jwks_url,
        "algorithms": ["RS256", "ES256", "EdDSA"], "roles_claim": "roles",
    });
    for (k, v) in extra.as_object().unwrap() {
        issuer[k] = v.clone();
    }
    json!([issuer]).to_string()
}

async fn app_with(backend: TestBackend, jwks: &JwksServer, extra: &[(&str, &str)]) -> TestApp {
    let issuers = issuers(&jwks.url, json!({}));
    let mut env = vec![
        ("BANTER_JWT_ISSUERS", issuers.as_str()),
        ("BANTER_JWKS_MIN_REFRESH_SECS", "1"),
        ("BANTER_JWKS_MIN_TTL_SECS", "1"),
    ];
    env.extend_from_slice(extra);
    TestApp::spawn_with(backend, &env).await
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    app.get("/api/me", Some(token)).await
}

async fn me_ok(app: &TestApp, token: &str) -> Value {
    let res = me(app, token).await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

both_backends!(an_external_token_works_on_rest_and_sockets_and_provisions_its_user_once);
async fn an_external_token_works_on_rest_and_sockets_and_provisions_its_user_once(app: TestApp) {
    // The app of `both_backends!` has no issuer: start one with the same backend's database.
    let backend = if app.database.is_some() {
        TestBackend::Postgres
    } else {
        TestBackend::Sqlite
    };
    drop(app);
    let rsa = TestKey::generate("rsa-1", Algorithm::RS256);
    let ec = TestKey::generate("ec-1", Algorithm::ES256);
    let ed = TestKey::generate("ed-1", Algorithm::EdDSA);
    let jwks = JwksServer::start(&[&rsa, &ec, &ed], 300).await;
    let app = app_with(backend, &jwks, &[]).await;

    let ann = rsa.sign(&claims("ann-subject", json!({"preferred_username": "ann"})));
    let first = me_ok(&app, &ann).await;
    assert_eq!(first["username"], "ann");
    assert_eq!(first["role"], "user");
    // Every algorithm, the same subject: the same local user.
    for key in [&ec, &ed, &rsa] {
        let token = key.sign(&claims("ann-subject", json!({"preferred_username": "ann"})));
        assert_eq!(
            me_ok(&app, &token).await["id"],
            first["id"],
            "{:?}",
            key.alg
        );
    }
    // Another subject wanting the same username gets a derived one.
    let other = rsa.sign(&claims(
        "someone-else",
        json!({"preferred_username": "ann"}),
    ));
    assert_eq!(me_ok(&app, &other).await["username"], "ann-2");
    // A local account named like a provider's user is never linked to it.
    let local = app.register("bob").await;
    let bob_at_idp = rsa.sign(&claims("bob-subject", json!({"preferred_username": "bob"})));
    let provisioned = me_ok(&app, &bob_at_idp).await;
    assert_ne!(provisioned["id"].as_str().unwrap(), local.user_id);
    assert_eq!(provisioned["username"], "bob-2");
    // The username can be changed like any other.
    let res = app
        .send_json(
            Method::PATCH,
            "/api/me",
            Some(&ann),
            &json!({"username": "ann_live"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(me_ok(&app, &ann).await["username"], "ann_live");
    // Comments over REST and over a socket, seen by a socket viewer.
    let mut viewer = WsClient::connect_as(&app.address, None).await;
    assert_eq!(
        viewer.join("comments:v1", json!({})).await[4]["status"],
        "ok"
    );
    let res = app.post_comment(&ann, "v1", "over REST").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    assert_eq!(created["author"]["username"], "ann_live");
    let mut poster = WsClient::connect_as(&app.address, Some(&ann)).await;
    let join = poster.join("comments:v1", json!({})).await;
    assert_eq!(join[4]["status"], "ok");
    let join_ref = join[0].as_str().unwrap().to_owned();
    let r = poster.next_ref();
    poster
        .send(
            Some(&join_ref),
            &r,
            "comments:v1",
            "new_comment",
            json!({"body": "over the socket"}),
        )
        .await;
    assert_eq!(poster.reply_to(&r).await[4]["status"], "ok");
    for body in ["over REST", "over the socket"] {
        let event = viewer.until_event("comments:v1", "comment_created").await;
        assert_eq!(event[4]["body"], body);
        assert_eq!(event[4]["author"]["username"], "ann_live");
    }
    // Password sign-in to a provisioned account always fails, without an error.
    let res = app
        .post_json(
            "/api/auth/login",
            None,
            &json!({"login": "ann_live", "password": "anything-at-all", "device_id": "d1"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_audience_issuer_algorithm_or_signature_are_refused() {
    let rsa = TestKey::generate("rsa-1", Algorithm::RS256);
    let stranger = TestKey::generate("rsa-1", Algorithm::RS256);
    let jwks = JwksServer::start(&[&rsa], 300).await;
    let app = app_with(TestBackend::Sqlite, &jwks, &[]).await;
    let refused = |token: String, why: &'static str| {
        let app = &app;
        async move {
            let res = me(app, &token).await;
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{why}");
            let body: Value = res.json().await.unwrap();
            assert_eq!(body["error"]["code"], "invalid_token", "{why}: {body}");
            body["error"]["message"].as_str().unwrap().to_owned()
        }
    };
    let message = refused(rsa.sign(&claims("s", json!({"aud": "another-app"}))), "aud").await;
    assert!(message.contains("audience"), "{message}");
    // An issuer that is not configured is not looked up at all: Banter's own keys refuse it.
    refused(
        rsa.sign(&claims("s", json!({"iss": "https://evil.test/"}))),
        "iss",
    )
    .await;
    refused(
        stranger.sign(&claims("s", json!({}))),
        "same kid, other key",
    )
    .await;
    let mut no_aud = claims("s", json!({}));
    no_aud.as_object_mut().unwrap().remove("aud");
    refused(rsa.sign(&no_aud), "no aud").await;
    // Algorithm confusion: HS256 "signed" with the provider's public key.
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-1".into());
    let confused = jsonwebtoken::encode(
        &header,
        &claims("s", json!({})),
        &EncodingKey::from_secret(rsa.public_pem()),
    )
    .unwrap();
    let message = refused(confused, "alg confusion").await;
    assert!(message.contains("algorithm"), "{message}");
    // alg none.
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","kid":"rsa-1"}"#),
            b64.encode(claims("s", json!({})).to_string())
        )
    };
    refused(unsigned, "alg none").await;
    // Expired: its own code.
    let expired = rsa.sign(&claims("s", json!({"exp": now() - 60})));
    assert_error(
        me(&app, &expired).await,
        StatusCode::UNAUTHORIZED,
        "token_expired",
    )
    .await;
    // Nothing was provisioned by any of these.
    let users: Value = app
        .store
        .primary()
        .external_user(ISS, "s")
        .await
        .unwrap()
        .map(|u| json!(u.username.as_ref()))
        .unwrap_or(Value::Null);
    assert_eq!(users, Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_are_fetched_and_random_kids_do_not_hammer_the_provider() {
    let old = TestKey::generate("2026-old", Algorithm::RS256);
    let new = TestKey::generate("2026-new", Algorithm::ES256);
    let jwks = JwksServer::start(&[&old], 3600).await;
    let app = app_with(TestBackend::Sqlite, &jwks, &[]).await;
    me_ok(&app, &old.sign(&claims("ann", json!({})))).await;
    let fetched = jwks.fetches();
    assert!(fetched >= 1);
    // Cached for the hour the provider allowed: no fetch per token.
    for _ in 0..5 {
        me_ok(&app, &old.sign(&claims("ann", json!({})))).await;
    }
    assert_eq!(jwks.fetches(), fetched);

    // The provider rotates: a token with the new kid makes the node fetch the set again.
    jwks.publish(&[&new]);
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the refresh interval
    me_ok(&app, &new.sign(&claims("ann", json!({})))).await;
    assert_eq!(jwks.fetches(), fetched + 1);
    // The old key is gone from the set now.
    let res = me(&app, &old.sign(&claims("ann", json!({})))).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    // A flood of random kids: at most one fetch per refresh interval (1 s here), all refused.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let before = jwks.fetches();
    let started = std::time::Instant::now();
    for i in 0..30 {
        let token = new.sign_as(&format!("random-{i}"), &claims("ann", json!({})));
        let res = me(&app, &token).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        let body: Value = res.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("unknown signing key"),
            "{body}"
        );
    }
    let intervals = started.elapsed().as_secs() as usize + 1;
    let fetches = jwks.fetches() - before;
    assert!(
        (1..=intervals).contains(&fetches),
        "{fetches} fetches for 30 random kids in {intervals} refresh intervals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_keys_outlive_a_provider_outage_until_they_expire_and_readiness_says_so() {
    let key = TestKey::generate("k1", Algorithm::EdDSA);
    let jwks = JwksServer::start(&[&key], 1).await;
    let app = app_with(
        TestBackend::Sqlite,
        &jwks,
        &[("BANTER_JWKS_MAX_STALE_SECS", "3")],
    )
    .await;
    let token = key.sign(&claims("ann", json!({})));
    me_ok(&app, &token).await;
    let ready: Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(
        ready["checks"]["identity_providers"]["idp"]["keys"], "fresh",
        "{ready}"
    );

    jwks.set_down(true);
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // Stale and the provider down: the cached key still verifies, readiness reports it (and
    // the node stays ready: local sign-in and watching do not need the provider).
    me_ok(&app, &token).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the background refresh fails
    let res = app.get("/readyz", None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let ready: Value = res.json().await.unwrap();
    let idp = &ready["checks"]["identity_providers"]["idp"];
    assert_eq!(idp["keys"], "stale", "{ready}");
    assert!(idp["error"].as_str().unwrap().contains("503"), "{ready}");

    // Past the stale grace: 503 with a clear code, not a 401 that would sign the user out.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let res = me(&app, &token).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().get("retry-after").is_some());
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["error"]["code"], "identity_provider_unavailable",
        "{body}"
    );
    let ready: Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(
        ready["checks"]["identity_providers"]["idp"]["keys"],
        "unavailable"
    );

    // The provider is back: the next token after the refresh interval works again.
    jwks.set_down(false);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    me_ok(&app, &token).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_follow_the_claim_and_deactivation_and_expiry_end_access_at_once() {
    let key = TestKey::generate("k1", Algorithm::RS256);
    let jwks = JwksServer::start(&[&key], 300).await;
    let app = app_with(TestBackend::Sqlite, &jwks, &[]).await;

    // An admin by the provider's roles claim may use the admin API.
    let boss = key.sign(&claims("boss", json!({"roles": ["staff", "admin"]})));
    assert_eq!(me_ok(&app, &boss).await["role"], "admin");
    assert_eq!(
        app.get("/api/admin/users", Some(&boss)).await.status(),
        StatusCode::OK
    );
    // Demoted at the provider: the next token says so, and the admin API refuses.
    let demoted = key.sign(&claims("boss", json!({"roles": []})));
    assert_eq!(me_ok(&app, &demoted).await["role"], "user");
    assert_eq!(
        app.get("/api/admin/users", Some(&demoted)).await.status(),
        StatusCode::FORBIDDEN
    );
    let boss = key.sign(&claims("boss", json!({"roles": "admin"})));
    assert_eq!(me_ok(&app, &boss).await["role"], "admin");

    // A socket of an external user closes when the token expires (4002).
    let short = key.sign(&claims("ann", json!({"exp": now() + 3})));
    let ann_id = me_ok(&app, &short).await["id"].as_str().unwrap().to_owned();
    let mut expiring = WsClient::connect_as(&app.address, Some(&short)).await;
    assert_eq!(
        expiring.join("comments:v1", json!({})).await[4]["status"],
        "ok"
    );
    let (code, reason) = expiring.closed().await.expect("a close frame");
    assert_eq!(code, 4002, "{reason}");

    // Deactivating the local user ends its access at once, on REST and on open sockets, though
    // the provider keeps issuing valid tokens.
    let token = key.sign(&claims("ann", json!({})));
    let mut open = WsClient::connect_as(&app.address, Some(&token)).await;
    assert_eq!(open.join("comments:v1", json!({})).await[4]["status"], "ok");
    let res = app
        .send_json(
            Method::PATCH,
            &format!("/api/admin/users/{ann_id}"),
            Some(&boss),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let (code, reason) = open.closed().await.expect("a close frame");
    assert_eq!(code, 4001, "{reason}");
    assert_error(
        me(&app, &token).await,
        StatusCode::UNAUTHORIZED,
        "account_inactive",
    )
    .await;
    let again = WsClient::connect(&app.address, &format!("vsn=2.0.0&token={token}")).await;
    assert_eq!(again.err(), Some(403));
}
