-- Banter schema, PostgreSQL. Twin: migrations/sqlite/20261123000001_initial.sql.

CREATE TABLE users (
    id             uuid PRIMARY KEY,
    email          text NOT NULL,
    username       text NOT NULL,
    password_hash  text NOT NULL,
    role           text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'moderator', 'admin')),
    is_active      boolean NOT NULL DEFAULT true,
    last_login_at  timestamptz,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

CREATE TABLE user_devices (
    id            uuid PRIMARY KEY,
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id     text NOT NULL,
    device_info   jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    is_active     boolean NOT NULL DEFAULT true,
    UNIQUE (user_id, device_id)
);

CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    token_hash  text NOT NULL UNIQUE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id   text NOT NULL,
    family_id   uuid NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_device_idx ON refresh_tokens (user_id, device_id);

CREATE TABLE videos (
    id          text PRIMARY KEY,
    owner_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    visibility  text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private', 'members')),
    last_seq    bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL
);

CREATE TABLE video_members (
    video_id  text NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (video_id, user_id)
);

CREATE TABLE comments (
    id          uuid PRIMARY KEY,
    video_id    text NOT NULL REFERENCES videos (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    body        text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz,
    UNIQUE (video_id, seq)
);
