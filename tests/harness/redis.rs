//! A throwaway `redis-server` on a free loopback port, keeping nothing on disk.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;
use crate::process::on_exit;

pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    pub fn start() -> RedisServer {
        let port = free_port();
        Self::start_on(port)
    }

    /// Kills the server and starts a fresh, empty one on the same port.
    pub fn restart(&mut self) {
        self.stop();
        let fresh = Self::start_on(self.port);
        let old = std::mem::replace(self, fresh);
        std::mem::forget(old);
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn start_on(port: u16) -> RedisServer {
        let child = spawn_redis(port, &[]);
        RedisServer { port, child }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }
}

/// Starts `redis-server` on loopback `port` with no persistence and `extra` arguments, stopped
/// when the test process exits; returns once it listens.
pub(crate) fn spawn_redis(port: u16, extra: &[&std::ffi::OsStr]) -> Child {
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--port")
        .arg(port.to_string())
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("redis-server could not start ({e}); install it with `apt-get install -y redis-server`")
        });
    on_exit(&format!("kill {} 2>/dev/null", child.id()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
