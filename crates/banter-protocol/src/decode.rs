//! Client frames to messages. Total: any byte sequence yields a message or a `DecodeError`.
//! Input size is bounded by the transport before decoding, so decoding allocates at most a
//! small multiple of the frame.

use serde_json::Value;

use crate::{Message, Payload, Vsn};

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("frame is not valid JSON")]
    NotJson,
    #[error("frame has the wrong shape: {0}")]
    Shape(&'static str),
    #[error("binary frame is truncated")]
    Truncated,
    #[error("binary frame has unknown kind {0}")]
    UnknownKind(u8),
    #[error("binary frame header is not UTF-8")]
    NotUtf8,
    #[error("binary frames need vsn 2.0.0")]
    BinaryNeedsV2,
}

fn as_ref(value: &Value, what: &'static str) -> Result<Option<String>, DecodeError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        // Hand-written clients sometimes send numbers; echo them back as strings.
        Value::Number(n) => Ok(Some(n.to_string())),
        _ => Err(DecodeError::Shape(what)),
    }
}

fn as_string(value: Option<&Value>, what: &'static str) -> Result<String, DecodeError> {
    match value {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(DecodeError::Shape(what)),
    }
}

/// Decodes a text frame in the socket's serializer.
pub fn decode_text(vsn: Vsn, text: &str) -> Result<Message, DecodeError> {
    let value: Value = serde_json::from_str(text).map_err(|_| DecodeError::NotJson)?;
    match vsn {
        Vsn::V2 => {
            let Value::Array(items) = value else {
                return Err(DecodeError::Shape(
                    "expected [join_ref, ref, topic, event, payload]",
                ));
            };
            // Extra elements are ignored, as Phoenix does.
            if items.len() < 5 {
                return Err(DecodeError::Shape(
                    "expected [join_ref, ref, topic, event, payload]",
                ));
            }
            let mut items = items.into_iter();
            let join_ref = as_ref(
                &items.next().unwrap_or_default(),
                "join_ref must be a string or null",
            )?;
            let msg_ref = as_ref(
                &items.next().unwrap_or_default(),
                "ref must be a string or null",
            )?;
            let topic = as_string(items.next().as_ref(), "topic must be a string")?;
            let event = as_string(items.next().as_ref(), "event must be a string")?;
            let payload = items.next().unwrap_or_default();
            Ok(Message {
                join_ref,
                msg_ref,
                topic,
                event,
                payload: Payload::Json(payload),
            })
        }
        Vsn::V1 => {
            let Value::Object(mut map) = value else {
                return Err(DecodeError::Shape("expected {topic, event, payload, ref}"));
            };
            let msg_ref = match map.get("ref") {
                Some(r) => as_ref(r, "ref must be a string or null")?,
                None => return Err(DecodeError::Shape("ref is required (it may be null)")),
            };
            let join_ref = match map.get("join_ref") {
                Some(r) => as_ref(r, "join_ref must be a string or null")?,
                None => None,
            };
            let topic = as_string(map.get("topic"), "topic must be a string")?;
            let event = as_string(map.get("event"), "event must be a string")?;
            let payload = map.remove("payload").unwrap_or(Value::Null);
            Ok(Message {
                join_ref,
                msg_ref,
                topic,
                event,
                payload: Payload::Json(payload),
            })
        }
    }
}

/// Decodes a client binary frame (kind 0, push): `0, jr_len, ref_len, topic_len, event_len`,
/// then the four strings, then the payload bytes.
pub fn decode_binary(vsn: Vsn, bytes: &[u8]) -> Result<Message, DecodeError> {
    if vsn != Vsn::V2 {
        return Err(DecodeError::BinaryNeedsV2);
    }
    let (&kind, rest) = bytes.split_first().ok_or(DecodeError::Truncated)?;
    if kind != 0 {
        return Err(DecodeError::UnknownKind(kind));
    }
    if rest.len() < 4 {
        return Err(DecodeError::Truncated);
    }
    let lens = [rest[0], rest[1], rest[2], rest[3]].map(usize::from);
    let mut body = &rest[4..];
    let mut take = |len: usize| -> Result<String, DecodeError> {
        if body.len() < len {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = body.split_at(len);
        body = tail;
        String::from_utf8(head.to_vec()).map_err(|_| DecodeError::NotUtf8)
    };
    let join_ref = take(lens[0])?;
    let msg_ref = take(lens[1])?;
    let topic = take(lens[2])?;
    let event = take(lens[3])?;
    let non_empty = |s: String| (!s.is_empty()).then_some(s);
    Ok(Message {
        join_ref: non_empty(join_ref),
        msg_ref: non_empty(msg_ref),
        topic,
        event,
        payload: Payload::Binary(body.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_v2_join_decodes_with_refs_as_strings() {
        let m = decode_text(
            Vsn::V2,
            r#"["3","3","comments:v1","phx_join",{"since_seq":4}]"#,
        )
        .unwrap();
        assert_eq!(m.join_ref.as_deref(), Some("3"));
        assert_eq!(m.msg_ref.as_deref(), Some("3"));
        assert_eq!(
            (m.topic.as_str(), m.event.as_str()),
            ("comments:v1", "phx_join")
        );
        assert_eq!(m.payload, Payload::Json(json!({"since_seq": 4})));
    }

    #[test]
    fn a_heartbeat_has_a_null_join_ref_and_extra_elements_are_ignored() {
        let m = decode_text(Vsn::V2, r#"[null,"8","phoenix","heartbeat",{},"extra"]"#).unwrap();
        assert_eq!(m.join_ref, None);
        assert_eq!(m.msg_ref.as_deref(), Some("8"));
    }

    #[test]
    fn malformed_v2_frames_are_errors() {
        assert_eq!(decode_text(Vsn::V2, "not json"), Err(DecodeError::NotJson));
        for bad in [
            r#"{"topic":"x"}"#,
            r#"["1","1","t","e"]"#,
            r#"[1,2,3,4,5]"#,
            r#"[null,null,"t",5,{}]"#,
            r#"[[],null,"t","e",{}]"#,
        ] {
            assert!(
                matches!(decode_text(Vsn::V2, bad), Err(DecodeError::Shape(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn v1_needs_a_ref_key_and_reads_objects() {
        let m = decode_text(
            Vsn::V1,
            r#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"1"}"#,
        )
        .unwrap();
        assert_eq!(m.msg_ref.as_deref(), Some("1"));
        assert!(
            decode_text(
                Vsn::V1,
                r#"{"topic":"phoenix","event":"heartbeat","payload":{}}"#
            )
            .is_err()
        );
        assert!(decode_text(Vsn::V1, r#"[null,"1","phoenix","heartbeat",{}]"#).is_err());
    }

    #[test]
    fn the_observed_binary_push_decodes() {
        let mut frame = vec![0u8, 1, 1, 10, 5];
        frame.extend_from_slice(b"38room:lobbybinup");
        frame.extend_from_slice(&[9, 8, 7]);
        let m = decode_binary(Vsn::V2, &frame).unwrap();
        assert_eq!(m.join_ref.as_deref(), Some("3"));
        assert_eq!(m.msg_ref.as_deref(), Some("8"));
        assert_eq!(
            (m.topic.as_str(), m.event.as_str()),
            ("room:lobby", "binup")
        );
        assert_eq!(m.payload, Payload::Binary(vec![9, 8, 7]));
    }

    #[test]
    fn bad_binary_frames_are_errors() {
        assert_eq!(decode_binary(Vsn::V2, &[]), Err(DecodeError::Truncated));
        assert_eq!(
            decode_binary(Vsn::V2, &[1, 0, 0, 0, 0]),
            Err(DecodeError::UnknownKind(1))
        );
        assert_eq!(
            decode_binary(Vsn::V2, &[0, 1, 1, 200, 5, b'3']),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            decode_binary(Vsn::V2, &[0, 1, 0, 0, 0, 0xff]),
            Err(DecodeError::NotUtf8)
        );
        assert_eq!(
            decode_binary(Vsn::V1, &[0, 0, 0, 0, 0]),
            Err(DecodeError::BinaryNeedsV2)
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_binary(Vsn::V2, &bytes);
            if let Ok(text) = std::str::from_utf8(&bytes) {
                let _ = decode_text(Vsn::V2, text);
                let _ = decode_text(Vsn::V1, text);
            }
        }

        #[test]
        fn decoding_json_shaped_text_never_panics(text in r#"[\[\]{}",:0-9a-z_ nul]{0,200}"#) {
            let _ = decode_text(Vsn::V2, &text);
            let _ = decode_text(Vsn::V1, &text);
        }

        #[test]
        fn a_decoded_binary_payload_is_a_suffix_of_the_frame(bytes in proptest::collection::vec(any::<u8>(), 5..300)) {
            if let Ok(Message { payload: Payload::Binary(p), .. }) = decode_binary(Vsn::V2, &bytes) {
                prop_assert!(bytes.ends_with(&p));
            }
        }
    }
}
