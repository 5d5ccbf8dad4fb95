//! `Outq`: one socket's outbound queue and close request, shared by the socket's task (the
//! only consumer) and everything that writes to it (its channels' fan-out, its own replies,
//! the hub's sweeps and drain).
//!
//! - Frames are whole WebSocket frames ([`Bytes`], often shared with a topic's other viewers).
//!   The consumer takes everything queued at once and writes it with one vectored write, so a
//!   burst costs one wake-up and one syscall per socket, however many frames it holds.
//! - A producer wakes the consumer only when the queue goes from empty to non-empty.
//! - Budget, and the policy when it is exceeded: a socket holding more than `max_frames` frames
//!   or `max_bytes` bytes not yet accepted by the kernel is a slow consumer. The producer does not
//!   wait and buffers nothing elsewhere: the socket is asked to close with 1008 "slow consumer",
//!   the frames not yet started are dropped, and the rest of the topic is unaffected. The client
//!   reconnects and recovers with `since_seq`.
//! - The last inbound frame and the token's expiry are stamped here for the hub's sweep, which
//!   replaces a timer per socket.
//! - The access re-checks the socket owes (`Rechecks`) are queued here too, so the socket waits
//!   on one wake-up for everything others ask of it.
//!
//! Kept out: encoding (`wire.rs`), the socket I/O (`conn.rs`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::recheck::{Pending, Rechecks};

/// The close reason of a socket whose outbound queue overflowed.
pub(crate) const SLOW_CONSUMER: &str = "slow consumer";

/// Why and how the socket is to close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Close {
    pub code: u16,
    pub reason: String,
    /// Answer the comments being posted before closing (a drain).
    pub finish_posts: bool,
}

impl Close {
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        Self {
            code,
            reason: reason.into(),
            finish_posts: false,
        }
    }
}

/// What the consumer finds when it wakes.
pub(crate) enum Taken {
    /// Frames were appended to the caller's queue.
    Frames,
    Close(Close),
}

pub(crate) struct Outq {
    state: Mutex<State>,
    notify: Notify,
    max_frames: usize,
    max_bytes: usize,
    /// Seconds since the hub's epoch at the last inbound frame.
    last_inbound: AtomicU32,
    /// When the signed-in socket's token expires (Unix seconds); `i64::MAX`: never.
    expires_at: AtomicI64,
    rechecks: Rechecks,
}

#[derive(Default)]
struct State {
    frames: VecDeque<Bytes>,
    /// Bytes queued or taken and not yet accepted by the kernel.
    bytes: usize,
    /// Frames queued or taken and not yet wholly written.
    held: usize,
    close: Option<Close>,
}

impl Outq {
    pub fn new(max_frames: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            max_frames: max_frames.max(1),
            max_bytes: max_bytes.max(1),
            last_inbound: AtomicU32::new(0),
            expires_at: AtomicI64::new(i64::MAX),
            rechecks: Rechecks::default(),
        }
    }

    /// Queues a broadcast; `false` (and the socket is being closed) if it is a slow consumer or
    /// already closing.
    pub fn offer(&self, frame: Bytes) -> bool {
        self.queue(frame, true)
    }

    /// Queues one of the socket's own frames (a reply, a push): the budget applies, but a close
    /// in progress does not refuse it (a drain answers the comments being posted first).
    pub fn push_own(&self, frame: Bytes) -> bool {
        self.queue(frame, false)
    }

    fn queue(&self, frame: Bytes, refuse_when_closing: bool) -> bool {
        let mut state = self.state.lock().expect("outq lock");
        if refuse_when_closing && state.close.is_some() {
            return false;
        }
        if state.held >= self.max_frames || state.bytes + frame.len() > self.max_bytes {
            if state.close.is_none() {
                state.close = Some(Close::new(
                    banter_protocol::reasons::close::POLICY,
                    SLOW_CONSUMER,
                ));
            }
            drop(state);
            self.notify.notify_one();
            return false;
        }
        let was_empty = state.frames.is_empty();
        state.bytes += frame.len();
        state.held += 1;
        state.frames.push_back(frame);
        drop(state);
        if was_empty {
            self.notify.notify_one();
        }
        true
    }

    /// Takes every queued frame, closing or not (the last flush before a close frame).
    pub fn take_rest(&self, into: &mut VecDeque<Bytes>) {
        into.append(&mut self.state.lock().expect("outq lock").frames);
    }

    /// Completes when frames or a close may be waiting (then [`Outq::try_take`]). A signal
    /// sent while nobody waits is kept, so none is missed.
    pub async fn ready(&self) {
        self.notify.notified().await;
    }

    /// Asks the socket to re-authenticate and re-check every topic it joined.
    pub fn recheck_account(&self) {
        self.rechecks.account();
        self.notify.notify_one();
    }

    /// Asks the socket to re-check its access to `video`.
    pub fn recheck_video(&self, video: banter_core::VideoId) {
        self.rechecks.video(video);
        self.notify.notify_one();
    }

    /// The re-checks owed, if any.
    pub fn take_rechecks(&self) -> Option<Pending> {
        self.rechecks.take()
    }

    /// Asks the socket to close; the first request wins.
    pub fn close(&self, close: Close) {
        let mut state = self.state.lock().expect("outq lock");
        if state.close.is_none() {
            state.close = Some(close);
        }
        drop(state);
        self.notify.notify_one();
    }

    /// Whether a close was already asked for.
    pub fn is_closing(&self) -> bool {
        self.state.lock().expect("outq lock").close.is_some()
    }

    /// Waits until frames are queued or a close is asked for. Frames are moved to `into`
    /// (still counted against the budget until [`Outq::written`]); a close wins over frames.
    pub async fn take(&self, into: &mut VecDeque<Bytes>) -> Taken {
        loop {
            if let Some(taken) = self.try_take(into) {
                return taken;
            }
            self.notify.notified().await;
        }
    }

    /// Takes without waiting: `None` when nothing is queued.
    pub fn try_take(&self, into: &mut VecDeque<Bytes>) -> Option<Taken> {
        let mut state = self.state.lock().expect("outq lock");
        if let Some(close) = &state.close {
            return Some(Taken::Close(close.clone()));
        }
        if state.frames.is_empty() {
            return None;
        }
        if into.is_empty() {
            std::mem::swap(into, &mut state.frames);
        } else {
            into.append(&mut state.frames);
        }
        Some(Taken::Frames)
    }

    /// The kernel accepted `bytes` bytes of taken frames, completing `frames` of them.
    pub fn written(&self, bytes: usize, frames: usize) {
        let mut state = self.state.lock().expect("outq lock");
        state.bytes = state.bytes.saturating_sub(bytes);
        state.held = state.held.saturating_sub(frames);
    }

    pub fn touch(&self, now_secs: u32) {
        self.last_inbound.store(now_secs, Ordering::Relaxed);
    }

    pub fn last_inbound(&self) -> u32 {
        self.last_inbound.load(Ordering::Relaxed)
    }

    pub fn set_expiry(&self, unix_secs: i64) {
        self.expires_at.store(unix_secs, Ordering::Relaxed);
    }

    pub fn expires_at(&self) -> i64 {
        self.expires_at.load(Ordering::Relaxed)
    }
}

/// A consumer for tests and benchmarks: takes frames one at a time, as the text they carry.
#[doc(hidden)]
pub struct Receiver {
    outq: Arc<Outq>,
    taken: VecDeque<Bytes>,
}

impl Receiver {
    pub(crate) fn new(outq: Arc<Outq>) -> Self {
        Self {
            outq,
            taken: VecDeque::new(),
        }
    }

    /// The next frame; `None` once the socket is asked to close.
    pub async fn recv(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.taken.pop_front() {
                self.outq.written(frame.len(), 1);
                return Some(frame);
            }
            if let Taken::Close(_) = self.outq.take(&mut self.taken).await {
                return None;
            }
        }
    }

    /// The next frame if one is queued.
    #[cfg(test)]
    pub fn try_recv(&mut self) -> Option<Bytes> {
        if self.taken.is_empty() {
            self.outq.try_take(&mut self.taken);
        }
        let frame = self.taken.pop_front()?;
        self.outq.written(frame.len(), 1);
        Some(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_is_taken_at_once_and_a_full_budget_closes_as_a_slow_consumer() {
        let q = Outq::new(100, 10);
        assert!(q.offer(Bytes::from_static(b"abcd")));
        assert!(q.offer(Bytes::from_static(b"efgh")));
        let mut taken = VecDeque::new();
        assert!(matches!(q.take(&mut taken).await, Taken::Frames));
        assert_eq!(taken.len(), 2, "both frames in one take");
        // Taken but unwritten bytes still count: 8 + 4 > 10.
        assert!(!q.offer(Bytes::from_static(b"ijkl")));
        let Taken::Close(close) = q.take(&mut taken).await else {
            panic!("closing")
        };
        assert_eq!((close.code, close.reason.as_str()), (1008, "slow consumer"));
    }

    #[test]
    fn written_bytes_free_the_budget_and_the_frame_count_is_bounded_too() {
        let q = Outq::new(2, 10);
        let mut taken = VecDeque::new();
        assert!(q.offer(Bytes::from_static(b"abcdefgh")));
        assert!(q.try_take(&mut taken).is_some());
        q.written(8, 1);
        assert!(q.offer(Bytes::from_static(b"abcdefgh")), "budget freed");
        assert!(q.offer(Bytes::from_static(b"a")));
        assert!(!q.offer(Bytes::from_static(b"b")), "two frames at most");
    }

    #[test]
    fn the_first_close_request_wins() {
        let q = Outq::new(2, 10);
        q.close(Close::new(1012, "server draining"));
        q.close(Close::new(1000, "later"));
        assert!(q.is_closing());
        let Some(Taken::Close(close)) = q.try_take(&mut VecDeque::new()) else {
            panic!("closing")
        };
        assert_eq!(close.reason, "server draining");
    }
}
