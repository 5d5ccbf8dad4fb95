//! Outbound HTTP: the client Banter uses to call other services (an identity provider's JWKS),
//! and the TLS crypto provider it needs. reqwest is built with `rustls-no-provider`, so the
//! process installs rustls' `ring` provider (already in the build for the database's TLS)
//! before any client is made: [`install_tls_provider`], called by the server at start and by
//! every other program of the workspace that makes a reqwest client.
//!
//! Kept out: what is fetched and how it is cached (`auth/jwks.rs`).

use std::time::Duration;

/// Installs rustls' `ring` crypto provider as the process default; a no-op when one is
/// installed already.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client for calls to other services: verified TLS against the system's roots, a connect
/// timeout, no redirects to other hosts' keys, and Banter's user agent.
pub fn outbound_client() -> anyhow::Result<reqwest::Client> {
    install_tls_provider();
    Ok(reqwest::Client::builder()
        .user_agent(concat!("banter/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(3))
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}
