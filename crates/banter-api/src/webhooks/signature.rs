//! Signing an event for its receiver, as the Standard Webhooks specification does: the
//! headers `webhook-id` (the event's id, the same on every attempt: the idempotency key),
//! `webhook-timestamp` (Unix seconds of this attempt: a receiver refuses old ones, against
//! replay) and `webhook-signature` (`v1,` then the base64 HMAC-SHA256 of
//! `{id}.{timestamp}.{body}`). The key is the secret's bytes after `whsec_`, base64-decoded;
//! a configured secret without that prefix is used as it is.
//!
//! Kept out: when and where events are sent (`dispatcher.rs`).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A new subscription's secret: `whsec_` and 32 random bytes in base64.
pub fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!("whsec_{}", STANDARD.encode(bytes)))
}

fn key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// The `webhook-signature` header's value for this attempt.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key(secret)).expect("HMAC takes any key");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The specification's published example.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn secrets_are_random_and_prefixed() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert!(a.starts_with("whsec_") && a.len() > 40);
        assert_ne!(a, b);
        assert_ne!(sign(&a, "1", 1, "{}"), sign(&b, "1", 1, "{}"));
    }
}
