//! Server frames. A broadcast is encoded from an already-serialized payload so the channel can
//! serialize it once and share the frame among all subscribers.

use serde_json::Value;

use crate::Vsn;

/// A frame to write to a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

impl Frame {
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Frame::Text(t) => Some(t),
            Frame::Binary(_) => None,
        }
    }
}

fn json_str(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

fn json_ref(r: Option<&str>) -> String {
    r.map_or_else(|| "null".to_owned(), json_str)
}

/// `phx_reply` to a message: `{status, response}` with the message's refs echoed.
pub fn encode_reply(
    vsn: Vsn,
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    status: &str,
    response: &Value,
) -> Frame {
    let payload = serde_json::json!({"status": status, "response": response}).to_string();
    raw(
        vsn,
        join_ref,
        msg_ref,
        topic,
        crate::events::REPLY,
        &payload,
    )
}

/// A push to one channel instance: `[join_ref, null, topic, event, payload]`.
pub fn encode_push(
    vsn: Vsn,
    join_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload: &Value,
) -> Frame {
    raw(vsn, join_ref, None, topic, event, &payload.to_string())
}

/// A broadcast to every subscriber: `[null, null, topic, event, payload]`, from the payload's
/// JSON text.
pub fn encode_broadcast(vsn: Vsn, topic: &str, event: &str, payload_json: &str) -> Frame {
    raw(vsn, None, None, topic, event, payload_json)
}

fn raw(
    vsn: Vsn,
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    event: &str,
    payload_json: &str,
) -> Frame {
    Frame::Text(match vsn {
        Vsn::V2 => format!(
            "[{},{},{},{},{}]",
            json_ref(join_ref),
            json_ref(msg_ref),
            json_str(topic),
            json_str(event),
            payload_json
        ),
        // V1 never carries join_ref.
        Vsn::V1 => format!(
            "{{\"topic\":{},\"event\":{},\"payload\":{},\"ref\":{}}}",
            json_str(topic),
            json_str(event),
            payload_json,
            json_ref(msg_ref)
        ),
    })
}

/// A binary reply (kind 1) to a binary push: the response is raw bytes. Strings longer than
/// 255 bytes cannot be framed and are truncated at a character boundary.
pub fn encode_reply_binary(
    join_ref: Option<&str>,
    msg_ref: Option<&str>,
    topic: &str,
    status: &str,
    response: &[u8],
) -> Vec<u8> {
    let fields = [join_ref.unwrap_or(""), msg_ref.unwrap_or(""), topic, status].map(clip);
    let mut out =
        Vec::with_capacity(5 + fields.iter().map(|f| f.len()).sum::<usize>() + response.len());
    out.push(1);
    out.extend(fields.iter().map(|f| f.len() as u8));
    for field in fields {
        out.extend_from_slice(field.as_bytes());
    }
    out.extend_from_slice(response);
    out
}

fn clip(s: &str) -> &str {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{Message, Payload, decode_text};

    #[test]
    fn a_heartbeat_reply_echoes_the_ref_as_a_string() {
        let frame = encode_reply(Vsn::V2, None, Some("8"), "phoenix", "ok", &json!({}));
        let value: Value = serde_json::from_str(frame.as_text().unwrap()).unwrap();
        assert_eq!(
            value,
            json!([null, "8", "phoenix", "phx_reply", {"status": "ok", "response": {}}])
        );
    }

    #[test]
    fn pushes_and_broadcasts_have_the_spec_shape() {
        let push = encode_push(
            Vsn::V2,
            Some("3"),
            "comments:v",
            "presence_state",
            &json!({}),
        );
        assert_eq!(
            push.as_text().unwrap(),
            r#"["3",null,"comments:v","presence_state",{}]"#
        );
        let b = encode_broadcast(Vsn::V2, "comments:v", "comment_created", r#"{"seq":1}"#);
        assert_eq!(
            b.as_text().unwrap(),
            r#"[null,null,"comments:v","comment_created",{"seq":1}]"#
        );
        let v1 = encode_broadcast(Vsn::V1, "comments:v", "comment_created", r#"{"seq":1}"#);
        assert_eq!(
            v1.as_text().unwrap(),
            r#"{"topic":"comments:v","event":"comment_created","payload":{"seq":1},"ref":null}"#
        );
    }

    #[test]
    fn topics_with_quotes_are_escaped_and_round_trip() {
        let frame = encode_push(
            Vsn::V2,
            Some("1"),
            "a\"b\\c",
            "e",
            &json!({"x": "<script>"}),
        );
        let back = decode_text(Vsn::V2, frame.as_text().unwrap()).unwrap();
        assert_eq!(
            back,
            Message {
                join_ref: Some("1".into()),
                msg_ref: None,
                topic: "a\"b\\c".into(),
                event: "e".into(),
                payload: Payload::Json(json!({"x": "<script>"})),
            }
        );
    }

    #[test]
    fn a_binary_reply_has_kind_1_and_its_lengths() {
        let frame = encode_reply_binary(Some("3"), Some("9"), "t", "ok", &[1, 2]);
        assert_eq!(
            frame,
            vec![1, 1, 1, 1, 2, b'3', b'9', b't', b'o', b'k', 1, 2]
        );
    }
}
