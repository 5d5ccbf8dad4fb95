//! The viewer-facing web page, served by `banter` itself: `/` lists demo videos, `/videos/{id}`
//! is a video page with live comments, "N watching" and posting, and `/assets/…` serves its
//! script, Phoenix client and stylesheet. Everything is embedded in the binary at build time.
//!
//! - `assets`: the embedded files, each with a content version for cache busting.
//! - `pages`: the HTML pages and the handlers for all three routes.
//! - `headers`: the security headers (a strict Content-Security-Policy) every response carries.
//!
//! Kept out: any server-side state; the page talks to the REST API and the socket like any
//! other client.

mod assets;
mod headers;
mod pages;

use std::sync::Arc;

use actix_web::web;

pub use assets::Assets;

/// What the pages show.
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Video ids listed on `/` (invalid ids are left out).
    pub demo_videos: Vec<String>,
}

/// Registers `/`, `/videos/{id}` and `/assets/{name}`.
pub fn configure(cfg: &mut web::ServiceConfig, config: &WebConfig) {
    let site = Arc::new(pages::Site::new(config));
    cfg.app_data(web::Data::from(site))
        .route("/", web::get().to(pages::index))
        .route("/videos/{video_id}", web::get().to(pages::video))
        .route("/assets/{name}", web::get().to(pages::asset));
}
