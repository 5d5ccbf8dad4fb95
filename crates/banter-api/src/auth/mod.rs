//! Authentication: access tokens (Banter's own JWTs, and external identity providers' through
//! their JWKS), password hashing, refresh tokens, and the extractor that turns a request's
//! bearer token into the signed-in user.

pub(crate) mod api_key;
mod external;
mod jwks;
mod jwt;
mod password;
mod principal;
mod refresh;

pub use api_key::PresentedKey;
pub use external::{ExternalIdentity, ExternalIssuers, IssuerConfig};
pub use jwks::{JwksPolicy, KeySetHealth};
pub use jwt::{JwtKeys, TokenError, Verified};
pub use password::{HashLimits, PasswordHasher};
pub use principal::{
    Credential, KeyCredential, MaybePrincipal, Principal, Token, load_principal,
    verify_access_token, verify_token,
};
pub use refresh::{RefreshToken, SuccessorKey, hash_refresh_token};
