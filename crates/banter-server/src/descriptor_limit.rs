//! The process's file-descriptor limit, raised at start from the soft limit to the hard one,
//! as the Go runtime does: the soft limit is often 1,024 (systemd's default, many shells')
//! where the hard one allows hundreds of thousands, and every socket is a descriptor.
//!
//! At the limit, `accept` fails with `EMFILE` and actix-server stops accepting for 500 ms while
//! the kernel's listen queue overflows; in a reconnect storm the dead sockets and their
//! replacements are open together for a moment, so a node needs about twice the descriptors of
//! the sockets it holds (the README's sizing note).
//!
//! Kept out: the listening socket (`listener.rs`).

/// Raises the process's soft descriptor limit to its hard limit and returns the soft limit
/// now in force (the old one, with a warning, if it could not be raised).
pub fn raise() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            let (soft, _) = rlimit::Resource::NOFILE.get().unwrap_or((0, 0));
            tracing::warn!(error = %e, soft, "could not raise the file-descriptor limit");
            soft
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
        // Start from a lower soft limit, as under systemd.
        rlimit::Resource::NOFILE.set(hard.min(1024), hard).unwrap();
        assert_eq!(super::raise(), hard);
        assert_eq!(rlimit::Resource::NOFILE.get().unwrap().0, hard);
    }
}
