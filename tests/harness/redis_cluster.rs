//! A throwaway Redis Cluster on loopback: three masters with one replica each
//! (`redis-server --cluster-enabled yes`, joined by `redis-cli --cluster create`), keeping
//! nothing but its node files, with the operations the bus tests need: find a channel's shard,
//! kill a master and wait for its replica to take over, move a slot to another master.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::ffi::OsStr;

use crate::free_port;
use crate::process::on_exit;
use crate::redis::spawn_redis;

pub struct RedisCluster {
    pub nodes: Vec<ClusterNode>,
    dir: PathBuf,
}

pub struct ClusterNode {
    pub port: u16,
    child: Option<Child>,
}

/// One line of `CLUSTER NODES`.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub id: String,
    pub port: u16,
    pub master: bool,
    pub failed: bool,
    /// Owned slot ranges, inclusive.
    pub slots: Vec<(u16, u16)>,
}

impl RedisCluster {
    /// Starts six nodes and forms the cluster; returns once every node reports `cluster_state:ok`.
    pub fn start() -> RedisCluster {
        let dir = std::env::temp_dir().join(format!("banter-redis-cluster-{}", free_port()));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        on_exit(&format!("rm -rf '{}'", dir.display()));
        let nodes: Vec<ClusterNode> = (0..6)
            .map(|_| {
                let port = free_port();
                ClusterNode {
                    port,
                    child: Some(start_node(&dir, port)),
                }
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let output = create.stdin(Stdio::null()).output().unwrap_or_else(|e| {
            panic!(
                "redis-cli could not run ({e}); install it with `apt-get install -y redis-tools`"
            )
        });
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let cluster = RedisCluster { nodes, dir };
        cluster.wait_until_ok();
        cluster
    }

    /// Seed URLs of every node, comma-separated (`BANTER_REDIS_CLUSTER_URLS`).
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("redis://127.0.0.1:{}/", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `redis-cli -p PORT ARGS…` and returns its output.
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("-p")
            .arg(port.to_string())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|n| n.child.is_some())
            .expect("a live node")
            .port
    }

    /// The slot of a key or channel.
    pub fn keyslot(&self, key: &str) -> u16 {
        self.cli(self.live_port(), &["CLUSTER", "KEYSLOT", key])
            .parse()
            .expect("a slot number")
    }

    /// The cluster's view, as one live node sees it.
    pub fn topology(&self) -> Vec<NodeInfo> {
        self.cli(self.live_port(), &["CLUSTER", "NODES"])
            .lines()
            .filter_map(parse_node_line)
            .collect()
    }

    /// The master that serves `slot`.
    pub fn owner(&self, slot: u16) -> NodeInfo {
        self.topology()
            .into_iter()
            .find(|n| n.master && !n.failed && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// Kills the node on `port` (SIGKILL, as a crash).
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until a live master other than `old_port` serves `slot` and the cluster is ok.
    pub fn wait_for_failover(&self, slot: u16, old_port: u16) -> NodeInfo {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let owner = self.topology().into_iter().find(|n| {
                n.master && !n.failed && n.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
            });
            if let Some(owner) = owner
                && owner.port != old_port
            {
                self.wait_until_ok();
                return owner;
            }
            assert!(
                Instant::now() < deadline,
                "no replica took over slot {slot}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Moves `slot` (which holds no keys: pub/sub only) to the master on `to_port`, as
    /// `redis-cli --cluster reshard` does: importing, migrating, then the new owner everywhere.
    pub fn move_slot(&self, slot: u16, to_port: u16) {
        let from = self.owner(slot);
        let to = self
            .topology()
            .into_iter()
            .find(|n| n.port == to_port && n.master)
            .expect("the target is a master");
        let slot_text = slot.to_string();
        let ok = |port: u16, args: &[&str]| {
            let reply = self.cli(port, args);
            assert_eq!(reply, "OK", "redis-cli -p {port} {args:?}");
        };
        ok(
            to.port,
            &["CLUSTER", "SETSLOT", &slot_text, "IMPORTING", &from.id],
        );
        ok(
            from.port,
            &["CLUSTER", "SETSLOT", &slot_text, "MIGRATING", &to.id],
        );
        ok(to.port, &["CLUSTER", "SETSLOT", &slot_text, "NODE", &to.id]);
        ok(
            from.port,
            &["CLUSTER", "SETSLOT", &slot_text, "NODE", &to.id],
        );
        for node in self.topology().iter().filter(|n| n.master && !n.failed) {
            if node.port != from.port && node.port != to.port {
                ok(
                    node.port,
                    &["CLUSTER", "SETSLOT", &slot_text, "NODE", &to.id],
                );
            }
        }
        self.wait_until_ok();
    }

    /// How many subscribers the node on `port` has for the shard channel `channel`.
    pub fn shard_subscribers(&self, port: u16, channel: &str) -> u64 {
        self.cli(port, &["PUBSUB", "SHARDNUMSUB", channel])
            .lines()
            .nth(1)
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until the cluster is ok on every live node and every replica's link to its
    /// master is up (a replica that never synced cannot be promoted).
    fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            while !self
                .cli(node.port, &["CLUSTER", "INFO"])
                .contains("cluster_state:ok")
            {
                assert!(
                    Instant::now() < deadline,
                    "the Redis Cluster did not reach cluster_state:ok on {}",
                    node.port
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        for node in self.nodes.iter().filter(|n| n.child.is_some()) {
            loop {
                let info = self.cli(node.port, &["INFO", "replication"]);
                if info.contains("role:master") || info.contains("master_link_status:up") {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the replica on {} did not sync with its master",
                    node.port
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn start_node(dir: &std::path::Path, port: u16) -> Child {
    let config = dir.join(format!("nodes-{port}.conf"));
    let bus_port = free_port().to_string();
    let args: Vec<&OsStr> = vec![
        "--cluster-enabled".as_ref(),
        "yes".as_ref(),
        "--cluster-node-timeout".as_ref(),
        "1000".as_ref(),
        // Replicas sync at once (not after the default 5 s wait for more replicas): a replica
        // that never synced may not take over.
        "--repl-diskless-sync-delay".as_ref(),
        "0".as_ref(),
        "--cluster-config-file".as_ref(),
        config.as_os_str(),
        "--dir".as_ref(),
        dir.as_os_str(),
        "--cluster-port".as_ref(),
        bus_port.as_ref(),
    ];
    spawn_redis(port, &args)
}

fn parse_node_line(line: &str) -> Option<NodeInfo> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 8 {
        return None;
    }
    let port = fields[1]
        .split('@')
        .next()?
        .rsplit(':')
        .next()?
        .parse()
        .ok()?;
    let flags = fields[2];
    let slots = fields[8..]
        .iter()
        .filter(|s| !s.starts_with('['))
        .filter_map(|s| match s.split_once('-') {
            Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
            None => s.parse().ok().map(|n| (n, n)),
        })
        .collect();
    Some(NodeInfo {
        id: fields[0].to_owned(),
        port,
        master: flags.contains("master"),
        failed: flags.contains("fail"),
        slots,
    })
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
