//! The node's listening socket: bound with a listen backlog sized for reconnect storms.
//!
//! `std::net::TcpListener::bind` asks the kernel for a backlog of 128. When thousands of viewers
//! reconnect at once (a network blip, a node dying behind a load balancer), connections beyond
//! it are dropped by the kernel before the server sees them, and each client retries only after
//! its SYN retransmission timeout: 1 s, then 3 s, then 7 s. A backlog of thousands lets the
//! acceptor take them all in the first round. The kernel caps the value at
//! `net.core.somaxconn`.
//!
//! Kept out: what is served on the socket (`app.rs`).

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

/// Binds `addr` (host:port; the first address it resolves to) with SO_REUSEADDR, as
/// `TcpListener::bind` does, and listens with `backlog` pending connections.
pub fn bind(addr: &str, backlog: u32) -> Result<TcpListener> {
    let resolved: SocketAddr = addr
        .to_socket_addrs()
        .with_context(|| format!("resolving {addr}"))?
        .next()
        .with_context(|| format!("{addr} resolves to no address"))?;
    let socket = Socket::new(
        Domain::for_address(resolved),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&resolved.into())
        .with_context(|| format!("binding {addr}"))?;
    let backlog = i32::try_from(backlog.max(1)).unwrap_or(i32::MAX);
    socket.listen(backlog)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections the server has not accepted yet wait in the backlog instead of being
    /// dropped: with nothing accepting, 1,000 connects complete (the kernel finishes the
    /// handshake and queues them), where the default backlog of 128 would leave the rest
    /// retrying their SYNs. (Fewer where `net.core.somaxconn` caps the backlog lower.)
    #[test]
    fn a_thousand_connects_wait_in_the_backlog_while_nothing_accepts() {
        let cap: usize = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(4096);
        let n = cap.min(1000);
        let listener = bind("127.0.0.1:0", 4096).unwrap();
        let addr = listener.local_addr().unwrap();
        let clients: Vec<_> = (0..n)
            .map(|i| {
                std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(500))
                    .unwrap_or_else(|e| panic!("connect {i} waited past the backlog: {e}"))
            })
            .collect();
        assert_eq!(clients.len(), n);
        listener.set_nonblocking(true).unwrap();
        let mut accepted = 0;
        while listener.accept().is_ok() {
            accepted += 1;
        }
        assert_eq!(accepted, n);
    }

    #[test]
    fn an_address_that_does_not_resolve_is_a_clear_error() {
        let err = bind("no-such-host.invalid:80", 16).unwrap_err();
        assert!(
            format!("{err:#}").contains("no-such-host.invalid"),
            "{err:#}"
        );
    }
}
