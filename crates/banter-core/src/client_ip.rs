//! `ClientIpRule`: which address a request comes from, for per-IP limits on REST and on
//! sockets alike. Either the TCP peer, or one entry of one header that the operator's load
//! balancer sets, counted from the right past the proxies the operator trusts. Every other
//! forwarding header (`Forwarded`, `X-Real-IP`, … whichever is not the configured one) is
//! ignored, so a client cannot choose its own address by sending one.
//!
//! Kept out: reading the request (the HTTP layers pass the header values in).

use std::net::{IpAddr, SocketAddr};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ClientIpRule {
    /// The TCP peer's address (no load balancer, or one that is not trusted).
    #[default]
    Peer,
    /// The entry `trusted_hops` from the right of the comma-separated list in `header`: each
    /// trusted proxy appends the address it received the request from, so with one trusted
    /// proxy the last entry is the client. A header with fewer entries than that did not pass
    /// through every trusted proxy, and the peer is used instead.
    Header { name: String, trusted_hops: usize },
}

impl ClientIpRule {
    /// The client's address: `peer`, or the configured entry of `header_values` (every value
    /// of the configured header, in order).
    pub fn resolve<'a>(
        &self,
        peer: Option<IpAddr>,
        header_values: impl IntoIterator<Item = &'a str>,
    ) -> Option<IpAddr> {
        let ClientIpRule::Header { trusted_hops, .. } = self else {
            return peer;
        };
        let entries: Vec<&str> = header_values
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .collect();
        let hops = (*trusted_hops).max(1);
        if entries.len() < hops {
            return peer;
        }
        parse_entry(entries[entries.len() - hops]).or(peer)
    }

    /// The header to read, if any.
    pub fn header(&self) -> Option<&str> {
        match self {
            ClientIpRule::Peer => None,
            ClientIpRule::Header { name, .. } => Some(name),
        }
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1`, `[::1]` or `[::1]:80`.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn xff(hops: usize) -> ClientIpRule {
        ClientIpRule::Header {
            name: "x-forwarded-for".into(),
            trusted_hops: hops,
        }
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_peer_rule_ignores_every_header() {
        let peer = ip("10.0.0.1");
        assert_eq!(ClientIpRule::Peer.resolve(peer, ["6.6.6.6"]), peer);
    }

    #[test]
    fn one_trusted_hop_takes_the_last_entry_so_a_spoofed_first_entry_is_ignored() {
        let peer = ip("10.0.0.1");
        assert_eq!(xff(1).resolve(peer, ["203.0.113.9"]), ip("203.0.113.9"));
        assert_eq!(
            xff(1).resolve(peer, ["6.6.6.6, 203.0.113.9"]),
            ip("203.0.113.9")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            xff(1).resolve(peer, ["6.6.6.6", "203.0.113.9"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn two_trusted_hops_take_the_second_entry_from_the_right() {
        let peer = ip("10.0.0.1");
        assert_eq!(
            xff(2).resolve(peer, ["6.6.6.6, 198.51.100.7, 10.0.0.9"]),
            ip("198.51.100.7")
        );
        assert_eq!(xff(2).resolve(peer, ["198.51.100.7"]), peer, "too few hops");
    }

    #[test]
    fn missing_or_garbled_headers_fall_back_to_the_peer() {
        let peer = ip("10.0.0.1");
        assert_eq!(xff(1).resolve(peer, []), peer);
        assert_eq!(xff(1).resolve(peer, ["unknown"]), peer);
        assert_eq!(xff(1).resolve(peer, [" , "]), peer);
    }

    #[test]
    fn ports_and_brackets_are_accepted() {
        let peer = ip("10.0.0.1");
        assert_eq!(xff(1).resolve(peer, ["1.2.3.4:5678"]), ip("1.2.3.4"));
        assert_eq!(
            xff(1).resolve(peer, ["[2001:db8::1]:80"]),
            ip("2001:db8::1")
        );
        assert_eq!(xff(1).resolve(peer, ["[2001:db8::1]"]), ip("2001:db8::1"));
        assert_eq!(xff(1).resolve(peer, ["2001:db8::1"]), ip("2001:db8::1"));
    }
}
