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

/// A broadcast encoded once per serializer version and shared by every subscriber.
pub struct SharedFrame {
    topic: String,
    event: &'static str,
    payload: String,
    v2: OnceLock<Bytes>,
    v1: OnceLock<Bytes>,
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

    /// The whole WebSocket frame for `vsn` (a cheap reference-counted clone), encoded on first
    /// use only.
    pub fn bytes(&self, vsn: Vsn) -> Bytes {
        let cell = match vsn {
            Vsn::V2 => &self.v2,
            Vsn::V1 => &self.v1,
        };
        cell.get_or_init(|| {
            encode(encode_broadcast(
                vsn,
                &self.topic,
                self.event,
                &self.payload,
            ))
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
    fn a_close_reason_is_cut_to_fit_a_control_frame_on_a_character_boundary() {
        let long = "é".repeat(100);
        let actix_http::ws::Frame::Close(Some(reason)) = decode(&close(1008, &long)) else {
            panic!("a close frame")
        };
        assert_eq!(u16::from(reason.code), 1008);
        assert!(reason.description.unwrap().len() <= 123);
    }
}
