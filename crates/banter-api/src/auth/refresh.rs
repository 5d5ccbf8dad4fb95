//! Refresh tokens: 32 bytes, base64url, handed to the client once. Only their SHA-256 is
//! stored, so a database leak does not leak usable tokens.
//!
//! A sign-in's first token is random. Each rotation's successor is the HMAC of the token it
//! replaces under a server key ([`SuccessorKey`]): unpredictable without the key, and the same
//! every time the same token is presented, which is what lets the store hand a just-rotated
//! token's successor out again within the reuse grace window without storing any token.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

pub struct RefreshToken {
    pub token: String,
    pub hash: String,
}

impl RefreshToken {
    pub fn generate() -> anyhow::Result<Self> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let hash = hash_refresh_token(&token);
        Ok(Self { token, hash })
    }
}

/// The key successors are derived with: the first JWT secret, through a hash with a label of
/// its own, so the two uses never share a key.
#[derive(Clone)]
pub struct SuccessorKey(Hmac<Sha256>);

impl SuccessorKey {
    pub fn new(secret: &SecretString) -> Self {
        let key = Sha256::new()
            .chain_update(b"banter refresh-token successor key\0")
            .chain_update(secret.expose_secret().as_bytes())
            .finalize();
        Self(Hmac::new_from_slice(&key).expect("HMAC takes any key length"))
    }

    /// The token that replaces `old` when it is rotated.
    pub fn successor(&self, old: &str) -> RefreshToken {
        let mut mac = self.0.clone();
        mac.update(old.as_bytes());
        let token = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        let hash = hash_refresh_token(&token);
        RefreshToken { token, hash }
    }
}

pub fn hash_refresh_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_stored_only_as_their_hash() {
        let a = RefreshToken::generate().unwrap();
        let b = RefreshToken::generate().unwrap();
        assert_ne!(a.token, b.token);
        assert_eq!(a.hash, hash_refresh_token(&a.token));
        assert!(!a.hash.contains(&a.token));
    }

    #[test]
    fn a_successor_is_fixed_by_its_predecessor_and_the_key() {
        let key = SuccessorKey::new(&SecretString::from("k".repeat(32)));
        let other = SuccessorKey::new(&SecretString::from("j".repeat(32)));
        let a = key.successor("old-token");
        assert_eq!(a.token, key.successor("old-token").token);
        assert_ne!(a.token, key.successor("old-tokeN").token);
        assert_ne!(a.token, other.successor("old-token").token);
        assert_eq!(a.token.len(), 43, "32 bytes, base64url");
        assert_eq!(a.hash, hash_refresh_token(&a.token));
    }
}
