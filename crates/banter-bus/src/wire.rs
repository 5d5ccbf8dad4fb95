//! The JSON form of a [`BusEvent`] between nodes, with the publishing node's id so a node can
//! recognise (and skip) its own messages. Written by hand: the core types make no serde promise.

use banter_core::{AccessChange, Comment, CommentId, UserId, VideoId};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use banter_protocol::payloads::Meta;

use crate::{BusEvent, ChangeKind, PresenceSnapshot};

pub fn encode(node: &str, event: &BusEvent) -> String {
    let c = &event.comment;
    let time = |t: OffsetDateTime| t.format(&Rfc3339).ok();
    let mut message = json!({
        "node": node,
        "kind": match event.kind {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
            ChangeKind::Deleted => "deleted",
        },
        "comment": {
            "id": c.id.to_string(),
            "video_id": c.video_id.as_ref(),
            "seq": c.seq,
            "user_id": c.user_id.to_string(),
            "username": c.username,
            "body": c.body,
            "created_at": time(c.created_at),
            "updated_at": time(c.updated_at),
            "deleted_at": c.deleted_at.and_then(time),
            "author_role": c.author_role.map(|r| r.as_str()),
        }
    });
    if let Some(tp) = &event.trace {
        message["traceparent"] = json!(tp);
    }
    message.to_string()
}

/// `(publishing node, event)`, or `None` for anything malformed (logged by the caller).
pub fn decode(text: &str) -> Option<(String, BusEvent)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let c = &v["comment"];
    let time = |f: &str| OffsetDateTime::parse(c[f].as_str()?, &Rfc3339).ok();
    let kind = match v["kind"].as_str()? {
        "created" => ChangeKind::Created,
        "updated" => ChangeKind::Updated,
        "deleted" => ChangeKind::Deleted,
        _ => return None,
    };
    let comment = Comment {
        id: c["id"].as_str()?.parse::<CommentId>().ok()?,
        video_id: VideoId::parse(c["video_id"].as_str()?).ok()?,
        seq: c["seq"].as_i64()?,
        user_id: c["user_id"].as_str()?.parse::<UserId>().ok()?,
        username: c["username"].as_str()?.to_owned(),
        body: c["body"].as_str().map(str::to_owned),
        created_at: time("created_at")?,
        updated_at: time("updated_at")?,
        deleted_at: if c["deleted_at"].is_null() {
            None
        } else {
            Some(time("deleted_at")?)
        },
        author_role: match &c["author_role"] {
            Value::Null => None,
            role => Some(role.as_str()?.parse().ok()?),
        },
    };
    let trace = v["traceparent"].as_str().map(str::to_owned);
    Some((
        v["node"].as_str()?.to_owned(),
        BusEvent {
            kind,
            comment,
            trace,
        },
    ))
}

/// `{"node", "user"?, "video"?}`: a user alone, a video alone, or both (a membership); chat
/// rule changes are `{"node", "chat": "<video>"}` and `{"node", "chat": ""}` (site-wide).
pub fn encode_access(node: &str, change: &AccessChange) -> String {
    let (user, video) = match change {
        AccessChange::User(user) => (Some(user.to_string()), None),
        AccessChange::Video(video) => (None, Some(video.as_ref())),
        AccessChange::Member { video, user } => (Some(user.to_string()), Some(video.as_ref())),
        AccessChange::Chat(video) => {
            return json!({"node": node, "chat": video.as_ref()}).to_string();
        }
        AccessChange::SiteChat => return json!({"node": node, "chat": ""}).to_string(),
    };
    json!({"node": node, "user": user, "video": video}).to_string()
}

/// `(publishing node, change)`, or `None` for anything malformed.
pub fn decode_access(text: &str) -> Option<(String, AccessChange)> {
    let v: Value = serde_json::from_str(text).ok()?;
    let node = v["node"].as_str()?.to_owned();
    if let Some(chat) = v.get("chat") {
        let change = match chat.as_str()? {
            "" => AccessChange::SiteChat,
            video => AccessChange::Chat(VideoId::parse(video).ok()?),
        };
        return Some((node, change));
    }
    let user = match &v["user"] {
        Value::Null => None,
        u => Some(u.as_str()?.parse::<UserId>().ok()?),
    };
    let video = match &v["video"] {
        Value::Null => None,
        id => Some(VideoId::parse(id.as_str()?).ok()?),
    };
    let change = match (user, video) {
        (Some(user), None) => AccessChange::User(user),
        (None, Some(video)) => AccessChange::Video(video),
        (Some(user), Some(video)) => AccessChange::Member { video, user },
        (None, None) => return None,
    };
    Some((node, change))
}

pub fn encode_load(node: &str, load: &crate::NodeLoad) -> String {
    json!({"node": node, "connections": load.connections, "draining": load.draining}).to_string()
}

pub fn decode_load(text: &str) -> Option<crate::NodeLoad> {
    let v: Value = serde_json::from_str(text).ok()?;
    Some(crate::NodeLoad {
        node: v["node"].as_str()?.to_owned(),
        connections: usize::try_from(v["connections"].as_u64()?).ok()?,
        // Absent from nodes of an earlier version: not draining.
        draining: v["draining"].as_bool().unwrap_or(false),
    })
}

pub fn encode_presence(node: &str, s: &PresenceSnapshot) -> String {
    let members: serde_json::Map<String, Value> = s
        .members
        .iter()
        .map(|(user, metas)| {
            let metas: Vec<Value> = metas
                .iter()
                .map(|m| json!({"phx_ref": m.phx_ref, "username": m.username, "online_at": m.online_at}))
                .collect();
            (user.clone(), Value::Array(metas))
        })
        .collect();
    json!({"node": node, "video": s.video.as_ref(), "viewers": s.viewers, "members": members})
        .to_string()
}

pub fn decode_presence(text: &str) -> Option<PresenceSnapshot> {
    let v: Value = serde_json::from_str(text).ok()?;
    let mut members = Vec::new();
    for (user, metas) in v["members"].as_object()? {
        let metas = metas
            .as_array()?
            .iter()
            .map(|m| {
                Some(Meta {
                    phx_ref: m["phx_ref"].as_str()?.to_owned(),
                    username: m["username"].as_str()?.to_owned(),
                    online_at: m["online_at"].as_i64()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        members.push((user.clone(), metas));
    }
    Some(PresenceSnapshot {
        node: v["node"].as_str()?.to_owned(),
        video: VideoId::parse(v["video"].as_str()?).ok()?,
        viewers: usize::try_from(v["viewers"].as_u64()?).ok()?,
        members,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_load_round_trips_with_its_draining_flag_and_reads_old_nodes_as_not_draining() {
        let load = crate::NodeLoad {
            node: String::new(),
            connections: 7,
            draining: true,
        };
        let back = decode_load(&encode_load("n1", &load)).unwrap();
        assert_eq!(
            (back.node.as_str(), back.connections, back.draining),
            ("n1", 7, true)
        );
        let old = decode_load(r#"{"node":"n0","connections":3}"#).unwrap();
        assert!(!old.draining);
    }

    #[test]
    fn a_presence_snapshot_round_trips() {
        let s = PresenceSnapshot {
            node: String::new(),
            video: VideoId::parse("v").unwrap(),
            viewers: 3,
            members: vec![(
                "u1".into(),
                vec![Meta {
                    phx_ref: "r".into(),
                    username: "alice".into(),
                    online_at: 5,
                }],
            )],
        };
        let back = decode_presence(&encode_presence("n2", &s)).unwrap();
        assert_eq!(
            back,
            PresenceSnapshot {
                node: "n2".into(),
                ..s
            }
        );
        assert!(decode_presence(r#"{"node":"n","video":"v","viewers":-1,"members":{}}"#).is_none());
    }

    #[test]
    fn an_event_round_trips_and_garbage_is_refused() {
        let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let event = BusEvent {
            kind: ChangeKind::Deleted,
            comment: Comment {
                id: CommentId::generate(),
                video_id: VideoId::parse("v1").unwrap(),
                seq: 7,
                user_id: UserId::generate(),
                username: "alice".into(),
                body: None,
                created_at: now,
                updated_at: now,
                deleted_at: Some(now),
                author_role: Some(banter_core::ChatRole::Owner),
            },
            trace: None,
        };
        let (node, back) = decode(&encode("n1", &event)).unwrap();
        assert_eq!(node, "n1");
        assert_eq!(back.trace, None);
        assert_eq!(
            (back.kind, back.comment.clone()),
            (event.kind, event.comment.clone())
        );
        // The trace context travels with the event when there is one.
        let tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned();
        let traced = BusEvent {
            trace: Some(tp.clone()),
            ..event
        };
        assert_eq!(decode(&encode("n1", &traced)).unwrap().1.trace, Some(tp));
        for bad in [
            "",
            "{}",
            r#"{"node":"n","kind":"exploded","comment":{}}"#,
            "[1,2]",
        ] {
            assert!(decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn access_changes_round_trip_and_garbage_is_refused() {
        let user = UserId::generate();
        let video = VideoId::parse("v1").unwrap();
        for change in [
            AccessChange::User(user),
            AccessChange::Video(video.clone()),
            AccessChange::Member {
                video: video.clone(),
                user,
            },
            AccessChange::Chat(video),
            AccessChange::SiteChat,
        ] {
            assert_eq!(
                decode_access(&encode_access("n1", &change)),
                Some(("n1".to_owned(), change))
            );
        }
        for bad in [
            "",
            "{}",
            r#"{"node":"n"}"#,
            r#"{"node":"n","user":"not-a-uuid"}"#,
            r#"{"node":"n","video":"bad id!"}"#,
            r#"{"node":"n","video":7}"#,
            r#"{"node":"n","chat":"bad id!"}"#,
            r#"{"node":"n","chat":null}"#,
        ] {
            assert!(decode_access(bad).is_none(), "{bad}");
        }
    }
}
