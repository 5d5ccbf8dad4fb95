-- Users of external identity providers (OIDC issuers), PostgreSQL. Twin: migrations/sqlite/20261204000003_external_identities.sql.
-- A subject at an issuer is one local user, created on first sight (just-in-time provisioning).

CREATE TABLE external_identities (
    issuer      text NOT NULL,
    subject     text NOT NULL,
    user_id     uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (issuer, subject)
);
