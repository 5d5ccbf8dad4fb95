-- Users of external identity providers (OIDC issuers), SQLite. Twin: migrations/postgres/20261204000003_external_identities.sql.
-- A subject at an issuer is one local user, created on first sight (just-in-time provisioning).

CREATE TABLE external_identities (
    issuer      TEXT NOT NULL,
    subject     TEXT NOT NULL,
    user_id     BLOB NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
