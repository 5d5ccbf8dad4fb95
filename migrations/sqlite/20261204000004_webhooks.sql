-- Event hooks (webhooks), SQLite. Twin: migrations/postgres/20261204000004_webhooks.sql.
-- A change writes its event to webhook_events in its own transaction (the outbox); a
-- dispatcher on any node moves events into one delivery per matching subscription, in id
-- order, and deletes each delivery once its receiver took it.

CREATE TABLE webhook_subscriptions (
    id          BLOB PRIMARY KEY,
    -- NULL: a deployment's subscription (from configuration), which hears every event.
    owner_id    BLOB REFERENCES users (id) ON DELETE CASCADE,
    -- Configuration subscriptions are kept in step by name.
    name        TEXT UNIQUE,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE webhook_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    video_id    TEXT,
    owner_id    BLOB,
    payload     TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id  BLOB NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id         INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    -- '' for events of no video; a subscription's deliveries of one video go in id order.
    video_id         TEXT NOT NULL,
    payload          TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms  INTEGER NOT NULL,
    claimed_until_ms INTEGER,
    last_error       TEXT
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (state, next_attempt_ms);
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (subscription_id, video_id, id);

-- One row: expanding events into deliveries takes its lock, so expansions never interleave.
CREATE TABLE webhook_dispatch (
    id           INTEGER PRIMARY KEY,
    expanded_at  TEXT
);
INSERT INTO webhook_dispatch (id) VALUES (1);
