//! Access tokens from external identity providers (Firebase Authentication, Cognito, Auth0,
//! any OIDC provider): `IssuerConfig` (one configured issuer: `iss`, accepted audiences, the
//! JWKS URL, accepted asymmetric algorithms, which claims hold the user id, username and
//! roles) and `ExternalIssuers`, which verifies a token against its issuer's keys and says who
//! it names (`ExternalIdentity`).
//!
//! - The algorithm is pinned per issuer and must also match the key's family and the key's own
//!   `alg`, so an HS256 token "signed" with a public key is refused (algorithm confusion).
//! - `iss`, `aud` and `exp` are required and checked (5 s leeway).
//! - Symmetric algorithms and `none` are refused when the configuration is read.
//!
//! Kept out: fetching and caching keys (`jwks.rs`), and the local user a subject becomes
//! (`principal.rs` and the store's `external_identities`).

use std::sync::Arc;

use banter_core::{Role, USERNAME_MAX_LEN, USERNAME_MIN_LEN, Username};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwks::{JwksPolicy, KeyError, KeySet, KeySetHealth};

/// Algorithms an external issuer may be configured to use: asymmetric only.
const ACCEPTABLE: &[(&str, Algorithm)] = &[
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

/// Banter's own tokens carry this `iss`; no external issuer may use it.
pub const LOCAL_ISSUER: &str = "banter";

/// One external issuer, as configured (`[[jwt_issuers]]` or `BANTER_JWT_ISSUERS`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// A short name for logs, metrics and readiness (`auth0`, `firebase`).
    pub name: String,
    /// The exact `iss` of its tokens.
    pub issuer: String,
    /// Accepted `aud` values; a token must name at least one.
    pub audience: Vec<String>,
    pub jwks_url: String,
    /// Accepted algorithms (default RS256).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// The claim holding the user's stable id at the provider.
    #[serde(default = "default_subject_claim")]
    pub subject_claim: String,
    /// The claim a new user's username is derived from (then `name`, then `email`).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim holding the user's roles (a string or an array of strings; a dotted path
    /// such as `realm_access.roles` reaches into objects). Unset: roles are managed in Banter.
    #[serde(default)]
    pub roles_claim: Option<String>,
    #[serde(default = "default_admin_roles")]
    pub admin_roles: Vec<String>,
    #[serde(default = "default_moderator_roles")]
    pub moderator_roles: Vec<String>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into()]
}
fn default_subject_claim() -> String {
    "sub".into()
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_admin_roles() -> Vec<String> {
    vec!["admin".into()]
}
fn default_moderator_roles() -> Vec<String> {
    vec!["moderator".into()]
}

/// Who a valid external token names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalIdentity {
    /// The issuer's `iss`.
    pub issuer: Arc<str>,
    pub subject: String,
    /// Usernames to try, in order, if this subject has no local user yet.
    pub usernames: Vec<Username>,
    /// The role the token's roles claim gives, where a roles claim is configured.
    pub role: Option<Role>,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExternalError {
    #[error("access token has expired")]
    Expired,
    #[error("access token is invalid: {0}")]
    Invalid(&'static str),
    #[error("the identity provider '{0}' cannot be reached and its cached keys have expired")]
    Unavailable(String),
}

struct Issuer {
    config: IssuerConfig,
    iss: Arc<str>,
    algorithms: Vec<Algorithm>,
    keys: Arc<KeySet>,
}

#[derive(Default)]
pub struct ExternalIssuers {
    issuers: Vec<Issuer>,
}

impl ExternalIssuers {
    pub fn new(
        configs: &[IssuerConfig],
        policy: &JwksPolicy,
        client: &reqwest::Client,
    ) -> anyhow::Result<Self> {
        let mut issuers = Vec::new();
        for config in configs {
            validate(config)?;
            if issuers
                .iter()
                .any(|i: &Issuer| i.config.name == config.name || i.config.issuer == config.issuer)
            {
                anyhow::bail!(
                    "JWT issuer '{}' is configured twice (names and issuers must be unique)",
                    config.name
                );
            }
            let algorithms = config
                .algorithms
                .iter()
                .map(|name| algorithm(name).expect("validated"))
                .collect();
            issuers.push(Issuer {
                keys: KeySet::new(
                    &config.name,
                    &config.jwks_url,
                    client.clone(),
                    policy.clone(),
                ),
                iss: config.issuer.as_str().into(),
                algorithms,
                config: config.clone(),
            });
        }
        Ok(Self { issuers })
    }

    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// Whether a token's (unverified) `iss` is one of the configured issuers.
    pub fn knows(&self, iss: &str) -> bool {
        self.issuers.iter().any(|i| &*i.iss == iss)
    }

    /// Fetches every issuer's key set in the background (start-up), so the first token does
    /// not wait for it.
    pub fn warm_up(&self) {
        for issuer in &self.issuers {
            let keys = issuer.keys.clone();
            tokio::spawn(async move { keys.warm_up().await });
        }
    }

    /// Each issuer's name, key-set health and last fetch error.
    pub fn health(&self) -> Vec<(String, KeySetHealth, Option<String>)> {
        self.issuers
            .iter()
            .map(|i| (i.config.name.clone(), i.keys.health(), i.keys.last_error()))
            .collect()
    }

    /// Verifies a token whose unverified `iss` is `iss`.
    pub async fn verify(&self, iss: &str, token: &str) -> Result<ExternalIdentity, ExternalError> {
        let issuer = self
            .issuers
            .iter()
            .find(|i| &*i.iss == iss)
            .ok_or(ExternalError::Invalid("unknown issuer"))?;
        let result = issuer.verify(token).await;
        let outcome = match &result {
            Ok(_) => "accepted",
            Err(ExternalError::Expired) => "expired",
            Err(ExternalError::Invalid(_)) => "invalid",
            Err(ExternalError::Unavailable(_)) => "unavailable",
        };
        metrics::counter!(
            "banter_external_tokens_total",
            "issuer" => issuer.config.name.clone(),
            "outcome" => outcome
        )
        .increment(1);
        result
    }
}

impl Issuer {
    async fn verify(&self, token: &str) -> Result<ExternalIdentity, ExternalError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| ExternalError::Invalid("malformed"))?;
        if !self.algorithms.contains(&header.alg) {
            return Err(ExternalError::Invalid(
                "algorithm not accepted for this issuer",
            ));
        }
        let keys = self
            .keys
            .keys_for(header.kid.as_deref())
            .await
            .map_err(|e| match e {
                KeyError::UnknownKey => ExternalError::Invalid("unknown signing key"),
                KeyError::Unavailable(_) => ExternalError::Unavailable(self.config.name.clone()),
            })?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&*self.iss]);
        validation.set_audience(&self.config.audience);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 5;
        let mut expired = false;
        for key in keys {
            if key.algorithm.is_some_and(|a| a != header.alg)
                || key.key.family() != header.alg.family()
            {
                continue;
            }
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return self.identity(&data.claims),
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => expired = true,
                Err(e) if matches!(e.kind(), ErrorKind::InvalidSignature) => continue,
                Err(e) => {
                    return Err(ExternalError::Invalid(match e.kind() {
                        ErrorKind::InvalidAudience => "wrong audience",
                        ErrorKind::InvalidIssuer => "wrong issuer",
                        ErrorKind::ImmatureSignature => "not valid yet",
                        ErrorKind::MissingRequiredClaim(_) => "a required claim is missing",
                        _ => "malformed",
                    }));
                }
            }
        }
        Err(if expired {
            ExternalError::Expired
        } else {
            ExternalError::Invalid("bad signature")
        })
    }

    fn identity(&self, claims: &Map<String, Value>) -> Result<ExternalIdentity, ExternalError> {
        let subject = match claim(claims, &self.config.subject_claim) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(ExternalError::Invalid("the subject claim is missing")),
        };
        if subject.is_empty() || subject.len() > 255 {
            return Err(ExternalError::Invalid(
                "the subject claim is empty or too long",
            ));
        }
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(ExternalError::Invalid("exp must be a number"))?;
        let hint = [self.config.username_claim.as_str(), "name", "email"]
            .into_iter()
            .find_map(|name| claim(claims, name).and_then(Value::as_str))
            .map(|s| s.split('@').next().unwrap_or(s))
            .unwrap_or("user");
        let role = self.config.roles_claim.as_deref().map(|name| {
            let roles: Vec<&str> = match claim(claims, name) {
                Some(Value::String(s)) => s.split_whitespace().collect(),
                Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let has = |wanted: &[String]| roles.iter().any(|r| wanted.iter().any(|w| w == r));
            if has(&self.config.admin_roles) {
                Role::Admin
            } else if has(&self.config.moderator_roles) {
                Role::Moderator
            } else {
                Role::User
            }
        });
        Ok(ExternalIdentity {
            issuer: self.iss.clone(),
            usernames: username_candidates(hint, &self.iss, &subject),
            subject,
            role,
            expires_at,
        })
    }
}

fn algorithm(name: &str) -> Option<Algorithm> {
    ACCEPTABLE
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, a)| *a)
}

fn validate(config: &IssuerConfig) -> anyhow::Result<()> {
    let name = &config.name;
    if name.is_empty() || config.issuer.is_empty() {
        anyhow::bail!("every JWT issuer needs a non-empty `name` and `issuer`");
    }
    if config.issuer == LOCAL_ISSUER {
        anyhow::bail!("JWT issuer '{name}': `issuer` may not be '{LOCAL_ISSUER}' (Banter's own)");
    }
    if config.audience.is_empty() || config.audience.iter().any(String::is_empty) {
        anyhow::bail!("JWT issuer '{name}': `audience` must list at least one non-empty value");
    }
    if !(config.jwks_url.starts_with("https://") || config.jwks_url.starts_with("http://")) {
        anyhow::bail!("JWT issuer '{name}': `jwks_url` must be an http(s) URL");
    }
    if config.algorithms.is_empty() {
        anyhow::bail!("JWT issuer '{name}': `algorithms` may not be empty");
    }
    for alg in &config.algorithms {
        if algorithm(alg).is_none() {
            let names: Vec<&str> = ACCEPTABLE.iter().map(|(n, _)| *n).collect();
            anyhow::bail!(
                "JWT issuer '{name}': algorithm '{alg}' is not accepted; use one of {} \
                 (symmetric algorithms and `none` are refused for external issuers)",
                names.join(", ")
            );
        }
    }
    Ok(())
}

/// A claim by name, or by dotted path into nested objects when no claim has the whole name
/// (`https://example.com/roles` is one claim; `realm_access.roles` is a path).
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// Usernames for a new user, best first: the hint reduced to the username alphabet, then with
/// `-2` … `-9`, then with a suffix derived from the subject (stable across nodes, so two nodes
/// provisioning at once agree).
pub fn username_candidates(hint: &str, issuer: &str, subject: &str) -> Vec<Username> {
    use sha2::Digest;
    let mut base: String = hint
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(USERNAME_MAX_LEN - 7)
        .collect();
    if base.chars().count() < USERNAME_MIN_LEN {
        base = format!("user{base}");
    }
    let digest = hex::encode(sha2::Sha256::digest(format!("{issuer}\n{subject}")));
    let mut names = vec![base.clone()];
    names.extend((2..=9).map(|n| format!("{base}-{n}")));
    names.push(format!("{base}-{}", &digest[..6]));
    names.push(format!("user-{}", &digest[..16]));
    names
        .into_iter()
        .filter_map(|n| Username::parse(&n).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> IssuerConfig {
        serde_json::from_value(serde_json::json!({
            "name": "idp", "issuer": "https://idp.example", "audience": ["banter"],
            "jwks_url": "https://idp.example/jwks.json",
        }))
        .unwrap()
    }

    #[test]
    fn symmetric_algorithms_and_the_local_issuer_are_refused_in_configuration() {
        let client = crate::outbound_client().unwrap();
        let policy = JwksPolicy::default();
        for (field, value, message) in [
            ("algorithms", serde_json::json!(["HS256"]), "HS256"),
            ("algorithms", serde_json::json!(["none"]), "none"),
            ("issuer", serde_json::json!("banter"), "Banter's own"),
            ("audience", serde_json::json!([]), "audience"),
            (
                "jwks_url",
                serde_json::json!("file:///etc/keys"),
                "jwks_url",
            ),
        ] {
            let mut config = serde_json::to_value(config_json()).unwrap();
            config[field] = value;
            let config: IssuerConfig = serde_json::from_value(config).unwrap();
            let err = ExternalIssuers::new(&[config], &policy, &client)
                .err()
                .unwrap_or_else(|| panic!("{field} accepted"))
                .to_string();
            assert!(err.contains(message), "{err}");
        }
        assert!(ExternalIssuers::new(&[config(), config()], &policy, &client).is_err());
        assert!(ExternalIssuers::new(&[config()], &policy, &client).is_ok());
    }

    fn config_json() -> Value {
        serde_json::json!({
            "name": "idp", "issuer": "https://idp.example", "audience": ["banter"],
            "jwks_url": "https://idp.example/jwks.json",
        })
    }

    #[test]
    fn claims_are_found_by_name_then_by_path() {
        let claims: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "https://example.com/roles": ["admin"],
            "realm_access": {"roles": ["moderator"]},
        }))
        .unwrap();
        assert_eq!(
            claim(&claims, "https://example.com/roles"),
            Some(&serde_json::json!(["admin"]))
        );
        assert_eq!(
            claim(&claims, "realm_access.roles"),
            Some(&serde_json::json!(["moderator"]))
        );
        assert_eq!(claim(&claims, "realm_access.groups"), None);
    }

    #[test]
    fn usernames_are_derived_into_the_username_alphabet() {
        fn names(hint: &str) -> Vec<String> {
            username_candidates(hint, "iss", "sub-1")
                .iter()
                .map(|u| u.as_ref().to_owned())
                .collect()
        }
        let jose = names("José Ramírez");
        assert_eq!(&jose[..3], ["JosRamrez", "JosRamrez-2", "JosRamrez-3"]);
        assert_eq!(jose.len(), 11);
        assert_eq!(names("_.x")[0], "userx");
        assert_eq!(names("")[0], "user");
        let long = names(&"a".repeat(100));
        assert!(long.iter().all(|n| n.len() <= USERNAME_MAX_LEN));
        // The fallback suffix is stable for a subject and differs between subjects.
        assert_eq!(names("ann")[9], names("ann")[9]);
        assert!(names("ann")[9].starts_with("ann-") && names("ann")[9].len() == 10);
        assert_ne!(
            username_candidates("ann", "iss", "sub-1")[9],
            username_candidates("ann", "iss", "sub-2")[9]
        );
    }
}
