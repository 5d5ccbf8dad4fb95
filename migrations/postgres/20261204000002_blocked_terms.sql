-- Blocked terms and comments held for review, PostgreSQL. Twin: migrations/sqlite/20261204000002_blocked_terms.sql.

ALTER TABLE videos ADD COLUMN blocked_terms_action text NOT NULL DEFAULT 'refuse'
    CHECK (blocked_terms_action IN ('refuse', 'hold'));

-- `scope` is a video id, or '' for the whole site; `term` is stored folded (NFKC, case folded,
-- default-ignorables dropped), as it is matched.
CREATE TABLE blocked_terms (
    scope       text NOT NULL,
    term        text NOT NULL,
    added_by    uuid NOT NULL,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (scope, term)
);

-- Comments that matched a blocked term on a video that holds them; no seq until approved.
CREATE TABLE held_comments (
    id            uuid PRIMARY KEY,
    video_id      text NOT NULL,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body          text NOT NULL,
    matched_term  text NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX held_comments_video_idx ON held_comments (video_id, created_at);
