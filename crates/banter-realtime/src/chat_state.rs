//! A topic's chat settings and pinned comment, as this node's viewers of it were last told.
//! The channel reads them from the primary when it starts, when an `AccessChange::Chat` of its
//! video arrives, and after a bus outage, and sends its viewers the difference as events
//! (`chat_settings`, `comment_pinned`, `comment_unpinned`), in order with its comments; a
//! joiner gets them in its join reply.
//!
//! Kept out: who may change them and how they are enforced (`banter-api`).

use banter_core::{ChatSettings, Comment, VideoId};
use banter_protocol::{events, payloads};
use banter_store::{Store, StoreError};
use serde_json::{Value, json};

#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct ChatState {
    pub settings: ChatSettings,
    pub pinned: Option<Comment>,
}

impl ChatState {
    /// The video's current state, on the primary (it follows a change announced after commit).
    pub async fn read(store: &Store, video: &VideoId) -> Result<ChatState, StoreError> {
        let primary = store.primary();
        let Some(found) = primary.get_video(video).await? else {
            return Ok(ChatState::default());
        };
        let pinned = match found.pinned_comment {
            Some(id) => primary
                .get_comment(id)
                .await?
                .filter(|c| c.deleted_at.is_none()),
            None => None,
        };
        Ok(ChatState {
            settings: found.chat,
            pinned,
        })
    }

    pub fn settings_payload(&self) -> Value {
        payloads::chat_settings(&self.settings)
    }

    /// The pinned comment, or null.
    pub fn pinned_payload(&self) -> Value {
        self.pinned.as_ref().map_or(Value::Null, payloads::comment)
    }

    /// The events that take viewers who know `self` to `new`.
    pub fn changes(&self, new: &ChatState) -> Vec<(&'static str, Value)> {
        let mut events = Vec::new();
        if self.settings != new.settings {
            events.push((events::CHAT_SETTINGS, new.settings_payload()));
        }
        let id = |s: &ChatState| s.pinned.as_ref().map(|c| c.id);
        match (&self.pinned, &new.pinned) {
            (_, Some(pinned)) if id(self) != id(new) => events.push((
                events::COMMENT_PINNED,
                json!({ "comment": payloads::comment(pinned) }),
            )),
            (Some(old), None) => events.push((
                events::COMMENT_UNPINNED,
                json!({ "comment_id": old.id.to_string() }),
            )),
            _ => {}
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use banter_core::{ChatMode, CommentId, UserId};
    use time::OffsetDateTime;

    use super::*;

    fn comment() -> Comment {
        Comment {
            id: CommentId::generate(),
            video_id: VideoId::parse("v").unwrap(),
            seq: 1,
            user_id: UserId::generate(),
            username: "u".into(),
            body: Some("b".into()),
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
            deleted_at: None,
            author_role: None,
        }
    }

    #[test]
    fn only_what_changed_is_announced() {
        let before = ChatState::default();
        assert!(before.changes(&before.clone()).is_empty());
        let slow = ChatState {
            settings: ChatSettings {
                slow_mode_seconds: 30,
                chat_mode: ChatMode::Everyone,
                ..ChatSettings::default()
            },
            pinned: None,
        };
        let events = before.changes(&slow);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, events::CHAT_SETTINGS);
        assert_eq!(events[0].1["slow_mode_seconds"], 30);
        assert_eq!(events[0].1["chat_mode"], "everyone");
        let pinned = ChatState {
            pinned: Some(comment()),
            ..slow.clone()
        };
        let events = slow.changes(&pinned);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, events::COMMENT_PINNED);
        let repinned = ChatState {
            pinned: Some(comment()),
            ..slow.clone()
        };
        assert_eq!(pinned.changes(&repinned)[0].0, events::COMMENT_PINNED);
        let unpinned = slow.changes(&slow);
        assert!(unpinned.is_empty());
        let events = pinned.changes(&slow);
        assert_eq!(events[0].0, events::COMMENT_UNPINNED);
        assert_eq!(
            events[0].1["comment_id"],
            pinned.pinned.as_ref().unwrap().id.to_string()
        );
    }
}
