-- API keys for trusted backends, PostgreSQL. Twin: migrations/sqlite/20261204000005_api_keys.sql.
-- A key is stored as the SHA-256 of its secret; it posts as its author, a system user.

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    secret_hash   text NOT NULL,
    scopes        text NOT NULL,
    author_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_author_idx ON api_keys (author_id);
