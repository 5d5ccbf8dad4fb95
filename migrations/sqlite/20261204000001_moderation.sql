-- Moderation and chat controls, SQLite. Twin: migrations/postgres/20261204000001_moderation.sql.

ALTER TABLE videos ADD COLUMN slow_mode_seconds INTEGER NOT NULL DEFAULT 0
    CHECK (slow_mode_seconds BETWEEN 0 AND 3600);
ALTER TABLE videos ADD COLUMN chat_mode TEXT NOT NULL DEFAULT 'everyone'
    CHECK (chat_mode IN ('everyone', 'members'));
ALTER TABLE videos ADD COLUMN pinned_comment_id BLOB;

CREATE TABLE video_moderators (
    video_id      TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    appointed_by  BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (video_id, user_id)
);

CREATE TABLE chat_bans (
    scope       TEXT NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  TEXT,
    reason      TEXT,
    banned_by   BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (scope, user_id)
);

CREATE TABLE moderation_log (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    video_id           TEXT,
    actor_id           BLOB NOT NULL,
    action             TEXT NOT NULL,
    target_user_id     BLOB,
    target_comment_id  BLOB,
    reason             TEXT,
    details            TEXT NOT NULL DEFAULT '{}',
    created_at         TEXT NOT NULL
);
CREATE INDEX moderation_log_video_idx ON moderation_log (video_id, id);

CREATE INDEX comments_author_idx ON comments (video_id, user_id, seq);
