//! The dispatcher: one task per API node that, every `poll_interval`, moves new events into
//! deliveries, claims the due ones (a lease of twice an attempt's timeout, plus a second) and
//! posts each on its own task, at most `concurrency` at once per subscription, so one slow or
//! failing receiver neither holds up the others nor comment posting (which only writes the
//! outbox). A 2xx answer completes a delivery; anything else (an error status, a refused
//! connection, no answer within `timeout`) schedules the next attempt after an exponential
//! backoff with jitter, or makes it dead after `max_attempts`. A node that stops mid-delivery
//! leaves a lease that runs out; another node then sends the same event again, with the same
//! `webhook-id`.
//!
//! Kept out: the SQL (`banter-store`), signing (`signature.rs`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use banter_store::{Delivery, NewSubscription, Store};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::{JoinHandle, JoinSet};
use uuid::Uuid;

use super::{WebhookConfig, sign};

/// Events moved into deliveries per round, and deliveries looked at per round.
const EXPAND_BATCH: u32 = 500;
const DUE_BATCH: u32 = 200;

pub struct Dispatcher {
    task: JoinHandle<()>,
}

impl Dispatcher {
    /// Starts this node's dispatcher; it first makes the configured subscriptions the stored
    /// ones.
    pub fn spawn(store: Store, config: WebhookConfig) -> anyhow::Result<Dispatcher> {
        let client = crate::outbound_client()?;
        let task = tokio::spawn(run(store, client, config));
        Ok(Dispatcher { task })
    }

    /// Stops it, and every delivery in flight (their leases run out; another node resends).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Now, in Unix milliseconds (the outbox's clock).
pub(crate) fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

async fn run(store: Store, client: reqwest::Client, config: WebhookConfig) {
    let mut synced = false;
    let mut in_flight: HashMap<Uuid, usize> = HashMap::new();
    let mut tasks: JoinSet<Uuid> = JoinSet::new();
    let mut ticker = tokio::time::interval(config.poll_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stats_at = Instant::now() - Duration::from_secs(60);
    loop {
        ticker.tick().await;
        while let Some(done) = tasks.try_join_next() {
            if let Ok(subscription) = done
                && let Some(n) = in_flight.get_mut(&subscription)
            {
                *n = n.saturating_sub(1);
            }
        }
        if !synced {
            synced = sync(&store, &config).await;
        }
        if let Err(e) = round(&store, &client, &config, &mut in_flight, &mut tasks).await {
            tracing::warn!(error = %e, "webhook dispatch round failed");
        }
        if stats_at.elapsed() >= Duration::from_secs(5) {
            stats_at = Instant::now();
            if let Ok(stats) = store.primary().outbox_stats().await {
                metrics::gauge!("banter_webhook_outbox_depth", "state" => "events")
                    .set(stats.events as f64);
                metrics::gauge!("banter_webhook_outbox_depth", "state" => "pending")
                    .set(stats.pending as f64);
                metrics::gauge!("banter_webhook_outbox_depth", "state" => "dead")
                    .set(stats.dead as f64);
                let age = stats.oldest.map_or(0.0, |at| {
                    (OffsetDateTime::now_utc() - at).as_seconds_f64().max(0.0)
                });
                metrics::gauge!("banter_webhook_outbox_age_seconds").set(age);
            }
        }
    }
}

async fn sync(store: &Store, config: &WebhookConfig) -> bool {
    let configured: Vec<NewSubscription<'_>> = config
        .configured
        .iter()
        .map(|c| NewSubscription {
            owner_id: None,
            name: Some(&c.name),
            url: &c.url,
            events: &c.events,
            secret: &c.secret,
        })
        .collect();
    match store
        .primary()
        .sync_configured_subscriptions(&configured)
        .await
    {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "could not store the configured webhooks; retrying");
            false
        }
    }
}

async fn round(
    store: &Store,
    client: &reqwest::Client,
    config: &WebhookConfig,
    in_flight: &mut HashMap<Uuid, usize>,
    tasks: &mut JoinSet<Uuid>,
) -> Result<(), banter_store::StoreError> {
    let primary = store.primary();
    let now = now_ms();
    primary.expand_events(EXPAND_BATCH, now).await?;
    let lease = i64::try_from((config.timeout * 2 + Duration::from_secs(1)).as_millis())
        .unwrap_or(i64::MAX / 2);
    for delivery in primary.due_deliveries(now, DUE_BATCH).await? {
        let busy = in_flight.entry(delivery.subscription_id).or_default();
        if *busy >= config.concurrency {
            continue;
        }
        if !primary
            .claim_delivery(delivery.id, now, now + lease)
            .await?
        {
            continue;
        }
        *busy += 1;
        tasks.spawn(deliver(
            store.clone(),
            client.clone(),
            config.clone(),
            delivery,
        ));
    }
    Ok(())
}

/// The wait before attempt `attempts + 1`: `base × 2^(attempts − 1)`, capped, then a uniform
/// draw from its upper half (so receivers that failed together do not retry together).
pub(crate) fn backoff(config: &WebhookConfig, attempts: u32, unit: f64) -> Duration {
    let exp = config
        .backoff_base
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
        .min(config.backoff_max);
    exp.mul_f64(0.5 + 0.5 * unit.clamp(0.0, 1.0))
}

fn random_unit() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX)
}

async fn deliver(
    store: Store,
    client: reqwest::Client,
    config: WebhookConfig,
    d: Delivery,
) -> Uuid {
    let id = format!("evt_{}", d.event_id);
    let data: Value = serde_json::from_str(&d.payload).unwrap_or(Value::Null);
    let body = json!({
        "id": id,
        "type": d.kind,
        "created_at": d.created_at.format(&Rfc3339).unwrap_or_default(),
        "data": data,
    })
    .to_string();
    let timestamp = OffsetDateTime::now_utc().unix_timestamp();
    let started = Instant::now();
    let sent = client
        .post(&d.url)
        .timeout(config.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", sign(&d.secret, &id, timestamp, &body))
        .body(body)
        .send()
        .await;
    metrics::histogram!("banter_webhook_delivery_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    let outcome = match sent {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("HTTP {}", response.status())),
        Err(e) if e.is_timeout() => Err(format!(
            "no answer within {} ms",
            config.timeout.as_millis()
        )),
        Err(e) => Err(error_chain(&e)),
    };
    let primary = store.primary();
    let recorded = match outcome {
        Ok(()) => {
            metrics::counter!("banter_webhook_deliveries_total", "outcome" => "delivered")
                .increment(1);
            primary.complete_delivery(d.id).await
        }
        Err(error) => {
            let attempts = u32::try_from(d.attempts).unwrap_or(0) + 1;
            let dead = attempts >= config.max_attempts;
            let wait = backoff(&config, attempts, random_unit());
            let next = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
            metrics::counter!(
                "banter_webhook_deliveries_total",
                "outcome" => if dead { "dead" } else { "failed" }
            )
            .increment(1);
            if !dead {
                metrics::counter!("banter_webhook_retries_total").increment(1);
            }
            tracing::info!(delivery = d.id, url = %d.url, attempts, dead, error = %error, "webhook delivery failed");
            primary.fail_delivery(d.id, &error, next, dead).await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and the delivery is tried again: at least once.
        tracing::warn!(delivery = d.id, error = %e, "could not record a webhook delivery's outcome");
    }
    d.subscription_id
}

/// An error and its causes on one line (reqwest's own message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let config = WebhookConfig {
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            ..WebhookConfig::default()
        };
        let secs = |attempts, unit| backoff(&config, attempts, unit).as_secs_f64();
        assert_eq!(secs(1, 1.0), 1.0);
        assert_eq!(secs(2, 1.0), 2.0);
        assert_eq!(secs(4, 1.0), 8.0);
        assert_eq!(secs(4, 0.0), 4.0, "jitter keeps at least half");
        assert_eq!(secs(30, 1.0), 60.0, "capped");
        assert!((4.0..=8.0).contains(&secs(4, random_unit())));
    }
}
