//! The per-connection outbox and the shared broadcast frame.
//!
//! Policy when full: the producer (a channel) does not wait and does not buffer elsewhere; it
//! marks the connection as a slow consumer, which closes it with 1008 "slow consumer". The rest
//! of the topic is unaffected. The client reconnects and recovers with `since_seq`.

use std::sync::{Arc, Mutex, OnceLock};

use banter_protocol::{Frame, Vsn, encode_broadcast};
use bytestring::ByteString;
use tokio::sync::{Notify, mpsc};

/// The close reason of a socket whose outbox overflowed.
pub(crate) const SLOW_CONSUMER: &str = "slow consumer";

/// A broadcast encoded once per serializer version and shared by every subscriber.
pub struct SharedFrame {
    topic: String,
    event: &'static str,
    payload: String,
    v2: OnceLock<ByteString>,
    v1: OnceLock<ByteString>,
}

impl SharedFrame {
    pub fn new(topic: &str, event: &'static str, payload: String) -> Arc<Self> {
        Arc::new(Self {
            topic: topic.to_owned(),
            event,
            payload,
            v2: OnceLock::new(),
            v1: OnceLock::new(),
        })
    }

    /// The encoded frame for `vsn`, encoded on first use only.
    pub fn text(&self, vsn: Vsn) -> ByteString {
        let cell = match vsn {
            Vsn::V2 => &self.v2,
            Vsn::V1 => &self.v1,
        };
        cell.get_or_init(
            || match encode_broadcast(vsn, &self.topic, self.event, &self.payload) {
                Frame::Text(t) => ByteString::from(t),
                Frame::Binary(_) => unreachable!("broadcasts are text"),
            },
        )
        .clone()
    }
}

pub enum Outbound {
    /// A broadcast, shared with the topic's other subscribers.
    Shared(Arc<SharedFrame>),
}

/// How a channel (or anything else) asks a connection to close.
#[derive(Default)]
pub struct Control {
    notify: Notify,
    reason: Mutex<Option<(u16, String)>>,
}

impl Control {
    pub fn close(&self, code: u16, reason: &str) {
        let mut slot = self.reason.lock().expect("control lock");
        if slot.is_none() {
            *slot = Some((code, reason.to_owned()));
        }
        self.notify.notify_one();
    }

    /// Whether a close was already asked for.
    pub fn is_closing(&self) -> bool {
        self.reason.lock().expect("control lock").is_some()
    }

    pub async fn closed(&self) -> (u16, String) {
        loop {
            if let Some(reason) = self.reason.lock().expect("control lock").clone() {
                return reason;
            }
            self.notify.notified().await;
        }
    }
}

/// The producer side of a connection's outbox.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Outbound>,
    control: Arc<Control>,
}

impl Outbox {
    pub fn new(capacity: usize) -> (Self, mpsc::Receiver<Outbound>, Arc<Control>) {
        let (tx, rx) = mpsc::channel(capacity);
        let control = Arc::new(Control::default());
        (
            Self {
                tx,
                control: control.clone(),
            },
            rx,
            control,
        )
    }

    /// Queues a frame; `false` (and the connection is being closed) if it is a slow consumer
    /// or already gone.
    pub fn offer(&self, frame: Outbound) -> bool {
        match self.tx.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.control
                    .close(banter_protocol::reasons::close::POLICY, SLOW_CONSUMER);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_outbox_closes_the_connection_as_a_slow_consumer() {
        let (outbox, mut rx, control) = Outbox::new(2);
        let frame = SharedFrame::new("comments:v", "comment_created", "{}".into());
        assert!(outbox.offer(Outbound::Shared(frame.clone())));
        assert!(outbox.offer(Outbound::Shared(frame.clone())));
        assert!(!outbox.offer(Outbound::Shared(frame.clone())));
        assert_eq!(control.closed().await, (1008, "slow consumer".to_owned()));
        assert!(rx.recv().await.is_some());
    }

    #[test]
    fn a_shared_frame_is_encoded_once_per_version() {
        let frame = SharedFrame::new("comments:v", "comment_created", r#"{"seq":1}"#.into());
        let a = frame.text(Vsn::V2);
        let b = frame.text(Vsn::V2);
        assert_eq!(
            a.as_bytes().as_ptr(),
            b.as_bytes().as_ptr(),
            "the same buffer, not a copy"
        );
        assert_eq!(
            &*a,
            r#"[null,null,"comments:v","comment_created",{"seq":1}]"#
        );
        assert!(frame.text(Vsn::V1).starts_with("{\"topic\""));
    }
}
