//! Password hashing with Argon2id at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane),
//! run on the blocking pool so it never stalls the async workers.
//!
//! A login for an unknown user verifies against a dummy hash made with the same parameters, so
//! it costs the same as a wrong password and response time does not reveal which accounts exist.
//!
//! Each hash holds 19 MiB and a core for tens of milliseconds, so a node runs at most
//! `max_in_flight` at once (`BANTER_PASSWORD_HASHES_IN_FLIGHT`); a request beyond that waits up to
//! `max_wait` for a turn, then gets [`HashError::Busy`] (503 with `Retry-After`), so a flood of
//! sign-ins or password checks can neither exhaust memory nor queue without bound.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

/// How many hashes a node runs at once, and how long a request waits for a turn.
#[derive(Clone, Copy, Debug)]
pub struct HashLimits {
    pub max_in_flight: usize,
    pub max_wait: Duration,
}

impl Default for HashLimits {
    fn default() -> Self {
        Self {
            max_in_flight: 4,
            max_wait: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed taken for the whole wait.
    #[error("too many password checks in progress")]
    Busy { retry_after: Duration },
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl From<HashError> for crate::ApiError {
    fn from(err: HashError) -> Self {
        match err {
            HashError::Busy { retry_after } => crate::ApiError::Busy { retry_after },
            HashError::Failed(e) => crate::ApiError::Unexpected(e),
        }
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    dummy_hash: String,
    slots: tokio::sync::Semaphore,
    max_wait: Duration,
}

impl PasswordHasher {
    /// OWASP parameters for Argon2id.
    pub fn owasp(limits: HashLimits) -> anyhow::Result<Self> {
        Self::with_params(
            Params::new(19 * 1024, 2, 1, None).map_err(anyhow::Error::msg)?,
            limits,
        )
    }

    fn with_params(params: Params, limits: HashLimits) -> anyhow::Result<Self> {
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
        let dummy_hash = argon2
            .hash_password(b"banter-dummy-password-for-timing")
            .map_err(anyhow::Error::msg)?
            .to_string();
        Ok(Self {
            inner: Arc::new(Inner {
                params,
                dummy_hash,
                slots: tokio::sync::Semaphore::new(limits.max_in_flight.max(1)),
                max_wait: limits.max_wait,
            }),
        })
    }

    /// A hashing slot, waited for at most `max_wait`.
    async fn slot(&self) -> Result<tokio::sync::SemaphorePermit<'_>, HashError> {
        match tokio::time::timeout(self.inner.max_wait, self.inner.slots.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(anyhow::anyhow!("password hashing is shut down").into()),
            Err(_) => {
                metrics::counter!(crate::rate_limit::RATE_LIMITED_METRIC, "limit" => "password_hashes_in_flight")
                    .increment(1);
                Err(HashError::Busy {
                    retry_after: Duration::from_secs(1),
                })
            }
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            self.inner.params.clone(),
        )
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let _slot = self.slot().await?;
        let argon2 = self.argon2();
        let hashed = tokio::task::spawn_blocking(move || {
            argon2
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(anyhow::Error::msg)
        })
        .await
        .context("password hashing task failed")??;
        Ok(hashed)
    }

    /// Verifies `password` against `hash`, or against the dummy hash when `hash` is `None`
    /// (unknown user), in which case the answer is always `false`.
    pub async fn verify(&self, password: String, hash: Option<String>) -> Result<bool, HashError> {
        let _slot = self.slot().await?;
        let argon2 = self.argon2();
        // An account without a password (an external provider's user) verifies like an
        // unknown one: against the dummy, always false.
        let hash = hash.filter(|h| h != banter_store::NO_PASSWORD);
        let known = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.inner.dummy_hash.clone());
        let verified = tokio::task::spawn_blocking(move || {
            let parsed = PasswordHash::new(&hash).map_err(anyhow::Error::msg)?;
            Ok::<_, anyhow::Error>(
                argon2.verify_password(password.as_bytes(), &parsed).is_ok() && known,
            )
        })
        .await
        .context("password verification task failed")??;
        Ok(verified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::owasp(HashLimits::default()).unwrap();
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashes_beyond_the_bound_wait_then_are_refused_as_busy() {
        // Cheap parameters: the bound, not Argon2, is under test.
        let params = Params::new(8, 1, 1, None).unwrap();
        let hasher = PasswordHasher::with_params(
            params,
            HashLimits {
                max_in_flight: 1,
                max_wait: Duration::from_millis(50),
            },
        )
        .unwrap();
        let held = hasher.slot().await.unwrap();
        match hasher.verify("pw".into(), None).await {
            Err(HashError::Busy { retry_after }) => assert!(retry_after >= Duration::from_secs(1)),
            other => panic!("expected busy, got {other:?}"),
        }
        drop(held);
        assert!(!hasher.verify("pw".into(), None).await.unwrap());
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies_even_with_the_dummy_password() {
        let hasher = PasswordHasher::owasp(HashLimits::default()).unwrap();
        assert!(
            !hasher
                .verify("banter-dummy-password-for-timing".into(), None)
                .await
                .unwrap()
        );
    }
}
