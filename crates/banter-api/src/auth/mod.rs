//! Authentication: access tokens (JWT), password hashing, refresh tokens, and the extractor
//! that turns a request's bearer token into the signed-in user.

mod jwt;
mod password;
mod principal;
mod refresh;

pub use jwt::{JwtKeys, TokenError, Verified};
pub use password::{HashLimits, PasswordHasher};
pub use principal::{MaybePrincipal, Principal, load_principal, verify_access_token, verify_token};
pub use refresh::{RefreshToken, SuccessorKey, hash_refresh_token};
