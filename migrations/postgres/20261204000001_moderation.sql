-- Moderation and chat controls, PostgreSQL. Twin: migrations/sqlite/20261204000001_moderation.sql.

-- A video's chat settings and pinned comment live on its row.
ALTER TABLE videos ADD COLUMN slow_mode_seconds integer NOT NULL DEFAULT 0
    CHECK (slow_mode_seconds BETWEEN 0 AND 3600);
ALTER TABLE videos ADD COLUMN chat_mode text NOT NULL DEFAULT 'everyone'
    CHECK (chat_mode IN ('everyone', 'members'));
ALTER TABLE videos ADD COLUMN pinned_comment_id uuid;

-- Moderators the owner appointed for one video (site moderators and admins need no row).
CREATE TABLE video_moderators (
    video_id      text NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    appointed_by  uuid NOT NULL,
    created_at    timestamptz NOT NULL,
    PRIMARY KEY (video_id, user_id)
);

-- Bans and timeouts: `scope` is a video id, or '' for the whole site. One per scope and user;
-- `expires_at` NULL is permanent. An expired row is no ban (and is replaced by the next one).
CREATE TABLE chat_bans (
    scope       text NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz,
    reason      text,
    banned_by   uuid NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, user_id)
);

-- Every moderation action: who, what, when, on which video (NULL: site-wide), why.
CREATE TABLE moderation_log (
    id                 bigserial PRIMARY KEY,
    video_id           text,
    actor_id           uuid NOT NULL,
    action             text NOT NULL,
    target_user_id     uuid,
    target_comment_id  uuid,
    reason             text,
    details            text NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL
);
CREATE INDEX moderation_log_video_idx ON moderation_log (video_id, id);

-- A user's comments on a video: slow mode's last post, and removing them all at once.
CREATE INDEX comments_author_idx ON comments (video_id, user_id, seq);
