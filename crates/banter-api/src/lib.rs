//! Banter's REST API over actix-web: accounts and sessions (register, login, refresh-token
//! rotation, logout, devices), admin user management, videos, comments, and moderation
//! (moderators, bans and timeouts, chat settings, the pinned comment, the moderation log).
//!
//! Handlers take validated `banter-core` values, talk to `banter-store` (writes on the primary,
//! listings on replicas), and report every failure as an [`ApiError`] in one JSON envelope with
//! a stable code (`codes`). Committed comment changes go to a [`CommentPublisher`] after commit.
//!
//! Kept out: configuration loading, server lifecycle and health probes (`banter-server`), and
//! anything WebSocket (`banter-realtime`).

mod access;
mod access_cache;
mod auth;
mod chat_rules;
mod client_ip;
pub mod codes;
mod contract;
mod dto;
mod error;
mod extract_errors;
mod http_client;
mod json_body;
mod moderation;
mod publish;
mod rate_limit;
pub mod request_id;
mod routes;
mod shared_reads;
mod state;
pub mod webhooks;

use actix_web::web;

pub use access::{Denied, check_view};
pub use access_cache::AccessCache;
pub use auth::{
    Credential, ExternalIdentity, ExternalIssuers, HashLimits, IssuerConfig, JwksPolicy, JwtKeys,
    KeyCredential, KeySetHealth, MaybePrincipal, PasswordHasher, PresentedKey, Principal, Token,
    Verified, load_principal, verify_access_token, verify_token,
};
pub use chat_rules::{ChatRules, VideoRules};
pub use dto::CommentDto;
pub use error::ApiError;
pub use http_client::{install_tls_provider, outbound_client};
pub use moderation::{
    COMMENT_ACK_METRIC, COMMENTS_COMMITTED_METRIC, COMMENTS_REFUSED_METRIC, MODERATION_ACTIONS,
    MODERATION_ACTIONS_METRIC, REFUSAL_REASONS,
};
pub use publish::{CommentEvent, CommentPublisher, NoopPublisher};
pub use rate_limit::{Limit, RATE_LIMIT_NAMES, RATE_LIMITED_METRIC, RateLimitConfig};
pub use routes::comments::{post_comment, post_comment_to_public, post_comment_to_seen};
pub use routes::openapi::ApiDoc;
pub use shared_reads::SharedReads;
pub use state::{ApiConfig, ApiState};

/// Registers the API's routes and extractor configuration on an actix-web app.
/// The caller registers `web::Data<ApiState>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use routes::{
        admin, announcements, api_keys, auth, bans, blocked_terms, chat, comments, held_comments,
        me, moderation_log, moderators, openapi, videos, webhooks,
    };
    cfg.app_data(extract_errors::json_config())
        .app_data(extract_errors::query_config())
        .app_data(extract_errors::path_config())
        .service(auth::register)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(me::get_me)
        .service(me::update_me)
        .service(me::list_devices)
        .service(me::revoke_device)
        .service(admin::list_users)
        .service(admin::update_user)
        .service(comments::list_comments)
        .service(comments::create_comment)
        .service(comments::update_comment)
        .service(comments::delete_comment)
        .service(videos::create_video)
        .service(videos::get_video)
        .service(videos::update_video)
        .service(videos::add_member)
        .service(videos::remove_member)
        .service(moderators::list_moderators)
        .service(moderators::add_moderator)
        .service(moderators::remove_moderator)
        .service(bans::list_video_bans)
        .service(bans::ban_on_video)
        .service(bans::unban_on_video)
        .service(bans::remove_user_comments)
        .service(bans::list_site_bans)
        .service(bans::ban_site_wide)
        .service(bans::unban_site_wide)
        .service(chat::get_chat)
        .service(chat::update_chat)
        .service(chat::pin_comment)
        .service(chat::unpin_comment)
        .service(moderation_log::moderation_log)
        .service(blocked_terms::get_video_terms)
        .service(blocked_terms::put_video_terms)
        .service(blocked_terms::get_site_terms)
        .service(blocked_terms::put_site_terms)
        .service(held_comments::list_held)
        .service(held_comments::approve_held)
        .service(held_comments::reject_held)
        .service(api_keys::create_api_key)
        .service(api_keys::list_api_keys)
        .service(api_keys::revoke_api_key)
        .service(announcements::create_announcement)
        .service(webhooks::create_webhook)
        .service(webhooks::list_webhooks)
        .service(webhooks::delete_webhook)
        .service(webhooks::list_deliveries)
        .service(webhooks::replay_delivery)
        .service(openapi::openapi_json);
}
