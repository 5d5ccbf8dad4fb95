//! The WebSocket endpoint `/socket/websocket`: negotiates the serializer (`vsn`), checks the
//! origin, authenticates (a `token` query parameter or the 1.8 client's `authToken`
//! subprotocol), applies the per-IP connection limit, then hands the socket to a session.
//! Any refusal is an HTTP error before the upgrade (403, or 429 for the per-IP limit), as
//! Phoenix does: the browser only sees the connection fail and retries on its backoff.

use std::collections::HashMap;

use actix_web::http::header::{HOST, ORIGIN, SEC_WEBSOCKET_PROTOCOL};
use actix_web::{HttpRequest, HttpResponse, web};
use banter_protocol::Vsn;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};

use crate::Hub;

const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/socket/websocket", web::get().to(upgrade));
}

fn query(req: &HttpRequest) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(req.query_string())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// The token from the `authToken` subprotocol: standard base64 without padding (as the client
/// writes it), URL-safe characters accepted too.
fn subprotocol_token(req: &HttpRequest) -> Option<String> {
    let header = req.headers().get(SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
    let encoded = header
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix(AUTH_TOKEN_PREFIX))?;
    let normalized: String = encoded
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let engine = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    String::from_utf8(engine.decode(normalized).ok()?).ok()
}

fn origin_allowed(req: &HttpRequest, allowed: &[String]) -> bool {
    let Some(origin) = req.headers().get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true; // not a browser
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    // Same origin: the Origin's host[:port] equals the Host header.
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    allowed.is_empty() && !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

use crate::metrics as m;

/// The client's address by the configured rule (the REST API applies the same one).
fn client_ip(req: &HttpRequest, rule: &banter_core::ClientIpRule) -> std::net::IpAddr {
    let values = rule
        .header()
        .into_iter()
        .flat_map(|name| req.headers().get_all(name))
        .filter_map(|v| v.to_str().ok());
    rule.resolve(req.peer_addr().map(|a| a.ip()), values)
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
}

async fn upgrade(req: HttpRequest, body: web::Payload, hub: web::Data<Hub>) -> HttpResponse {
    let hub = hub.inner.clone();
    let refuse = |reason: &'static str, response: HttpResponse| {
        metrics::counter!(m::REFUSED, "reason" => reason).increment(1);
        response
    };
    if *hub.shutdown.borrow() || hub.draining.borrow().is_some() {
        return refuse("draining", HttpResponse::ServiceUnavailable().finish());
    }
    let params = query(&req);
    let Some(vsn) = Vsn::negotiate(params.get("vsn").map(String::as_str)) else {
        return refuse("vsn", HttpResponse::Forbidden().finish());
    };
    if !origin_allowed(&req, &hub.config.allowed_origins) {
        tracing::info!("socket refused: origin not allowed");
        return refuse("origin", HttpResponse::Forbidden().finish());
    }
    let token = params
        .get("token")
        .cloned()
        .or_else(|| subprotocol_token(&req));
    let viewer = match token {
        Some(token) => match hub.gateway.authenticate(token).await {
            Ok(viewer) => Some(viewer),
            Err(refusal) => {
                tracing::info!(reason = %refusal.reason, "socket refused: bad token");
                return refuse("token", HttpResponse::Forbidden().finish());
            }
        },
        None if hub.config.allow_anonymous => None,
        None => return refuse("anonymous", HttpResponse::Forbidden().finish()),
    };
    let ip = client_ip(&req, &hub.config.client_ip);
    let Some(guard) = hub.admit(ip) else {
        tracing::info!(%ip, "socket refused: too many connections from this address");
        return refuse("per_ip", HttpResponse::TooManyRequests().finish());
    };
    let (response, ws, stream) = match actix_ws::handle_with_protocols(&req, body, &["phoenix"]) {
        Ok(parts) => parts,
        Err(e) => return actix_web::ResponseError::error_response(e.as_response_error()),
    };
    let max = hub.config.max_frame_bytes;
    let stream = stream
        .max_frame_size(max)
        .aggregate_continuations()
        .max_continuation_size(max);
    actix_web::rt::spawn(crate::session::run(hub, vsn, viewer, ws, stream, guard));
    response
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn the_auth_token_subprotocol_decodes_standard_base64_without_padding() {
        // btoa("user-token-42") with '=' removed, as the 1.8 client sends it.
        let req = TestRequest::default()
            .insert_header((
                SEC_WEBSOCKET_PROTOCOL,
                "phoenix, base64url.bearer.phx.dXNlci10b2tlbi00Mg",
            ))
            .to_http_request();
        assert_eq!(subprotocol_token(&req).as_deref(), Some("user-token-42"));
    }

    #[test]
    fn cross_site_origins_are_refused_and_same_origin_allowed() {
        let req = |origin: &str| {
            TestRequest::default()
                .insert_header((HOST, "banter.example:4000"))
                .insert_header((ORIGIN, origin))
                .to_http_request()
        };
        assert!(origin_allowed(&req("http://banter.example:4000"), &[]));
        assert!(!origin_allowed(&req("https://evil.example"), &[]));
        assert!(origin_allowed(
            &req("https://app.example"),
            &["https://app.example".into()]
        ));
        assert!(!origin_allowed(
            &req("https://evil.example"),
            &["https://app.example".into()]
        ));
        assert!(origin_allowed(
            &TestRequest::default().to_http_request(),
            &[]
        ));
    }
}
