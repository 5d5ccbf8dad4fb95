//! Free loopback ports.

use std::net::TcpListener;

/// A port that was free a moment ago (the OS picks it; races are unlikely on loopback).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}
