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

    /// Up to `n` sockets to move elsewhere, cheapest first: anonymous viewers before signed-in
    /// ones (whose presence leaves and rejoins everyone's member list), and within each, the
    /// longest without an inbound frame before the active (a poster's comment in flight would
    /// be cut). Sockets already closing are not counted.
    pub fn cheapest_to_move(&self, n: usize) -> Vec<Arc<Outq>> {
        let map = self.map.lock().expect("sessions lock");
        let mut candidates: Vec<(bool, u32, &Arc<Outq>)> = map
            .values()
            .filter(|e| !e.outq.is_closing())
            .map(|e| (e.user.is_some(), e.outq.last_inbound(), &e.outq))
            .collect();
        let n = n.min(candidates.len());
        if n == 0 {
            return Vec::new();
        }
        if n < candidates.len() {
            candidates.select_nth_unstable_by_key(n - 1, |&(signed_in, last, _)| (signed_in, last));
        }
        candidates[..n]
            .iter()
            .map(|(_, _, q)| Arc::clone(q))
            .collect()
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
    fn rebalancing_moves_idle_anonymous_viewers_first_and_active_signed_in_ones_last() {
        let sessions = Sessions::default();
        let mut queues = Vec::new();
        // (signed in, last inbound second)
        for (id, (signed_in, last)) in [
            (true, 50),
            (false, 90),
            (true, 10),
            (false, 20),
            (false, 60),
        ]
        .into_iter()
        .enumerate()
        {
            let outq = Arc::new(Outq::new(8, 1024));
            outq.touch(last);
            sessions.register(
                id as u64,
                SessionEntry {
                    outq: outq.clone(),
                    user: signed_in.then(UserId::generate),
                },
            );
            queues.push(outq);
        }
        let picked = |n| {
            let mut ids: Vec<usize> = sessions
                .cheapest_to_move(n)
                .iter()
                .map(|q| queues.iter().position(|x| Arc::ptr_eq(x, q)).unwrap())
                .collect();
            ids.sort();
            ids
        };
        // The three anonymous ones, the idlest two of them first.
        assert_eq!(picked(2), vec![3, 4]);
        assert_eq!(picked(3), vec![1, 3, 4]);
        // Then the signed-in one idle longest.
        assert_eq!(picked(4), vec![1, 2, 3, 4]);
        assert_eq!(picked(9).len(), 5);
        // A socket already closing is not picked again.
        queues[3].close(Close::new(close::RESTART, "rebalancing"));
        assert_eq!(picked(2), vec![1, 4]);
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
