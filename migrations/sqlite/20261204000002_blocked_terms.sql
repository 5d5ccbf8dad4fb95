-- Blocked terms and comments held for review, SQLite. Twin: migrations/postgres/20261204000002_blocked_terms.sql.

ALTER TABLE videos ADD COLUMN blocked_terms_action TEXT NOT NULL DEFAULT 'refuse'
    CHECK (blocked_terms_action IN ('refuse', 'hold'));

CREATE TABLE blocked_terms (
    scope       TEXT NOT NULL,
    term        TEXT NOT NULL,
    added_by    BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (scope, term)
);

CREATE TABLE held_comments (
    id            BLOB PRIMARY KEY,
    video_id      TEXT NOT NULL,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body          TEXT NOT NULL,
    matched_term  TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX held_comments_video_idx ON held_comments (video_id, created_at);
