//! Access tokens: HS256 JWTs, short-lived, with the algorithm pinned on verification (a token
//! claiming `alg: none` or any other algorithm is refused). Keys rotate through a list: the first
//! secret signs, every secret verifies, so a new key can be introduced before the old one is
//! retired. Each token names the session it belongs to (`sid`, its refresh-token family), so it
//! dies with that session however long it has left.

use std::time::Duration;

use banter_core::{DeviceId, UserId};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

const ISSUER: &str = "banter";

#[derive(Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user id.
    pub sub: String,
    /// The device the token was issued to.
    pub did: String,
    /// The session (refresh-token family) the token belongs to.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token has expired")]
    Expired,
    #[error("access token is invalid")]
    Invalid,
}

/// What a valid access token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub user: UserId,
    pub device: DeviceId,
    pub session: uuid::Uuid,
    /// Unix seconds.
    pub expires_at: i64,
}

pub struct JwtKeys {
    signing: EncodingKey,
    verifying: Vec<DecodingKey>,
    validation: Validation,
    ttl: Duration,
}

impl JwtKeys {
    /// `secrets` must not be empty; the first one signs.
    pub fn new(secrets: &[SecretString], ttl: Duration) -> anyhow::Result<Self> {
        let first = secrets
            .first()
            .ok_or_else(|| anyhow::anyhow!("at least one JWT secret is required"))?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "sub", "iss"]);
        validation.leeway = 5;
        Ok(Self {
            signing: EncodingKey::from_secret(first.expose_secret().as_bytes()),
            verifying: secrets
                .iter()
                .map(|s| DecodingKey::from_secret(s.expose_secret().as_bytes()))
                .collect(),
            validation,
            ttl,
        })
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(
        &self,
        user: UserId,
        device: &DeviceId,
        session: uuid::Uuid,
    ) -> anyhow::Result<String> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let claims = AccessClaims {
            sub: user.to_string(),
            did: device.as_ref().to_owned(),
            sid: session.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
            iss: ISSUER.to_owned(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.signing,
        )?)
    }

    /// Checks signature (against every key), algorithm, issuer and expiry.
    pub fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let mut expired = false;
        for key in &self.verifying {
            match jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation) {
                Ok(data) => {
                    let user = data.claims.sub.parse().map_err(|_| TokenError::Invalid)?;
                    let device =
                        DeviceId::parse(&data.claims.did).map_err(|_| TokenError::Invalid)?;
                    let session = data.claims.sid.parse().map_err(|_| TokenError::Invalid)?;
                    return Ok(Verified {
                        user,
                        device,
                        session,
                        expires_at: data.claims.exp,
                    });
                }
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => expired = true,
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(_) => return Err(TokenError::Invalid),
            }
        }
        Err(if expired {
            TokenError::Expired
        } else {
            TokenError::Invalid
        })
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    fn keys(secrets: &[&str]) -> JwtKeys {
        let secrets: Vec<SecretString> = secrets.iter().map(|s| SecretString::from(*s)).collect();
        JwtKeys::new(&secrets, Duration::from_secs(900)).unwrap()
    }

    #[test]
    fn an_issued_token_verifies_to_its_user_and_device() {
        let keys = keys(&["k1-0123456789abcdef0123456789abcdef"]);
        let user = UserId::generate();
        let device = DeviceId::parse("dev-1").unwrap();
        let session = uuid::Uuid::now_v7();
        let token = keys.issue(user, &device, session).unwrap();
        let verified = keys.verify(&token).unwrap();
        assert_eq!(
            (verified.user, verified.device, verified.session),
            (user, device, session)
        );
        let now = OffsetDateTime::now_utc().unix_timestamp();
        assert!((now + 899..=now + 901).contains(&verified.expires_at));
    }

    #[test]
    fn a_token_signed_with_a_retired_key_still_verifies_while_that_key_is_listed() {
        let old = keys(&["old-key-0123456789abcdef0123456789"]);
        let token = old
            .issue(
                UserId::generate(),
                &DeviceId::parse("d").unwrap(),
                uuid::Uuid::now_v7(),
            )
            .unwrap();
        assert!(
            keys(&[
                "new-key-0123456789abcdef0123456789",
                "old-key-0123456789abcdef0123456789"
            ])
            .verify(&token)
            .is_ok()
        );
        assert_eq!(
            keys(&["new-key-0123456789abcdef0123456789"]).verify(&token),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn an_alg_none_token_is_refused() {
        let keys = keys(&["k1-0123456789abcdef0123456789abcdef"]);
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"{}","did":"d","iat":0,"exp":9999999999,"iss":"banter"}}"#,
            UserId::generate()
        ));
        assert_eq!(
            keys.verify(&format!("{header}.{claims}.")),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn a_tampered_token_is_refused() {
        let keys = keys(&["k1-0123456789abcdef0123456789abcdef"]);
        let token = keys
            .issue(
                UserId::generate(),
                &DeviceId::parse("d").unwrap(),
                uuid::Uuid::now_v7(),
            )
            .unwrap();
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = URL_SAFE_NO_PAD.encode(format!(
            r#"{{"sub":"{}","did":"d","iat":0,"exp":9999999999,"iss":"banter"}}"#,
            UserId::generate()
        ));
        assert_eq!(keys.verify(&parts.join(".")), Err(TokenError::Invalid));
    }

    #[test]
    fn an_expired_token_is_reported_as_expired() {
        let keys = keys(&["k1-0123456789abcdef0123456789abcdef"]);
        let claims = AccessClaims {
            sub: UserId::generate().to_string(),
            did: "d".into(),
            sid: uuid::Uuid::now_v7().to_string(),
            iat: 0,
            exp: 1,
            iss: ISSUER.into(),
        };
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.signing).unwrap();
        assert_eq!(keys.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_without_a_session_is_refused() {
        let keys = keys(&["k1-0123456789abcdef0123456789abcdef"]);
        let claims = serde_json::json!({
            "sub": UserId::generate().to_string(), "did": "d", "iat": 0, "exp": 9999999999i64, "iss": ISSUER,
        });
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.signing).unwrap();
        assert_eq!(keys.verify(&token), Err(TokenError::Invalid));
    }
}
