//! API keys for trusted backends: a bearer token `bk_<key id>_<secret>` (the id names the
//! stored key, the secret is 32 random bytes in hex, stored only as its SHA-256), with scopes:
//! `post` (comments as the key's system author), `announce` (a pinned announcement on a video)
//! and `moderate` (what a site moderator may do). A key works on REST only, where a route's
//! scope allows it ([`required_scope`]); every use is written to the moderation log.
//!
//! Kept out: storage (`banter-store`'s `api_keys.rs`), the routes that manage keys
//! (`routes/api_keys.rs`).

use actix_web::http::Method;
use sha2::{Digest, Sha256};
use uuid::Uuid;

pub const PREFIX: &str = "bk_";
pub const SCOPES: &[&str] = &["post", "announce", "moderate"];

/// A presented key: its id and secret, not yet checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedKey {
    pub id: Uuid,
    secret: String,
}

impl PresentedKey {
    /// `bk_<32 hex>_<64 hex>`, or `None`.
    pub fn parse(token: &str) -> Option<PresentedKey> {
        let rest = token.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let id = Uuid::try_parse(id).ok()?;
        (secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
            PresentedKey {
                id,
                secret: secret.to_ascii_lowercase(),
            }
        })
    }

    /// Whether the secret is the one `stored_hash` was made from (in constant time).
    pub fn matches(&self, stored_hash: &str) -> bool {
        let ours = hash(&self.secret);
        ours.len() == stored_hash.len()
            && ours
                .bytes()
                .zip(stored_hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A new key: its id, the token to hand out once, and the hash to store.
pub fn generate() -> anyhow::Result<(Uuid, String, String)> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let secret = hex::encode(bytes);
    let id = Uuid::now_v7();
    Ok((
        id,
        format!("{PREFIX}{}_{secret}", id.simple()),
        hash(&secret),
    ))
}

/// The scope a key needs for a route (its pattern and method); `None`: keys may not call it.
pub fn required_scope(method: &Method, pattern: &str) -> Option<&'static str> {
    let read = method == Method::GET || method == Method::HEAD;
    if read && pattern.starts_with("/api/videos/") {
        return Some("read");
    }
    match (method.as_str(), pattern) {
        ("POST", "/api/videos/{video_id}/comments") => Some("post"),
        ("POST", "/api/videos/{video_id}/announcements") => Some("announce"),
        (
            "PUT" | "DELETE",
            "/api/videos/{video_id}/bans/{user_id}"
            | "/api/bans/{user_id}"
            | "/api/videos/{video_id}/pin",
        )
        | (
            "DELETE",
            "/api/videos/{video_id}/users/{user_id}/comments" | "/api/comments/{comment_id}",
        )
        | ("PATCH", "/api/videos/{video_id}/chat")
        | ("PUT", "/api/videos/{video_id}/blocked-terms")
        | ("POST", "/api/videos/{video_id}/held-comments/{comment_id}/approve")
        | ("DELETE", "/api/videos/{video_id}/held-comments/{comment_id}")
        | ("GET", "/api/bans") => Some("moderate"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_parses_and_matches_only_its_hash() {
        let (id, token, stored) = generate().unwrap();
        let presented = PresentedKey::parse(&token).unwrap();
        assert_eq!(presented.id, id);
        assert!(presented.matches(&stored));
        let (_, other, other_hash) = generate().unwrap();
        assert!(!presented.matches(&other_hash));
        assert!(!PresentedKey::parse(&other).unwrap().matches(&stored));
        for bad in [
            "",
            "bk_",
            "bk_x_y",
            &token[..token.len() - 1],
            &token.replace("bk_", "bx_"),
        ] {
            assert!(PresentedKey::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn routes_need_their_scope_and_account_routes_none() {
        assert_eq!(
            required_scope(&Method::POST, "/api/videos/{video_id}/comments"),
            Some("post")
        );
        assert_eq!(
            required_scope(&Method::PUT, "/api/videos/{video_id}/bans/{user_id}"),
            Some("moderate")
        );
        assert_eq!(
            required_scope(&Method::GET, "/api/videos/{video_id}/comments"),
            Some("read")
        );
        for (method, path) in [
            (Method::GET, "/api/me"),
            (Method::PATCH, "/api/me"),
            (Method::POST, "/api/videos"),
            (Method::GET, "/api/admin/users"),
            (Method::POST, "/api/webhooks"),
        ] {
            assert_eq!(required_scope(&method, path), None, "{method} {path}");
        }
    }
}
