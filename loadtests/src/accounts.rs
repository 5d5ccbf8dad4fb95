//! Poster accounts: each poster registers its own user over the REST API before the ramp, so
//! its comments are rate-limited per user as real viewers' are. A 429 is waited out as its
//! `Retry-After` says; any other refusal stops the run with the server's message.
//!
//! Kept out: posting (`client`).

use std::time::Duration;

use anyhow::{Context, bail};
use futures_util::{StreamExt, stream};
use serde::Deserialize;

const PASSWORD: &str = "banter-load password 1";
const PARALLEL_SIGNUPS: usize = 8;
const MAX_RETRIES: u32 = 20;

#[derive(Deserialize)]
struct Tokens {
    access_token: String,
}

/// Registers `count` users named after `run_tag` and returns their access tokens in order.
pub async fn register_posters(
    http: &reqwest::Client,
    api_base: &str,
    run_tag: &str,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let results: Vec<anyhow::Result<String>> = stream::iter(0..count)
        .map(|i| register_one(http, api_base, run_tag, i))
        .buffered(PARALLEL_SIGNUPS)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn register_one(
    http: &reqwest::Client,
    api_base: &str,
    run_tag: &str,
    i: usize,
) -> anyhow::Result<String> {
    let username = format!("bl-{run_tag}-{i}");
    let body = serde_json::json!({
        "email": format!("{username}@load.banter.invalid"),
        "username": username,
        "password": PASSWORD,
        "device_id": format!("banter-load-{run_tag}-{i}"),
    });
    let url = format!("{api_base}/api/auth/register");
    for _ in 0..MAX_RETRIES {
        let response = http
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        let status = response.status();
        if status.as_u16() == 429 {
            let wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait.clamp(1, 60))).await;
            continue;
        }
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("registering poster {username} failed with {status}: {text}");
        }
        let tokens: Tokens = serde_json::from_str(&text)
            .with_context(|| format!("register reply has no access_token: {text}"))?;
        return Ok(tokens.access_token);
    }
    bail!(
        "registering poster {username}: still rate-limited after {MAX_RETRIES} tries; raise BANTER_RATE_REGISTER_PER_MINUTE on the server"
    )
}
