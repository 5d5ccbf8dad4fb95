//! The video page in a real browser: `tests/js/browser.mjs` drives Debian's headless Chromium
//! through playwright-core against a server with PostgreSQL, short-lived access tokens and a
//! tight comment limit. Two viewers (one on a phone-sized screen behind a network it can cut,
//! one on the stock `phoenix` client) see each other's comments and the viewer count; the cut
//! viewer catches up without gap or duplicate; HTML shows as text; the token refreshes; a rate
//! limit shows in words. `tests/js/live_chat.mjs` checks the page as a live chat: it opens at the
//! newest, follows or counts new comments, pages back, badges, marks and dates comments, keeps
//! the post box on a phone's screen, keeps refused text, shows the pin and slow mode, signs in
//! by email under the username, pauses announcements, has a dark theme, gives the video's owner
//! its moderation tools (pin, slow mode, blocked terms, time out, remove, the review queue) with
//! the fan seeing each effect live, and passes axe-core (no serious or critical violation) in
//! every state it audits. Screenshots go to
//! `$CARGO_TARGET_DIR/browser-artifacts` (or `target/browser-artifacts`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use banter_tests::{TestApp, TestBackend};

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("browser-artifacts")
}

/// Runs `tests/js/<script>` in Node against `app` with `env`, within `limit`; asserts that it
/// printed "ok" last and that each of `shots` was saved.
async fn run_browser_script(
    script: &str,
    app: &TestApp,
    env: &[(&str, &str)],
    limit: Duration,
    shots: &[&str],
) {
    let js_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    assert!(
        js_dir.join("node_modules/playwright-core").exists(),
        "tests/js/node_modules is missing: run `npm ci` in tests/js (./scripts/test does)"
    );
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "Chromium is missing: apt-get install chromium (./scripts/test does)"
    );
    let artifacts = artifacts_dir();
    let node = tokio::process::Command::new("node")
        .arg(js_dir.join(script))
        .current_dir(&js_dir)
        .env("BANTER_URL", &app.address)
        .env("BROWSER_ARTIFACTS", &artifacts)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node is required: apt-get install nodejs npm");
    let output = tokio::time::timeout(limit, node.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} finished in time"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!(
        "{script}:\n{stdout}\n{stderr}\nscreenshots in {}",
        artifacts.display()
    );
    assert!(
        output.status.success() && stdout.lines().last() == Some("ok"),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    for shot in shots {
        assert!(artifacts.join(format!("{shot}.png")).exists(), "{shot}.png");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_browsers_share_a_live_comment_thread() {
    let app = TestApp::spawn_with(
        TestBackend::Postgres,
        &[
            ("BANTER_RATE_COMMENT_PER_MINUTE", "60"),
            ("BANTER_RATE_COMMENT_BURST", "5"),
            ("BANTER_ACCESS_TOKEN_TTL_SECS", "10"),
            // The default budget, so a flood shows "N comments skipped — show".
            ("BANTER_WS_MAX_COMMENTS_PER_SECOND_PER_VIEWER", "20"),
        ],
    )
    .await;
    let shots = [
        "01-two-viewers-desktop",
        "04-caught-up-phone",
        "06-rate-limited-phone",
        "07-skipped-desktop",
    ];
    run_browser_script("browser.mjs", &app, &[], Duration::from_secs(150), &shots).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_behaves_like_a_live_chat() {
    let app = TestApp::spawn(TestBackend::Sqlite).await;
    let owner = app.register("chatowner").await;
    // Signs in with an email whose local part is not the username.
    let res = app
        .post_json(
            "/api/auth/register",
            None,
            &serde_json::json!({
                "email": "f.an+chat@example.com",
                "username": "fanuser",
                "password": "correct horse battery",
            }),
        )
        .await;
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    let fan = banter_tests::session_from(res.json().await.unwrap());
    app.create_video(&owner, "livechat", "public").await;
    for i in 1..=60 {
        let res = app
            .post_comment(&owner.access_token, "livechat", &format!("comment {i}"))
            .await;
        assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    }
    let env = [
        ("VIDEO", "livechat"),
        ("OWNER_TOKEN", owner.access_token.as_str()),
        ("OWNER_LOGIN", "chatowner@example.com"),
        ("OWNER_PASSWORD", "password-chatowner"),
        ("FAN_TOKEN", fan.access_token.as_str()),
        ("FAN_EMAIL", "f.an+chat@example.com"),
        ("FAN_USERNAME", "fanuser"),
        ("FAN_PASSWORD", "correct horse battery"),
    ];
    let shots = [
        "chat-02-phone",
        "chat-04-desktop-light",
        "chat-05-desktop-dark",
        "chat-06-phone-dark",
        "chat-07-moderating-desktop",
    ];
    run_browser_script(
        "live_chat.mjs",
        &app,
        &env,
        Duration::from_secs(120),
        &shots,
    )
    .await;
    app.stop().await;
}
