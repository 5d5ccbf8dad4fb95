//! The client half of Phoenix Channels V2 JSON as `banter-load` speaks it: the frames a client
//! sends (join, push, heartbeat) and a borrowing parse of the frames a server sends, which reads
//! only what the measurements need (a comment's `seq` and body, a reply's ref and status).
//!
//! Kept out: sockets and timing (`client`), what the numbers mean (`seq_tracker`, `recorder`).
//! Event and topic names come from `banter-protocol`, the server's own registry.

use std::borrow::Cow;

use banter_protocol::{PHOENIX_TOPIC, events};
use serde::{
    Deserialize,
    de::{self, IgnoredAny, SeqAccess, Visitor},
};
use serde_json::{Value, json, value::RawValue};

/// A join of `topic`; `since_seq` asks for every comment after it (recovery after a reconnect).
pub fn join(join_ref: u64, topic: &str, since_seq: Option<i64>) -> String {
    let payload = match since_seq {
        Some(seq) => json!({ "since_seq": seq }),
        None => json!({}),
    };
    frame(Some(join_ref), join_ref, topic, events::JOIN, &payload)
}

/// A `new_comment` push on a joined topic.
pub fn new_comment(join_ref: u64, msg_ref: u64, topic: &str, body: &str) -> String {
    frame(
        Some(join_ref),
        msg_ref,
        topic,
        events::NEW_COMMENT,
        &json!({ "body": body }),
    )
}

pub fn heartbeat(msg_ref: u64) -> String {
    frame(None, msg_ref, PHOENIX_TOPIC, events::HEARTBEAT, &json!({}))
}

fn frame(join_ref: Option<u64>, msg_ref: u64, topic: &str, event: &str, payload: &Value) -> String {
    json!([
        join_ref.map(|r| r.to_string()),
        msg_ref.to_string(),
        topic,
        event,
        payload
    ])
    .to_string()
}

/// What a server frame means to a load client.
#[derive(Debug)]
pub enum Inbound<'a> {
    /// A reply to one of our pushes (join, comment, heartbeat).
    Reply {
        msg_ref: Option<u64>,
        ok: bool,
        response: &'a RawValue,
    },
    /// A new comment broadcast on a topic.
    Comment {
        topic: Cow<'a, str>,
        seq: i64,
        body: Cow<'a, str>,
    },
    /// `comments_skipped`: the delivery budget left out `from..=to` on this topic.
    Skipped {
        topic: Cow<'a, str>,
        from: i64,
        to: i64,
    },
    /// The server closed or errored one channel.
    ChannelClosed { topic: Cow<'a, str> },
    /// Anything else (presence, viewer counts, edits): counted, not inspected.
    Other,
}

#[derive(Deserialize)]
struct RawReply<'a> {
    #[serde(borrow)]
    status: Cow<'a, str>,
    #[serde(borrow)]
    response: &'a RawValue,
}

/// The fields of a comment the measurements use; the rest of the payload is skipped unread.
#[derive(Deserialize, Debug)]
pub struct CommentSeq<'a> {
    pub seq: i64,
    #[serde(borrow)]
    pub body: Cow<'a, str>,
}

/// A run of comments the delivery budget did not send (`comments_skipped`, or one entry of a
/// join reply's `skipped`).
#[derive(Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkippedRun {
    pub from_seq: i64,
    pub to_seq: i64,
}

#[derive(Debug, thiserror::Error)]
#[error("server frame is not a Phoenix V2 message: {0}")]
pub struct ParseError(String);

/// A string field that borrows from the frame when it has no escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// Parses a server frame in one pass: the payload is read as the event says, not scanned
/// once as raw JSON and then again as its type.
pub fn parse(text: &str) -> Result<Inbound<'_>, ParseError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let inbound = de::Deserializer::deserialize_seq(&mut de, FrameVisitor)
        .map_err(|e| ParseError(e.to_string()))?;
    de.end().map_err(|e| ParseError(e.to_string()))?;
    Ok(inbound)
}

/// `[join_ref, ref, topic, event, payload]`, with the payload's type chosen by the event.
struct FrameVisitor;

impl<'de> Visitor<'de> for FrameVisitor {
    type Value = Inbound<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Phoenix V2 array [join_ref, ref, topic, event, payload]")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Inbound<'de>, A::Error> {
        let _join_ref: Option<Text<'de>> = element(&mut seq, 0, &self)?;
        let msg_ref: Option<Text<'de>> = element(&mut seq, 1, &self)?;
        let Text(topic) = element(&mut seq, 2, &self)?;
        let Text(event) = element(&mut seq, 3, &self)?;
        let inbound = match event.as_ref() {
            events::COMMENT_CREATED => {
                let c: CommentSeq<'de> = element(&mut seq, 4, &self)
                    .map_err(|e| de::Error::custom(format!("comment_created payload: {e}")))?;
                Inbound::Comment {
                    topic,
                    seq: c.seq,
                    body: c.body,
                }
            }
            events::COMMENTS_SKIPPED => {
                let run: SkippedRun = element(&mut seq, 4, &self)
                    .map_err(|e| de::Error::custom(format!("comments_skipped payload: {e}")))?;
                Inbound::Skipped {
                    topic,
                    from: run.from_seq,
                    to: run.to_seq,
                }
            }
            events::REPLY => {
                let reply: RawReply<'de> = element(&mut seq, 4, &self)
                    .map_err(|e| de::Error::custom(format!("phx_reply payload: {e}")))?;
                Inbound::Reply {
                    msg_ref: msg_ref.and_then(|Text(r)| r.parse().ok()),
                    ok: reply.status == "ok",
                    response: reply.response,
                }
            }
            events::CLOSE | events::ERROR => {
                let _: IgnoredAny = element(&mut seq, 4, &self)?;
                Inbound::ChannelClosed { topic }
            }
            _ => {
                let _: IgnoredAny = element(&mut seq, 4, &self)?;
                Inbound::Other
            }
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(6, &self));
        }
        Ok(inbound)
    }
}

fn element<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    index: usize,
    expected: &FrameVisitor,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(index, expected))
}

/// The parts of a join reply's response that matter for loss accounting.
#[derive(Deserialize, Debug)]
pub struct JoinOk<'a> {
    pub last_seq: i64,
    #[serde(borrow, default)]
    pub comments: Vec<CommentSeq<'a>>,
    pub recovered: Option<bool>,
    /// What a recovery left out under the delivery budget.
    #[serde(default)]
    pub skipped: Vec<SkippedRun>,
}

/// The `reason` of an error reply, for the error tally.
pub fn error_reason(response: &RawValue) -> String {
    #[derive(Deserialize)]
    struct Reason<'a> {
        #[serde(borrow)]
        reason: Option<Cow<'a, str>>,
    }
    serde_json::from_str::<Reason>(response.get())
        .ok()
        .and_then(|r| r.reason.map(Cow::into_owned))
        .unwrap_or_else(|| "error reply without a reason".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_are_v2_arrays() {
        assert_eq!(
            join(3, "comments:a", Some(7)),
            r#"["3","3","comments:a","phx_join",{"since_seq":7}]"#
        );
        assert_eq!(heartbeat(9), r#"[null,"9","phoenix","heartbeat",{}]"#);
        assert_eq!(
            new_comment(3, 4, "comments:a", "hi \"x\""),
            r#"["3","4","comments:a","new_comment",{"body":"hi \"x\""}]"#
        );
    }

    #[test]
    fn parses_comments_replies_and_closes() {
        let text = r#"[null,null,"comments:\u0061","comment_created",{"id":"x","seq":12,"author":{"id":"u","username":"n"},"body":"t=5 \"q\"","deleted":false}]"#;
        match parse(text).unwrap() {
            Inbound::Comment { topic, seq, body } => {
                assert_eq!(
                    (topic.as_ref(), seq, body.as_ref()),
                    ("comments:a", 12, "t=5 \"q\"")
                );
            }
            other => panic!("{other:?}"),
        }
        let reply = r#"["1","2","comments:a","phx_reply",{"status":"error","response":{"reason":"rate_limited"}}]"#;
        match parse(reply).unwrap() {
            Inbound::Reply {
                msg_ref,
                ok,
                response,
            } => {
                assert_eq!((msg_ref, ok), (Some(2), false));
                assert_eq!(error_reason(response), "rate_limited");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse(r#"["1",null,"comments:a","phx_close",{}]"#).unwrap(),
            Inbound::ChannelClosed { .. }
        ));
        assert!(matches!(
            parse(r#"[null,null,"comments:a","viewer_count",{"count":3}]"#).unwrap(),
            Inbound::Other
        ));
        assert!(parse("{}").is_err());
        assert!(parse(r#"[null,null,"t","viewer_count",{"count":3},1]"#).is_err());
        assert!(parse(r#"[null,null,"t","viewer_count"]"#).is_err());
        assert!(parse(r#"[null,null,"t","viewer_count",{}] x"#).is_err());
        assert!(parse(r#"[null,null,"t","comment_created",{"seq":"x"}]"#).is_err());
        match parse(
            r#"[null,null,"comments:a","comments_skipped",{"from_seq":3,"to_seq":9,"count":7}]"#,
        )
        .unwrap()
        {
            Inbound::Skipped { topic, from, to } => {
                assert_eq!((&*topic, from, to), ("comments:a", 3, 9))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn join_ok_reads_last_seq_and_recovery() {
        let r: JoinOk = serde_json::from_str(
            r#"{"comments":[{"seq":4,"body":"a","id":"1"}],"last_seq":4,"viewers":2,"recovered":true}"#,
        )
        .unwrap();
        assert_eq!(
            (r.last_seq, r.comments.len(), r.recovered),
            (4, 1, Some(true))
        );
    }
}
