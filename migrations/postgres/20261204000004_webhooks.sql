-- Event hooks (webhooks), PostgreSQL. Twin: migrations/sqlite/20261204000004_webhooks.sql.
-- A change writes its event to webhook_events in its own transaction (the outbox); a
-- dispatcher on any node moves events into one delivery per matching subscription, in id
-- order, and deletes each delivery once its receiver took it.

CREATE TABLE webhook_subscriptions (
    id          uuid PRIMARY KEY,
    -- NULL: a deployment's subscription (from configuration), which hears every event.
    owner_id    uuid REFERENCES users (id) ON DELETE CASCADE,
    -- Configuration subscriptions are kept in step by name.
    name        text UNIQUE,
    url         text NOT NULL,
    events      text NOT NULL,
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE webhook_events (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL,
    video_id    text,
    owner_id    uuid,
    payload     text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE webhook_deliveries (
    id               bigserial PRIMARY KEY,
    subscription_id  uuid NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    event_id         bigint NOT NULL,
    kind             text NOT NULL,
    -- '' for events of no video; a subscription's deliveries of one video go in id order.
    video_id         text NOT NULL,
    payload          text NOT NULL,
    created_at       timestamptz NOT NULL,
    state            text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'dead')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_ms  bigint NOT NULL,
    claimed_until_ms bigint,
    last_error       text
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (state, next_attempt_ms);
CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (subscription_id, video_id, id);

-- One row: expanding events into deliveries takes its lock, so expansions never interleave.
CREATE TABLE webhook_dispatch (
    id           integer PRIMARY KEY,
    expanded_at  timestamptz
);
INSERT INTO webhook_dispatch (id) VALUES (1);
