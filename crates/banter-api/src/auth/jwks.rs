//! `KeySet`: one identity provider's JSON Web Key Set, fetched over HTTP(S) and cached.
//!
//! - The set is kept as long as the response's `Cache-Control: max-age` (or `Expires`) says,
//!   clamped to [`JwksPolicy::min_ttl`, `max_ttl`], `default_ttl` without either header.
//! - Once stale, the cached keys are still used while one background refresh runs, and for
//!   `max_stale` more if the provider cannot be reached; past that, tokens of this issuer are
//!   answered "identity provider unavailable" (503) until a fetch succeeds.
//! - A token naming a key id (`kid`) the set does not hold triggers a refresh (key rotation), at
//!   most once per `min_refresh_interval`, so a flood of tokens with random `kid`s costs the
//!   provider one request per interval, not one per token.
//! - Concurrent refreshes are one request (a mutex around the fetch).
//!
//! Kept out: which issuer a token belongs to and what its claims mean (`external.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

/// How long key sets are kept and how often they may be fetched.
#[derive(Clone, Debug)]
pub struct JwksPolicy {
    pub default_ttl: Duration,
    pub min_ttl: Duration,
    pub max_ttl: Duration,
    /// How long stale keys keep working while the provider cannot be reached.
    pub max_stale: Duration,
    /// The shortest time between two fetches caused by unknown key ids (or failures).
    pub min_refresh_interval: Duration,
    pub fetch_timeout: Duration,
}

impl Default for JwksPolicy {
    fn default() -> Self {
        Self {
            default_ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(30),
            max_ttl: Duration::from_secs(24 * 3600),
            max_stale: Duration::from_secs(3600),
            min_refresh_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// One usable verification key.
#[derive(Clone)]
pub struct VerifyingKey {
    pub key: DecodingKey,
    /// The algorithm the set pins this key to, if it names one.
    pub algorithm: Option<Algorithm>,
}

/// Why no key could be found for a token.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the token's signing key is not in the issuer's key set")]
    UnknownKey,
    #[error("the identity provider's keys cannot be fetched: {0}")]
    Unavailable(String),
}

/// What readiness reports for one provider.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeySetHealth {
    /// Never fetched yet (nothing has needed it).
    NotFetched,
    Fresh,
    /// Past its lifetime; the last refresh failed, the cached keys are still used.
    Stale,
    /// No usable keys: never fetched successfully, or stale for longer than `max_stale`.
    Unavailable,
}

struct Cached {
    keys: HashMap<String, VerifyingKey>,
    /// Keys published without a `kid`.
    anonymous: Vec<VerifyingKey>,
    fresh_until: Instant,
}

#[derive(Default)]
struct State {
    cached: Option<Arc<Cached>>,
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    /// Fetches completed (either way): a caller that waited for another's fetch sees it moved.
    fetches: u64,
}

enum RefreshError {
    /// A fetch ran less than `min_refresh_interval` ago.
    RateLimited,
    Failed(String),
}

pub struct KeySet {
    url: String,
    client: reqwest::Client,
    policy: JwksPolicy,
    state: Mutex<State>,
    fetch: tokio::sync::Mutex<()>,
    background: AtomicBool,
    label: String,
}

impl KeySet {
    pub fn new(label: &str, url: &str, client: reqwest::Client, policy: JwksPolicy) -> Arc<Self> {
        Arc::new(Self {
            url: url.to_owned(),
            client,
            policy,
            state: Mutex::new(State::default()),
            fetch: tokio::sync::Mutex::new(()),
            background: AtomicBool::new(false),
            label: label.to_owned(),
        })
    }

    pub fn health(&self) -> KeySetHealth {
        let state = self.state.lock().expect("key set lock");
        let now = Instant::now();
        match &state.cached {
            None if state.last_attempt.is_none() => KeySetHealth::NotFetched,
            None => KeySetHealth::Unavailable,
            Some(c) if now < c.fresh_until => KeySetHealth::Fresh,
            Some(c) if now < c.fresh_until + self.policy.max_stale => KeySetHealth::Stale,
            Some(_) => KeySetHealth::Unavailable,
        }
    }

    /// The last fetch error, until a fetch succeeds.
    pub fn last_error(&self) -> Option<String> {
        self.state.lock().expect("key set lock").last_error.clone()
    }

    /// Fetches the set now, unless it was fetched within the refresh interval (start-up).
    pub async fn warm_up(&self) {
        let _ = self.refresh().await;
    }

    /// The keys a token with this `kid` may be verified with.
    pub async fn keys_for(
        self: &Arc<Self>,
        kid: Option<&str>,
    ) -> Result<Vec<VerifyingKey>, KeyError> {
        let cached = self.state.lock().expect("key set lock").cached.clone();
        let now = Instant::now();
        if let Some(cached) = cached.filter(|c| now < c.fresh_until + self.policy.max_stale) {
            if now >= cached.fresh_until {
                self.refresh_in_background();
            }
            if let Some(found) = lookup(&cached, kid) {
                return Ok(found);
            }
            // A kid we do not hold: the provider may have rotated its keys.
            return match self.refresh().await {
                Ok(fresh) => lookup(&fresh, kid).ok_or(KeyError::UnknownKey),
                Err(RefreshError::RateLimited) => Err(KeyError::UnknownKey),
                Err(RefreshError::Failed(e)) => Err(KeyError::Unavailable(e)),
            };
        }
        // Nothing usable: fetch now (or take the fetch in flight).
        match self.refresh().await {
            Ok(fresh) => lookup(&fresh, kid).ok_or(KeyError::UnknownKey),
            Err(RefreshError::RateLimited) => Err(KeyError::Unavailable(
                self.last_error()
                    .unwrap_or_else(|| "the key set has expired".into()),
            )),
            Err(RefreshError::Failed(e)) => Err(KeyError::Unavailable(e)),
        }
    }

    fn refresh_in_background(self: &Arc<Self>) {
        if self.background.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let _ = this.refresh().await;
            this.background.store(false, Ordering::Release);
        });
    }

    /// One fetch for all concurrent callers (a caller that waited for another's fetch takes
    /// its result), at most one per `min_refresh_interval`.
    async fn refresh(&self) -> Result<Arc<Cached>, RefreshError> {
        let seen = self.state.lock().expect("key set lock").fetches;
        let _one = self.fetch.lock().await;
        {
            let mut state = self.state.lock().expect("key set lock");
            if state.fetches != seen {
                return match (&state.last_error, &state.cached) {
                    (None, Some(cached)) => Ok(cached.clone()),
                    (Some(e), _) => Err(RefreshError::Failed(e.clone())),
                    (None, None) => Err(RefreshError::RateLimited),
                };
            }
            if state
                .last_attempt
                .is_some_and(|at| at.elapsed() < self.policy.min_refresh_interval)
            {
                return Err(RefreshError::RateLimited);
            }
            state.last_attempt = Some(Instant::now());
        }
        let result = self.fetch().await;
        metrics::counter!(
            "banter_jwks_fetches_total",
            "issuer" => self.label.clone(),
            "outcome" => if result.is_ok() { "ok" } else { "error" }
        )
        .increment(1);
        let mut state = self.state.lock().expect("key set lock");
        state.fetches += 1;
        match result {
            Ok(cached) => {
                let cached = Arc::new(cached);
                state.cached = Some(cached.clone());
                state.last_error = None;
                Ok(cached)
            }
            Err(e) => {
                tracing::warn!(issuer = %self.label, url = %self.url, error = %e, "JWKS fetch failed");
                state.last_error = Some(e.clone());
                Err(RefreshError::Failed(e))
            }
        }
    }

    async fn fetch(&self) -> Result<Cached, String> {
        let response = self
            .client
            .get(&self.url)
            .timeout(self.policy.fetch_timeout)
            .send()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        if !response.status().is_success() {
            return Err(format!("GET {}: HTTP {}", self.url, response.status()));
        }
        let ttl = lifetime(response.headers(), &self.policy);
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("GET {}: {e}", self.url))?;
        let set: JwkSet = serde_json::from_slice(&body)
            .map_err(|e| format!("{} is not a JWK set: {e}", self.url))?;
        let mut keys = HashMap::new();
        let mut anonymous = Vec::new();
        for jwk in &set.keys {
            let Some(key) = verifying_key(jwk) else {
                continue;
            };
            match &jwk.common.key_id {
                Some(kid) => {
                    keys.insert(kid.clone(), key);
                }
                None => anonymous.push(key),
            }
        }
        Ok(Cached {
            keys,
            anonymous,
            fresh_until: Instant::now() + ttl,
        })
    }
}

fn lookup(cached: &Cached, kid: Option<&str>) -> Option<Vec<VerifyingKey>> {
    match kid {
        Some(kid) => cached.keys.get(kid).map(|k| vec![k.clone()]),
        // No kid: every key may be the one (providers with a single key omit it).
        None => {
            let all: Vec<VerifyingKey> = cached
                .keys
                .values()
                .chain(&cached.anonymous)
                .cloned()
                .collect();
            (!all.is_empty()).then_some(all)
        }
    }
}

/// A signature key of a kind we verify (RSA, EC P-256, Ed25519); encryption keys, symmetric
/// keys and unknown kinds are skipped.
fn verifying_key(jwk: &Jwk) -> Option<VerifyingKey> {
    if matches!(jwk.common.public_key_use, Some(ref u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    if matches!(
        jwk.algorithm,
        jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)
    ) {
        return None;
    }
    let algorithm = match jwk.common.key_algorithm {
        None => None,
        Some(alg) => Some(key_algorithm(alg)?),
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(VerifyingKey { key, algorithm })
}

fn key_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// How long a response may be cached: `Cache-Control: max-age` (`no-store`/`no-cache`: the
/// minimum), else `Expires`, else the default; clamped to the policy's bounds.
fn lifetime(headers: &reqwest::header::HeaderMap, policy: &JwksPolicy) -> Duration {
    let from_cache_control = headers
        .get_all(reqwest::header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|directive| {
            let directive = directive.trim().to_ascii_lowercase();
            if directive == "no-store" || directive == "no-cache" {
                return Some(Duration::ZERO);
            }
            let secs = directive.strip_prefix("max-age=")?;
            secs.trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs)
        });
    let from_expires = || {
        let value = headers.get(reqwest::header::EXPIRES)?.to_str().ok()?;
        let at = httpdate::parse_http_date(value).ok()?;
        Some(
            at.duration_since(std::time::SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    };
    from_cache_control
        .or_else(from_expires)
        .unwrap_or(policy.default_ttl)
        .clamp(policy.min_ttl, policy.max_ttl)
}

#[cfg(test)]
mod tests {
    use reqwest::header::{CACHE_CONTROL, EXPIRES, HeaderMap, HeaderValue};

    use super::*;

    fn headers(pairs: &[(reqwest::header::HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_lifetime_follows_the_cache_headers_within_bounds() {
        let policy = JwksPolicy::default();
        let secs = |h: &HeaderMap| lifetime(h, &policy).as_secs();
        assert_eq!(
            secs(&headers(&[(CACHE_CONTROL, "public, max-age=3600")])),
            3600
        );
        assert_eq!(secs(&headers(&[(CACHE_CONTROL, "max-age=5")])), 30, "min");
        assert_eq!(
            secs(&headers(&[(CACHE_CONTROL, "max-age=999999")])),
            86400,
            "max"
        );
        assert_eq!(secs(&headers(&[(CACHE_CONTROL, "no-cache")])), 30);
        assert_eq!(secs(&headers(&[])), 300, "default");
        let in_an_hour =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3600));
        let expires = secs(&headers(&[(EXPIRES, &in_an_hour)]));
        assert!((3590..=3600).contains(&expires), "{expires}");
        assert_eq!(
            secs(&headers(&[
                (EXPIRES, &in_an_hour),
                (CACHE_CONTROL, "max-age=120")
            ])),
            120,
            "max-age wins over Expires"
        );
    }

    #[test]
    fn symmetric_and_encryption_keys_are_not_used_to_verify() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": "sXch", "e": "AQAB"},
            {"kty": "RSA", "kid": "sig", "use": "sig", "alg": "RS256", "n": "sXch", "e": "AQAB"},
            {"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ]}))
        .unwrap();
        let usable: Vec<(String, Option<Algorithm>)> = set
            .keys
            .iter()
            .filter_map(|jwk| {
                verifying_key(jwk).map(|k| (jwk.common.key_id.clone().unwrap(), k.algorithm))
            })
            .collect();
        assert_eq!(
            usable,
            vec![("sig".into(), Some(Algorithm::RS256)), ("ed".into(), None)]
        );
    }
}
