//! `TopicPresence`: who watches one topic across the cluster, as this node sees it — its own
//! members (`Presence`), every other node's last snapshot, and when to publish its own.
//!
//! Each method that changes what viewers should see returns the `presence_diff` payload to
//! broadcast, or `None` when there is nothing to say or the topic is too big for member lists
//! (`RealtimeConfig::presence_member_limit`: then only counts are sent). Nodes that stop
//! heart-beating are dropped after `node_timeout`.
//!
//! Kept out: subscribers and sending (the channel), the per-node member list (`presence.rs`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use banter_bus::{Bus, PresenceSnapshot};
use banter_core::VideoId;
use banter_protocol::payloads::{self, Meta};
use serde_json::Value;

use crate::RealtimeConfig;
use crate::presence::Presence;

/// What another node last said about this topic.
struct Remote {
    seen: Instant,
    viewers: usize,
    members: Vec<(String, Vec<Meta>)>,
}

pub(crate) struct TopicPresence {
    video: VideoId,
    config: Arc<RealtimeConfig>,
    local: Presence,
    remote: HashMap<String, Remote>,
    /// Local presence changed since it was last published.
    dirty: bool,
    last_publish: Option<Instant>,
    /// The merged `presence_state` since the members last changed: every joiner in between
    /// shares it (a burst of joins built one member list each, most of a node's peak memory).
    state: Option<Arc<Value>>,
}

impl TopicPresence {
    pub fn new(video: VideoId, config: Arc<RealtimeConfig>) -> Self {
        Self {
            video,
            config,
            local: Presence::default(),
            remote: HashMap::new(),
            dirty: true,
            last_publish: None,
            state: None,
        }
    }

    /// A local viewer joined; `member` is `(user id, username)` for a signed-in one.
    pub fn join(&mut self, member: Option<(String, String)>, phx_ref: String) -> Option<Value> {
        self.dirty = true;
        let (user_id, username) = member?;
        self.state = None;
        let meta = Meta {
            phx_ref,
            username,
            online_at: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let diff = self.local.join(&user_id, meta);
        self.lists_enabled().then_some(diff)
    }

    /// A local viewer left.
    pub fn leave(&mut self, member: Option<&(String, String)>, phx_ref: &str) -> Option<Value> {
        self.dirty = true;
        let (user_id, _) = member?;
        self.state = None;
        let diff = self.local.leave(user_id, phx_ref)?;
        self.lists_enabled().then_some(diff)
    }

    /// Whether viewers get member lists (the topic is small enough).
    pub fn lists_enabled(&self) -> bool {
        let remote: usize = self.remote.values().map(|r| r.members.len()).sum();
        self.local.len() + remote <= self.config.presence_member_limit
    }

    /// Viewers on other nodes.
    pub fn remote_viewers(&self) -> usize {
        self.remote.values().map(|r| r.viewers).sum()
    }

    /// This node's members and every other node's, as one `presence_state`: built once per
    /// change of the members, shared by the joins in between.
    pub fn merged_state(&mut self) -> Arc<Value> {
        if let Some(state) = &self.state {
            return state.clone();
        }
        let state = Arc::new(self.build_state());
        self.state = Some(state.clone());
        state
    }

    fn build_state(&self) -> Value {
        let mut merged: BTreeMap<&str, Vec<Meta>> = BTreeMap::new();
        for (key, metas) in self.local.members() {
            merged.entry(key).or_default().extend_from_slice(metas);
        }
        for remote in self.remote.values() {
            for (key, metas) in &remote.members {
                merged
                    .entry(key.as_str())
                    .or_default()
                    .extend_from_slice(metas);
            }
        }
        payloads::presence_entries(merged.iter().map(|(k, v)| (*k, v.as_slice())))
    }

    fn snapshot(&self, local_viewers: usize) -> PresenceSnapshot {
        PresenceSnapshot {
            node: String::new(),
            video: self.video.clone(),
            viewers: local_viewers,
            members: self
                .local
                .members()
                .map(|(k, v)| (k.to_owned(), v.to_vec()))
                .collect(),
        }
    }

    /// Announces this node's presence in the topic to the others.
    pub fn publish(&mut self, bus: &dyn Bus, local_viewers: usize) {
        bus.publish_presence(self.snapshot(local_viewers));
        self.dirty = false;
        self.last_publish = Some(Instant::now());
    }

    /// Publishes when something changed or the heartbeat is due.
    pub fn publish_if_due(&mut self, bus: &dyn Bus, local_viewers: usize) {
        let heartbeat_due = self
            .last_publish
            .is_none_or(|t| t.elapsed() >= self.config.presence_heartbeat);
        if self.dirty || heartbeat_due {
            self.publish(bus, local_viewers);
        }
    }

    /// This node leaves the topic: nothing local remains.
    pub fn clear_local(&mut self) {
        self.state = None;
        self.local = Presence::default();
    }

    /// Merges another node's snapshot; returns which of its members came and went.
    pub fn on_remote(&mut self, snapshot: PresenceSnapshot) -> Option<Value> {
        let gone = snapshot.viewers == 0 && snapshot.members.is_empty();
        self.state = None;
        let old = if gone {
            self.remote.remove(&snapshot.node)
        } else {
            self.remote.insert(
                snapshot.node.clone(),
                Remote {
                    seen: Instant::now(),
                    viewers: snapshot.viewers,
                    members: snapshot.members.clone(),
                },
            )
        };
        // A node we had not heard from (new, or restarted) learns our state at the next tick
        // rather than at our next heartbeat.
        if old.is_none() && !gone {
            self.dirty = true;
        }
        let old_members = old.map(|r| r.members).unwrap_or_default();
        let new_members = if gone { Vec::new() } else { snapshot.members };
        self.member_changes(&old_members, &new_members)
    }

    /// Drops nodes that stopped heart-beating (crashed or cut off); returns the leaves of their
    /// members.
    pub fn expire(&mut self) -> Vec<Value> {
        let timeout = self.config.node_timeout;
        let dead: Vec<String> = self
            .remote
            .iter()
            .filter(|(_, r)| r.seen.elapsed() >= timeout)
            .map(|(node, _)| node.clone())
            .collect();
        let mut diffs = Vec::new();
        for node in dead {
            if let Some(remote) = self.remote.remove(&node) {
                self.state = None;
                tracing::info!(video = %self.video, node, "node stopped heart-beating; dropping its viewers");
                diffs.extend(self.member_changes(&remote.members, &[]));
            }
        }
        diffs
    }

    fn member_changes(
        &self,
        old: &[(String, Vec<Meta>)],
        new: &[(String, Vec<Meta>)],
    ) -> Option<Value> {
        let refs = |members: &[(String, Vec<Meta>)]| -> HashSet<String> {
            members
                .iter()
                .flat_map(|(_, metas)| metas.iter().map(|m| m.phx_ref.clone()))
                .collect()
        };
        let (old_refs, new_refs) = (refs(old), refs(new));
        let pick = |members: &[(String, Vec<Meta>)],
                    exclude: &HashSet<String>|
         -> Vec<(String, Vec<Meta>)> {
            members
                .iter()
                .map(|(k, metas)| {
                    (
                        k.clone(),
                        metas
                            .iter()
                            .filter(|m| !exclude.contains(&m.phx_ref))
                            .cloned()
                            .collect::<Vec<_>>(),
                    )
                })
                .filter(|(_, metas)| !metas.is_empty())
                .collect()
        };
        let joins = pick(new, &old_refs);
        let leaves = pick(old, &new_refs);
        if (joins.is_empty() && leaves.is_empty()) || !self.lists_enabled() {
            return None;
        }
        let entries = |list: &[(String, Vec<Meta>)]| {
            payloads::presence_entries(list.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
        };
        Some(payloads::presence_diff(entries(&joins), entries(&leaves)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presence() -> TopicPresence {
        TopicPresence::new(
            VideoId::parse("v").unwrap(),
            Arc::new(RealtimeConfig::default()),
        )
    }

    fn member(id: &str) -> Option<(String, String)> {
        Some((id.to_owned(), format!("name-{id}")))
    }

    #[test]
    fn joins_share_one_state_until_the_members_change() {
        let mut p = presence();
        p.join(member("u1"), "r1".into());
        let first = p.merged_state();
        // An anonymous viewer is no member: the state is the same one, not built again.
        p.join(None, "r2".into());
        assert!(Arc::ptr_eq(&first, &p.merged_state()));
        // A member joining makes a new state that lists it.
        p.join(member("u2"), "r3".into());
        let second = p.merged_state();
        assert!(!Arc::ptr_eq(&first, &second));
        assert!(second["u1"].is_object() && second["u2"].is_object());
        // A member leaving, and another node's snapshot, each make a new one too.
        p.leave(member("u1").as_ref(), "r1");
        let third = p.merged_state();
        assert!(third.get("u1").is_none() && third["u2"].is_object());
        let meta = Meta {
            phx_ref: "x1".into(),
            username: "remote".into(),
            online_at: 0,
        };
        p.on_remote(PresenceSnapshot {
            node: "other".into(),
            video: VideoId::parse("v").unwrap(),
            viewers: 1,
            members: vec![("u9".into(), vec![meta])],
        });
        let fourth = p.merged_state();
        assert!(fourth["u9"].is_object() && fourth["u2"].is_object());
        p.clear_local();
        assert!(p.merged_state().get("u2").is_none());
    }
}
