//! Presence of one topic on this node: signed-in members keyed by user id, one meta per
//! connection. Anonymous viewers are not members but count toward the viewer count (kept by
//! the channel).

use std::collections::BTreeMap;

use banter_protocol::payloads::{Meta, presence_diff, presence_entries};
use serde_json::Value;

#[derive(Default)]
pub struct Presence {
    members: BTreeMap<String, Vec<Meta>>,
}

impl Presence {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Adds a meta; returns the `presence_diff` payload announcing it.
    pub fn join(&mut self, key: &str, meta: Meta) -> Value {
        let diff = presence_diff(
            presence_entries([(key, std::slice::from_ref(&meta))]),
            presence_entries([]),
        );
        self.members.entry(key.to_owned()).or_default().push(meta);
        diff
    }

    /// Removes the meta with `phx_ref`; returns the diff announcing its leave, if it was there.
    pub fn leave(&mut self, key: &str, phx_ref: &str) -> Option<Value> {
        let metas = self.members.get_mut(key)?;
        let index = metas.iter().position(|m| m.phx_ref == phx_ref)?;
        let meta = metas.remove(index);
        if metas.is_empty() {
            self.members.remove(key);
        }
        Some(presence_diff(
            presence_entries([]),
            presence_entries([(key, std::slice::from_ref(&meta))]),
        ))
    }

    /// `(user id, metas)` of every member on this node.
    pub fn members(&self) -> impl Iterator<Item = (&str, &[Meta])> {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }

    /// The full state (tests; the channel merges in other nodes' members).
    #[cfg(test)]
    pub fn state(&self) -> Value {
        presence_entries(self.members.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(r: &str) -> Meta {
        Meta {
            phx_ref: r.into(),
            username: "alice".into(),
            online_at: 0,
        }
    }

    #[test]
    fn two_connections_of_one_user_are_two_metas_of_one_key() {
        let mut p = Presence::default();
        p.join("u1", meta("a"));
        p.join("u1", meta("b"));
        assert_eq!(p.len(), 1);
        assert_eq!(p.state()["u1"]["metas"].as_array().unwrap().len(), 2);
        let diff = p.leave("u1", "a").unwrap();
        assert_eq!(diff["leaves"]["u1"]["metas"][0]["phx_ref"], "a");
        assert_eq!(diff["joins"], serde_json::json!({}));
        p.leave("u1", "b").unwrap();
        assert_eq!(p.len(), 0);
        assert!(p.leave("u1", "b").is_none());
    }
}
