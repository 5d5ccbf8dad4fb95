//! The client's IP for per-IP rate limits: the peer address, or the first `X-Forwarded-For`
//! hop when configured to trust the load balancer in front.

use actix_web::HttpRequest;

pub fn client_ip(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for && let Some(ip) = req.connection_info().realip_remote_addr() {
        return ip.to_owned();
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}
