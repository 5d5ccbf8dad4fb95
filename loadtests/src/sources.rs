//! Where sockets come from: the local source address of each connection, so that more than one
//! address's ephemeral ports (and more than the server's per-IP socket limit) can be used, and
//! the file-descriptor limit the generator raises for itself before it starts.
//!
//! Kept out: connecting (`client`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use anyhow::bail;

use crate::scenario::Source;

/// Descriptors kept aside for the HTTP client, stdout, files and the runtime.
const SPARE_FDS: u64 = 256;

#[derive(Debug)]
pub struct SourcePlan {
    addresses: Vec<IpAddr>,
    per_address: usize,
}

impl SourcePlan {
    pub fn new(source: &Source, target: SocketAddr, connections: usize) -> anyhow::Result<Self> {
        let needed = connections.div_ceil(source.per_address);
        let addresses: Vec<IpAddr> = if !source.addresses.is_empty() {
            let given: Vec<IpAddr> = source
                .addresses
                .iter()
                .map(|a| a.parse().expect("validated by the scenario"))
                .collect();
            if given.len() < needed {
                bail!(
                    "{connections} connections at {} per source address need {needed} addresses; source.addresses has {}",
                    source.per_address,
                    given.len()
                );
            }
            given
        } else if target.ip().is_loopback() && target.is_ipv4() {
            if needed > 254 {
                bail!(
                    "{connections} connections need {needed} loopback source addresses; raise source.per_address"
                );
            }
            (0..needed)
                .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8)))
                .collect()
        } else {
            Vec::new()
        };
        Ok(SourcePlan {
            addresses,
            per_address: source.per_address,
        })
    }

    /// The source address of connection `i`, or `None` for the system's choice.
    pub fn for_client(&self, i: usize) -> Option<IpAddr> {
        self.addresses.get(i / self.per_address).copied()
    }

    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }
}

/// Raises the soft limit on open files to cover `connections` sockets, or says how to.
pub fn raise_fd_limit(connections: usize) -> anyhow::Result<u64> {
    let needed = connections as u64 + SPARE_FDS;
    let got = rlimit::increase_nofile_limit(needed)?;
    if got < needed {
        let (_, hard) = rlimit::Resource::NOFILE.get()?;
        bail!(
            "{connections} sockets need {needed} file descriptors but the hard limit is {hard}: raise it \
             (`ulimit -Hn` as root, or LimitNOFILE=) or run several generators with fewer \
             connections each and `banter-load merge` their reports"
        );
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(addresses: &[&str], per_address: usize) -> Source {
        Source {
            addresses: addresses.iter().map(|a| a.to_string()).collect(),
            per_address,
        }
    }

    #[test]
    fn loopback_targets_spread_over_loopback_sources() {
        let target: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        let plan = SourcePlan::new(&source(&[], 100), target, 250).unwrap();
        assert_eq!(plan.addresses().len(), 3);
        assert_eq!(plan.for_client(0), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(plan.for_client(99), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(plan.for_client(100), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(plan.for_client(249), Some("127.0.0.3".parse().unwrap()));
    }

    #[test]
    fn remote_targets_use_given_addresses_or_the_system() {
        let target: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(
            SourcePlan::new(&source(&[], 10), target, 50)
                .unwrap()
                .for_client(7),
            None
        );
        let plan = SourcePlan::new(&source(&["10.0.0.5", "10.0.0.6"], 10), target, 20).unwrap();
        assert_eq!(plan.for_client(15), Some("10.0.0.6".parse().unwrap()));
        let err = SourcePlan::new(&source(&["10.0.0.5"], 10), target, 20).unwrap_err();
        assert!(err.to_string().contains("need 2 addresses"), "{err}");
    }

    #[test]
    fn fd_limit_covers_a_small_run() {
        assert!(raise_fd_limit(10).unwrap() >= 10 + SPARE_FDS);
        let err = raise_fd_limit(usize::MAX / 2).unwrap_err();
        assert!(err.to_string().contains("hard limit"), "{err}");
    }
}
