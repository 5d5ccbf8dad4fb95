-- Banter schema, SQLite. Twin: migrations/postgres/20261123000001_initial.sql.
-- uuids are 16-byte blobs and timestamps RFC 3339 text, as sqlx encodes them.

CREATE TABLE users (
    id             BLOB PRIMARY KEY,
    email          TEXT NOT NULL,
    username       TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin')),
    is_active      BOOLEAN NOT NULL DEFAULT 1,
    last_login_at  TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE user_devices (
    id            BLOB PRIMARY KEY,
    user_id       BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id     TEXT NOT NULL,
    device_info   TEXT NOT NULL DEFAULT '{}',
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    is_active     BOOLEAN NOT NULL DEFAULT 1,
    UNIQUE (user_id, device_id)
);

CREATE TABLE refresh_tokens (
    id          BLOB PRIMARY KEY,
    token_hash  TEXT NOT NULL UNIQUE,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id   TEXT NOT NULL,
    family_id   BLOB NOT NULL,
    expires_at  TEXT NOT NULL,
    used_at     TEXT,
    revoked_at  TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_device_idx ON refresh_tokens (user_id, device_id);

CREATE TABLE videos (
    id          TEXT PRIMARY KEY,
    owner_id    BLOB REFERENCES users (id) ON DELETE SET NULL,
    visibility  TEXT NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private', 'members')),
    last_seq    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

CREATE TABLE video_members (
    video_id  TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    user_id   BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (video_id, user_id)
);

CREATE TABLE comments (
    id          BLOB PRIMARY KEY,
    video_id    TEXT NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT,
    UNIQUE (video_id, seq)
);
