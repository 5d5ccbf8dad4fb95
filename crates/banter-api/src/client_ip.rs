//! The client's IP of an HTTP request for per-IP rate limits, by the configured
//! [`ClientIpRule`] (the peer, or the operator's load-balancer header past its trusted hops).

use actix_web::HttpRequest;
use banter_core::ClientIpRule;

pub fn client_ip(req: &HttpRequest, rule: &ClientIpRule) -> String {
    let values = rule
        .header()
        .into_iter()
        .flat_map(|name| req.headers().get_all(name))
        .filter_map(|v| v.to_str().ok());
    rule.resolve(req.peer_addr().map(|a| a.ip()), values)
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}
