-- API keys for trusted backends, SQLite. Twin: migrations/postgres/20261204000005_api_keys.sql.
-- A key is stored as the SHA-256 of its secret; it posts as its author, a system user.

CREATE TABLE api_keys (
    id            BLOB PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    secret_hash   TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    author_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by    BLOB NOT NULL,
    created_at    TEXT NOT NULL,
    last_used_at  TEXT,
    revoked_at    TEXT
);
CREATE INDEX api_keys_author_idx ON api_keys (author_id);
