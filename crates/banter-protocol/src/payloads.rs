//! The JSON payloads of Banter's channel events: a comment (the same shape as the REST API's
//! comment) and presence metas in the shapes the JS `Presence` helper expects.

use banter_core::{ChatSettings, Comment, HeldComment};
use serde_json::{Map, Value, json};
use time::format_description::well_known::Rfc3339;

fn rfc3339(t: time::OffsetDateTime) -> Value {
    t.format(&Rfc3339).map(Value::String).unwrap_or(Value::Null)
}

/// A comment as clients see it (identical to `CommentDto` of the REST API).
pub fn comment(c: &Comment) -> Value {
    json!({
        "id": c.id.to_string(),
        "video_id": c.video_id.as_ref(),
        "seq": c.seq,
        "author": {
            "id": c.user_id.to_string(),
            "username": c.username,
            "role": c.author_role.map(|r| r.as_str()),
        },
        "body": c.body,
        "deleted": c.deleted_at.is_some(),
        "edited": c.deleted_at.is_none() && c.updated_at != c.created_at,
        "created_at": rfc3339(c.created_at),
        "updated_at": rfc3339(c.updated_at),
    })
}

/// A chat's settings as clients see them (identical to the REST API's, less the pin).
pub fn chat_settings(s: &ChatSettings) -> Value {
    json!({
        "slow_mode_seconds": s.slow_mode_seconds,
        "chat_mode": s.chat_mode.as_str(),
        "blocked_terms_action": s.blocked_terms.as_str(),
    })
}

/// A comment held for review, as its author is told (identical to the REST API's).
pub fn held_comment(h: &HeldComment) -> Value {
    json!({
        "id": h.id.to_string(),
        "video_id": h.video_id.as_ref(),
        "author": {"id": h.user_id.to_string(), "username": h.username},
        "body": h.body,
        "matched_term": h.matched_term,
        "created_at": rfc3339(h.created_at),
    })
}

/// One presence meta: one per (connection, user) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub phx_ref: String,
    pub username: String,
    pub online_at: i64,
}

impl Meta {
    fn to_json(&self) -> Value {
        json!({"phx_ref": self.phx_ref, "username": self.username, "online_at": self.online_at})
    }
}

/// `{"<key>": {"metas": [...]}, ...}`, the body of `presence_state` and of each side of a diff.
pub fn presence_entries<'a>(entries: impl IntoIterator<Item = (&'a str, &'a [Meta])>) -> Value {
    let mut map = Map::new();
    for (key, metas) in entries {
        if metas.is_empty() {
            continue;
        }
        let metas: Vec<Value> = metas.iter().map(Meta::to_json).collect();
        map.insert(key.to_owned(), json!({ "metas": metas }));
    }
    Value::Object(map)
}

/// `presence_diff`: both `joins` and `leaves` are always present (the client requires both).
pub fn presence_diff(joins: Value, leaves: Value) -> Value {
    json!({"joins": joins, "leaves": leaves})
}

/// Folds a later `presence_diff` into an earlier one, so that one diff carries both. Applying
/// the result (joins, then leaves, as the `phoenix` client's `Presence.syncDiff` does) gives the
/// same state as applying the two in turn: metas are unique per join (`phx_ref`), so a meta that
/// joined and left in between ends up removed, as it would have been.
pub fn merge_presence_diff(into: &mut Value, later: Value) {
    let Value::Object(later) = later else { return };
    for (side, entries) in later {
        let Value::Object(entries) = entries else {
            continue;
        };
        let target = into
            .as_object_mut()
            .expect("a presence diff is an object")
            .entry(side)
            .or_insert_with(|| json!({}));
        for (key, entry) in entries {
            let metas = entry["metas"].as_array().cloned().unwrap_or_default();
            match target.get_mut(&key).and_then(|e| e["metas"].as_array_mut()) {
                Some(existing) => existing.extend(metas),
                None => {
                    target[&key] = json!({ "metas": metas });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_diffs_carry_every_join_and_leave_of_both() {
        let meta = |r: &str| json!({"phx_ref": r, "username": "u", "online_at": 0});
        let mut first = presence_diff(json!({"u1": {"metas": [meta("r1")]}}), json!({}));
        merge_presence_diff(
            &mut first,
            presence_diff(
                json!({"u1": {"metas": [meta("r2")]}, "u2": {"metas": [meta("r3")]}}),
                json!({"u1": {"metas": [meta("r1")]}}),
            ),
        );
        assert_eq!(
            first["joins"]["u1"]["metas"],
            json!([meta("r1"), meta("r2")])
        );
        assert_eq!(first["joins"]["u2"]["metas"], json!([meta("r3")]));
        assert_eq!(first["leaves"]["u1"]["metas"], json!([meta("r1")]));
    }

    #[test]
    fn a_diff_always_has_joins_and_leaves() {
        let meta = Meta {
            phx_ref: "r1".into(),
            username: "alice".into(),
            online_at: 1,
        };
        let joins = presence_entries([("u1", std::slice::from_ref(&meta))]);
        let diff = presence_diff(joins, presence_entries([]));
        assert_eq!(diff["joins"]["u1"]["metas"][0]["phx_ref"], "r1");
        assert_eq!(diff["leaves"], json!({}));
    }
}
