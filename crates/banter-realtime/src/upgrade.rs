//! The WebSocket endpoint `/socket/websocket`: negotiates the serializer (`vsn`), checks the
//! origin, authenticates (a `token` query parameter or the 1.8 client's `authToken`
//! subprotocol), applies the per-IP connection limit, answers the handshake, then takes the
//! connection's I/O from the HTTP layer and hands it to a session.
//!
//! The handshake arrives through actix-http's upgrade hook ([`service`], installed by
//! `banter-server` on the same listener as the REST API): the HTTP dispatcher hands over the
//! request and the framed connection, and once the 101 is written the TCP stream and any bytes
//! read past the request head belong to Banter (`conn.rs`), with no HTTP dispatcher, response
//! stream or channel left behind per socket. Any refusal is an HTTP error before the upgrade
//! (403, or 429 for the per-IP limit, 503 while draining), as Phoenix does: the browser only
//! sees the connection fail and retries on its backoff. A plain GET without the upgrade headers
//! reaches the actix-web route instead and gets 400.

use std::collections::HashMap;
use std::sync::Arc;

use actix_codec::Framed;
use actix_http::body::BodySize;
use actix_http::header::{HOST, HeaderMap, HeaderValue, ORIGIN, SEC_WEBSOCKET_PROTOCOL};
use actix_http::{HttpMessage, Request, Response, StatusCode, h1};
use actix_service::{ServiceFactory, fn_service};
use actix_web::{HttpResponse, web};
use banter_protocol::Vsn;
use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use futures_util::SinkExt;
use tokio::net::TcpStream;

use crate::Hub;
use crate::hub::{ConnectionGuard, HubInner};
use crate::metrics as m;

const AUTH_TOKEN_PREFIX: &str = "base64url.bearer.phx.";
const PATH: &str = "/socket/websocket";

/// The actix-web side: a GET without the upgrade headers (the upgrade itself never reaches
/// actix-web; see the module docs).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::get().to(not_an_upgrade));
}

async fn not_an_upgrade() -> HttpResponse {
    HttpResponse::BadRequest().body("expected a WebSocket upgrade")
}

/// The upgrade service for actix-http's `HttpServiceBuilder::upgrade`: WebSocket handshakes
/// to `/socket/websocket` open sessions on `hub`; any other upgrade (or any at all when the
/// node serves no sockets) gets 404.
pub fn service(
    hub: Option<Hub>,
) -> impl ServiceFactory<
    (Request, Framed<TcpStream, h1::Codec>),
    Config = (),
    Response = (),
    Error = actix_http::Error,
    InitError = (),
> + Clone {
    let hub = hub.map(|h| h.inner);
    fn_service(
        move |(req, framed): (Request, Framed<TcpStream, h1::Codec>)| {
            let hub = hub.clone();
            async move {
                handle(hub, req, framed).await;
                Ok::<_, actix_http::Error>(())
            }
        },
    )
}

fn query(uri: &actix_http::Uri) -> HashMap<String, String> {
    web::Query::<HashMap<String, String>>::from_query(uri.query().unwrap_or_default())
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

/// The token from the `authToken` subprotocol: standard base64 without padding (as the client
/// writes it), URL-safe characters accepted too.
fn subprotocol_token(headers: &HeaderMap) -> Option<String> {
    let header = headers.get(SEC_WEBSOCKET_PROTOCOL)?.to_str().ok()?;
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

fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true; // not a browser
    };
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    // Same origin: the Origin's host[:port] equals the Host header.
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    allowed.is_empty() && !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// The client's address by the configured rule (the REST API applies the same one).
fn client_ip(req: &Request, rule: &banter_core::ClientIpRule) -> std::net::IpAddr {
    let values = rule
        .header()
        .into_iter()
        .flat_map(|name| req.headers().get_all(name))
        .filter_map(|v| v.to_str().ok());
    rule.resolve(req.peer_addr().map(|a| a.ip()), values)
        .unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]))
}

type Io = Framed<TcpStream, h1::Codec>;

async fn handle(hub: Option<Arc<HubInner>>, req: Request, mut framed: Io) {
    let path = req.path().trim_end_matches('/');
    let Some(hub) = hub.filter(|_| path == PATH) else {
        respond(&mut framed, StatusCode::NOT_FOUND).await;
        return;
    };
    let (vsn, viewer, guard) = match admit(&hub, &req).await {
        Ok(admitted) => admitted,
        Err((reason, status)) => {
            metrics::counter!(m::REFUSED, "reason" => reason).increment(1);
            respond(&mut framed, status).await;
            return;
        }
    };
    let mut response = match actix_http::ws::handshake(req.head()) {
        Ok(response) => response,
        Err(e) => {
            let status = Response::from(e).status();
            respond(&mut framed, status).await;
            return;
        }
    };
    if offers_phoenix(req.headers()) {
        response.insert_header((SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static("phoenix")));
    }
    let response = response.finish().drop_body();
    if framed
        .send((response, BodySize::None).into())
        .await
        .is_err()
    {
        return;
    }
    let parts = framed.into_parts();
    let conn = crate::conn::Conn::new(parts.io, parts.read_buf, hub.config.max_frame_bytes);
    // The session runs on this worker; the HTTP dispatcher ends here.
    actix_web::rt::spawn(crate::session::run(hub, vsn, viewer, conn, guard));
}

fn offers_phoenix(headers: &HeaderMap) -> bool {
    headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == "phoenix")
}

/// An HTTP error before the upgrade, with an empty body; the connection then closes. A 503
/// (draining, rebalancing) says when to come back: `Retry-After: 1`.
async fn respond(framed: &mut Io, status: StatusCode) {
    let mut response = Response::with_body(status, ()).drop_body();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response.headers_mut().insert(
            actix_http::header::RETRY_AFTER,
            actix_http::header::HeaderValue::from_static("1"),
        );
    }
    let _ = framed.send((response, BodySize::Sized(0)).into()).await;
}

/// The checks of the handshake; a refusal names the metric's reason and the status.
async fn admit(
    hub: &Arc<HubInner>,
    req: &Request,
) -> Result<(Vsn, Option<crate::Viewer>, ConnectionGuard), (&'static str, StatusCode)> {
    if *hub.shutdown.borrow() || hub.draining.borrow().is_some() {
        return Err(("draining", StatusCode::SERVICE_UNAVAILABLE));
    }
    if hub.loads.over_target() {
        return Err(("rebalancing", StatusCode::SERVICE_UNAVAILABLE));
    }
    let params = query(req.uri());
    let Some(vsn) = Vsn::negotiate(params.get("vsn").map(String::as_str)) else {
        return Err(("vsn", StatusCode::FORBIDDEN));
    };
    if !origin_allowed(req.headers(), &hub.config.allowed_origins) {
        tracing::info!("socket refused: origin not allowed");
        return Err(("origin", StatusCode::FORBIDDEN));
    }
    let token = params
        .get("token")
        .cloned()
        .or_else(|| subprotocol_token(req.headers()));
    let viewer = match token {
        Some(token) => match hub.gateway.authenticate(token).await {
            Ok(viewer) => Some(viewer),
            Err(refusal) => {
                tracing::info!(reason = %refusal.reason, "socket refused: bad token");
                return Err(("token", StatusCode::FORBIDDEN));
            }
        },
        None if hub.config.allow_anonymous => None,
        None => return Err(("anonymous", StatusCode::FORBIDDEN)),
    };
    let ip = client_ip(req, &hub.config.client_ip);
    let Some(guard) = hub.admit(ip) else {
        tracing::info!(%ip, "socket refused: too many connections from this address");
        return Err(("per_ip", StatusCode::TOO_MANY_REQUESTS));
    };
    Ok((vsn, viewer, guard))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderName;

    use super::*;

    fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name.clone(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn the_auth_token_subprotocol_decodes_standard_base64_without_padding() {
        // btoa("user-token-42") with '=' removed, as the 1.8 client sends it.
        let req = headers(&[(
            SEC_WEBSOCKET_PROTOCOL,
            "phoenix, base64url.bearer.phx.dXNlci10b2tlbi00Mg",
        )]);
        assert_eq!(subprotocol_token(&req).as_deref(), Some("user-token-42"));
        assert!(offers_phoenix(&req));
    }

    #[test]
    fn cross_site_origins_are_refused_and_same_origin_allowed() {
        let req = |origin: &str| headers(&[(HOST, "banter.example:4000"), (ORIGIN, origin)]);
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
        assert!(origin_allowed(&HeaderMap::new(), &[]));
    }
}
