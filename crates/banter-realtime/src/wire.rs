//! Outbound WebSocket frames as the bytes that go on the wire: header and payload in one
//! buffer, encoded by actix-http's WebSocket codec (a server's frames are unmasked).
//!
//! - [`SharedFrame`]: a broadcast, encoded once per serializer on first use and shared by
//!   reference count with every subscriber, so fan-out copies no JSON, no payload and no header.
//! - [`encode`], [`close`]: a frame for one socket (a reply, a push, the close frame).
//!
//! Kept out: queuing and writing (`outq.rs`, `conn.rs`), Phoenix encoding (`banter-protocol`).

use std::sync::{Arc, OnceLock};

use actix_codec::Encoder;
use actix_http::ws::{CloseCode, CloseReason, Codec, Message};
use banter_protocol::{Frame, Vsn, encode_broadcast};
use bytes::{Bytes, BytesMut};

/// A broadcast (or a burst of them) encoded once per serializer version and shared by every
/// subscriber.
pub struct SharedFrame {
    topic: String,
    /// Each broadcast's event and payload; a burst becomes consecutive WebSocket frames in one
    /// buffer, so a socket takes it in one offer and one write.
    items: Vec<(&'static str, String)>,
    v2: OnceLock<Bytes>,
    v1: OnceLock<Bytes>,
}

impl SharedFrame {
    pub fn new(topic: &str, event: &'static str, payload: String) -> Arc<Self> {
        Self::burst(topic, vec![(event, payload)])
    }

    /// Several broadcasts as one buffer of consecutive frames, in order.
    pub fn burst(topic: &str, items: Vec<(&'static str, String)>) -> Arc<Self> {
        Arc::new(Self {
            topic: topic.to_owned(),
            items,
            v2: OnceLock::new(),
            v1: OnceLock::new(),
        })
    }

    /// How many broadcasts the buffer holds.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The whole WebSocket frame(s) for `vsn` (a cheap reference-counted clone), encoded on
    /// first use only.
    pub fn bytes(&self, vsn: Vsn) -> Bytes {
        let cell = match vsn {
            Vsn::V2 => &self.v2,
            Vsn::V1 => &self.v1,
        };
        cell.get_or_init(|| {
            let frame = |(event, payload): &(&'static str, String)| {
                encode(encode_broadcast(vsn, &self.topic, event, payload))
            };
            match self.items.as_slice() {
                [one] => frame(one),
                many => {
                    let mut buf = BytesMut::new();
                    for item in many {
                        buf.extend_from_slice(&frame(item));
                    }
                    buf.freeze()
                }
            }
        })
        .clone()
    }
}

/// One whole WebSocket frame: a text frame for JSON, a binary frame for Phoenix binary pushes.
pub fn encode(frame: Frame) -> Bytes {
    let message = match frame {
        Frame::Text(text) => Message::Text(text.into()),
        Frame::Binary(bytes) => Message::Binary(bytes.into()),
    };
    write(message)
}

/// A pong answering a ping with `payload`.
pub fn pong(payload: Bytes) -> Bytes {
    write(Message::Pong(payload))
}

/// The close frame: `code` and a reason (truncated to fit a control frame's 125 bytes).
pub fn close(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    write(Message::Close(Some(CloseReason {
        code: CloseCode::from(code),
        description: (end > 0).then(|| reason[..end].to_owned()),
    })))
}

/// The text a whole text frame carries.
#[cfg(test)]
pub fn text_of(frame: &[u8]) -> String {
    use actix_codec::Decoder;
    let mut buf = BytesMut::from(frame);
    match Codec::new().client_mode().decode(&mut buf) {
        Ok(Some(actix_http::ws::Frame::Text(text))) => {
            String::from_utf8(text.to_vec()).expect("UTF-8")
        }
        other => panic!("not a whole text frame: {other:?}"),
    }
}

/// The texts of the whole text frames one buffer holds (a burst holds several).
#[cfg(test)]
pub fn texts_of(frames: &[u8]) -> Vec<String> {
    use actix_codec::Decoder;
    let mut buf = BytesMut::from(frames);
    let mut codec = Codec::new().client_mode();
    let mut out = Vec::new();
    while !buf.is_empty() {
        match codec.decode(&mut buf) {
            Ok(Some(actix_http::ws::Frame::Text(text))) => {
                out.push(String::from_utf8(text.to_vec()).expect("UTF-8"))
            }
            other => panic!("not whole text frames: {other:?}"),
        }
    }
    out
}

fn write(message: Message) -> Bytes {
    let mut buf = BytesMut::new();
    Codec::new()
        .encode(message, &mut buf)
        .expect("encoding an unmasked frame cannot fail");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use actix_codec::Decoder;

    use super::*;

    fn decode(bytes: &Bytes) -> actix_http::ws::Frame {
        let mut buf = BytesMut::from(&bytes[..]);
        Codec::new()
            .client_mode()
            .decode(&mut buf)
            .unwrap()
            .expect("a whole frame")
    }

    #[test]
    fn a_shared_frame_is_one_buffer_per_version_holding_header_and_payload() {
        let frame = SharedFrame::new("comments:v", "comment_created", r#"{"seq":1}"#.into());
        let a = frame.bytes(Vsn::V2);
        let b = frame.bytes(Vsn::V2);
        assert_eq!(a.as_ptr(), b.as_ptr(), "the same buffer, not a copy");
        assert_eq!(a[0], 0x81, "FIN + text");
        let actix_http::ws::Frame::Text(text) = decode(&a) else {
            panic!("a text frame")
        };
        assert_eq!(
            &text[..],
            br#"[null,null,"comments:v","comment_created",{"seq":1}]"#
        );
        let actix_http::ws::Frame::Text(v1) = decode(&frame.bytes(Vsn::V1)) else {
            panic!("a text frame")
        };
        assert!(v1.starts_with(b"{\"topic\""));
    }

    #[test]
    fn a_burst_is_consecutive_whole_frames_in_one_buffer_in_order() {
        let burst = SharedFrame::burst(
            "comments:v",
            vec![
                (
                    "comments_skipped",
                    r#"{"from_seq":1,"to_seq":4,"count":4}"#.into(),
                ),
                ("comment_created", r#"{"seq":5}"#.into()),
            ],
        );
        assert_eq!(burst.len(), 2);
        let texts = texts_of(&burst.bytes(Vsn::V2));
        assert_eq!(
            texts,
            [
                r#"[null,null,"comments:v","comments_skipped",{"from_seq":1,"to_seq":4,"count":4}]"#,
                r#"[null,null,"comments:v","comment_created",{"seq":5}]"#,
            ]
        );
    }

    #[test]
    fn a_close_reason_is_cut_to_fit_a_control_frame_on_a_character_boundary() {
        let long = "é".repeat(100);
        let actix_http::ws::Frame::Close(Some(reason)) = decode(&close(1008, &long)) else {
            panic!("a close frame")
        };
        assert_eq!(u16::from(reason.code), 1008);
        assert!(reason.description.unwrap().len() <= 123);
    }
}
