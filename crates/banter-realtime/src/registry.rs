//! `Sessions`: this node's open sockets by session id, each with its `Outq` (to close it or
//! queue re-checks) and its signed-in user; and the sweep that replaces a timer per socket.
//!
//! The sweep runs once a second (every quarter of the idle timeout if that is shorter) over all
//! sockets: it closes
//! those with no inbound frame for the idle timeout (1000 "idle timeout") and those whose access
//! token expired (4002). 19k sockets cost one pass of a few hundred microseconds, not 19k timers.
//!
//! Kept out: what closing means for a socket (`session/`), access decisions (the gateway).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use banter_core::UserId;
use banter_protocol::reasons::close;

use crate::metrics as names;
use crate::outq::{Close, Outq};

pub(crate) struct SessionEntry {
    pub outq: Arc<Outq>,
    pub user: Option<UserId>,
}

#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<u64, SessionEntry>>,
    /// Set at shutdown: a socket registering afterwards is closed at once.
    closed_for: Mutex<Option<Close>>,
}

impl Sessions {
    pub fn register(&self, id: u64, entry: SessionEntry) {
        if let Some(close) = self.closed_for.lock().expect("sessions lock").clone() {
            entry.outq.close(close);
        }
        self.map.lock().expect("sessions lock").insert(id, entry);
    }

    pub fn unregister(&self, id: u64) {
        self.map.lock().expect("sessions lock").remove(&id);
    }

    pub fn len(&self) -> usize {
        self.map.lock().expect("sessions lock").len()
    }

    /// The queues of the sockets `filter` selects.
    pub fn select(&self, filter: impl Fn(&SessionEntry) -> bool) -> Vec<Arc<Outq>> {
        self.map
            .lock()
            .expect("sessions lock")
            .values()
            .filter(|e| filter(e))
            .map(|e| e.outq.clone())
            .collect()
    }

    /// Closes up to `n` sockets not already closing; returns how many.
    pub fn shed(&self, n: usize, close: &Close) -> usize {
        let map = self.map.lock().expect("sessions lock");
        let mut closed = 0;
        for outq in map
            .values()
            .map(|e| &e.outq)
            .filter(|q| !q.is_closing())
            .take(n)
        {
            outq.close(close.clone());
            closed += 1;
        }
        closed
    }

    /// Closes the sockets whose id `due` selects.
    pub fn close_where(&self, due: impl Fn(u64) -> bool, close: &Close) {
        for (_, entry) in self
            .map
            .lock()
            .expect("sessions lock")
            .iter()
            .filter(|(id, _)| due(**id))
        {
            entry.outq.close(close.clone());
        }
    }

    /// Closes every socket, and any that registers later.
    pub fn close_all(&self, close: Close) {
        *self.closed_for.lock().expect("sessions lock") = Some(close.clone());
        self.close_where(|_| true, &close);
    }

    /// One pass of the sweep; returns the sockets closed as idle and as expired.
    pub fn sweep(&self, now_secs: u32, idle: Duration, now_unix: i64) -> (usize, usize) {
        let idle_secs = u32::try_from(idle.as_secs().max(1)).unwrap_or(u32::MAX);
        let (mut idle_closed, mut expired) = (0, 0);
        for entry in self.map.lock().expect("sessions lock").values() {
            let outq = &entry.outq;
            if outq.expires_at() <= now_unix {
                outq.close(Close::new(
                    close::TOKEN_EXPIRED,
                    "access token expired: refresh it and reconnect",
                ));
                expired += 1;
            } else if now_secs.saturating_sub(outq.last_inbound()) >= idle_secs {
                outq.close(Close::new(close::IDLE, "idle timeout"));
                idle_closed += 1;
            }
        }
        (idle_closed, expired)
    }
}

/// Sweeps `sessions` every `every` until they are dropped. `now_secs` is the clock the
/// sessions stamp their last inbound frame with.
pub(crate) async fn sweep_every(
    sessions: Weak<Sessions>,
    every: Duration,
    idle: Duration,
    now_secs: impl Fn() -> u32,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        let unix = time::OffsetDateTime::now_utc().unix_timestamp();
        let (_, expired) = sessions.sweep(now_secs(), idle, unix);
        if expired > 0 {
            metrics::counter!(names::ACCESS_REVOKED, "action" => "socket_closed")
                .increment(expired as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> (SessionEntry, Arc<Outq>) {
        let outq = Arc::new(Outq::new(8, 1024));
        let entry = SessionEntry {
            outq: outq.clone(),
            user: None,
        };
        (entry, outq)
    }

    fn close_of(outq: &Outq) -> Option<(u16, String)> {
        match outq.try_take(&mut Default::default()) {
            Some(crate::outq::Taken::Close(c)) => Some((c.code, c.reason)),
            _ => None,
        }
    }

    #[test]
    fn the_sweep_closes_idle_sockets_and_expired_tokens_and_leaves_the_rest() {
        let sessions = Sessions::default();
        let (quiet, quiet_q) = entry();
        let (busy, busy_q) = entry();
        let (expired, expired_q) = entry();
        quiet_q.touch(10);
        busy_q.touch(65);
        expired_q.touch(65);
        expired_q.set_expiry(1_000);
        sessions.register(1, quiet);
        sessions.register(2, busy);
        sessions.register(3, expired);
        assert_eq!(sessions.sweep(70, Duration::from_secs(60), 1_000), (1, 1));
        assert_eq!(close_of(&quiet_q), Some((1000, "idle timeout".into())));
        assert_eq!(close_of(&busy_q), None);
        assert_eq!(close_of(&expired_q).map(|c| c.0), Some(4002));
    }

    #[test]
    fn a_socket_registering_after_shutdown_is_closed_at_once() {
        let sessions = Sessions::default();
        sessions.close_all(Close::new(1012, "server restarting"));
        let (late, late_q) = entry();
        sessions.register(1, late);
        assert_eq!(close_of(&late_q), Some((1012, "server restarting".into())));
    }
}
