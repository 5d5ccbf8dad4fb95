//! `GET /api/openapi.json`: the OpenAPI document, generated from the handlers' annotations.

use actix_web::{HttpResponse, get};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{
    admin, announcements, api_keys, auth, bans, blocked_terms, chat, comments, held_comments, me,
    moderation_log, moderators, videos, webhooks,
};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from `POST /api/auth/login`, `register` or `refresh`, \
                         or one of a configured external identity provider (`BANTER_JWT_ISSUERS`; \
                         verified against its JWKS). If that provider's keys cannot be fetched, \
                         the request gets 503 `identity_provider_unavailable` with `Retry-After`.",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Banter API", description = "Live comments for video pages. Every error is `{\"error\":{\"code\",\"message\",\"request_id\"}}`."),
    paths(
        auth::register, auth::login, auth::refresh, auth::logout,
        me::get_me, me::update_me, me::list_devices, me::revoke_device,
        admin::list_users, admin::update_user,
        comments::list_comments, comments::create_comment, comments::update_comment, comments::delete_comment,
        videos::create_video, videos::get_video, videos::update_video, videos::add_member, videos::remove_member,
        moderators::list_moderators, moderators::add_moderator, moderators::remove_moderator,
        bans::list_video_bans, bans::ban_on_video, bans::unban_on_video, bans::remove_user_comments,
        bans::list_site_bans, bans::ban_site_wide, bans::unban_site_wide,
        chat::get_chat, chat::update_chat, chat::pin_comment, chat::unpin_comment,
        moderation_log::moderation_log,
        blocked_terms::get_video_terms, blocked_terms::put_video_terms,
        blocked_terms::get_site_terms, blocked_terms::put_site_terms,
        held_comments::list_held, held_comments::approve_held, held_comments::reject_held,
        api_keys::create_api_key, api_keys::list_api_keys, api_keys::revoke_api_key,
        announcements::create_announcement,
        webhooks::create_webhook, webhooks::list_webhooks, webhooks::delete_webhook,
        webhooks::list_deliveries, webhooks::replay_delivery,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// The document as completed by `contract` (descriptions, errors, constraints, operations),
/// built and serialized once per process.
#[get("/api/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(|| crate::contract::document().to_string());
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.as_str())
}
