//! Password hashing with Argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane),
//! run on the blocking pool so it never stalls the async workers.
//!
//! A login for an unknown user verifies against a dummy hash made with the same parameters, so
//! it costs the same as a wrong password and response time does not reveal which accounts exist.

use std::sync::Arc;

use anyhow::Context;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    dummy_hash: String,
}

impl PasswordHasher {
    /// OWASP parameters for Argon2id.
    pub fn owasp() -> anyhow::Result<Self> {
        Self::with_params(Params::new(19 * 1024, 2, 1, None).map_err(anyhow::Error::msg)?)
    }

    fn with_params(params: Params) -> anyhow::Result<Self> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let dummy_hash = argon2
            .hash_password(b"banter-dummy-password-for-timing")
            .map_err(anyhow::Error::msg)?
            .to_string();
        Ok(Self {
            inner: Arc::new(Inner { params, dummy_hash }),
        })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            self.inner.params.clone(),
        )
    }

    pub async fn hash(&self, password: String) -> anyhow::Result<String> {
        let argon2 = self.argon2();
        tokio::task::spawn_blocking(move || {
            argon2
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(anyhow::Error::msg)
        })
        .await
        .context("password hashing task failed")?
    }

    /// Verifies `password` against `hash`, or against the dummy hash when `hash` is `None`
    /// (unknown user), in which case the answer is always `false`.
    pub async fn verify(&self, password: String, hash: Option<String>) -> anyhow::Result<bool> {
        let argon2 = self.argon2();
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.inner.dummy_hash.clone());
        tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(anyhow::Error::msg)?;
            Ok(argon2.verify_password(password.as_bytes(), &parsed).is_ok() && known)
        })
        .await
        .context("password verification task failed")?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::owasp().unwrap();
        let hash = hasher.hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(
            hasher
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), Some(hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let hasher = PasswordHasher::owasp().unwrap();
        assert!(
            !hasher
                .verify("banter-dummy-password-for-timing".into(), None)
                .await
                .unwrap()
        );
    }
}
