//! Security headers for every page and asset. The policy allows only this origin's scripts,
//! styles and connections (the socket included: CSP Level 3 `'self'` covers same-origin `ws:`
//! and `wss:`), no inline code, no plugins, no framing by other sites.
//!
//! Kept out: caching (`pages`).

use actix_web::HttpResponseBuilder;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'self'";

pub fn secure(builder: &mut HttpResponseBuilder) -> &mut HttpResponseBuilder {
    builder
        .insert_header(("content-security-policy", CONTENT_SECURITY_POLICY))
        .insert_header(("x-content-type-options", "nosniff"))
        .insert_header(("referrer-policy", "no-referrer"))
        .insert_header(("cross-origin-opener-policy", "same-origin"))
}
