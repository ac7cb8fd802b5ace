-- rsvpd schema, PostgreSQL: the same tables as migrations/sqlite/0001–0003,
-- with the types PostgreSQL has (timestamptz, bytea, jsonb, identity keys).
-- A later change adds a file here and one in migrations/sqlite.

CREATE TABLE conferences (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    starts_at   TIMESTAMPTZ NOT NULL,
    ends_at     TIMESTAMPTZ NOT NULL,
    timezone    TEXT NOT NULL,
    location    TEXT NOT NULL DEFAULT '',
    capacity    BIGINT,
    synced_at   TIMESTAMPTZ NOT NULL
);

-- Every message that reached rsvpd, and what became of it.
CREATE TABLE inbound_messages (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id    TEXT NOT NULL,
    -- Where it came from, unique per copy: "imap:FOLDER:UIDVALIDITY:UID", "maildir:NAME", "file:SHA256".
    location      TEXT NOT NULL UNIQUE,
    from_addr     TEXT,
    subject       TEXT NOT NULL DEFAULT '',
    received_at   TIMESTAMPTZ NOT NULL,
    -- recorded | review | ignored | duplicate | dismissed (crate::domain::InboundOutcome)
    outcome       TEXT NOT NULL,
    reason        TEXT,
    conference_id TEXT,
    -- kept for messages in review, so that `review assign` can process them later
    raw           BYTEA
);
CREATE INDEX inbound_messages_message_id ON inbound_messages (message_id);
CREATE INDEX inbound_messages_outcome ON inbound_messages (outcome);

CREATE TABLE registrations (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conference_id     TEXT NOT NULL,
    email             TEXT NOT NULL,
    name              TEXT,
    organization      TEXT,
    party_size        BIGINT NOT NULL DEFAULT 1,
    companions        JSONB NOT NULL DEFAULT '[]',
    workshops         JSONB NOT NULL DEFAULT '[]',
    notes             JSONB NOT NULL DEFAULT '[]',
    -- confirmed | waitlisted | pending | cancelled (crate::domain::Status)
    status            TEXT NOT NULL,
    language          TEXT NOT NULL,
    registered_at     TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    -- the Message-ID of the attendee's latest mail, for threading our answers
    last_message_id   TEXT,
    UNIQUE (conference_id, email)
);
CREATE INDEX registrations_email ON registrations (email);

-- Every change of a registration, with the message (or command) that caused it.
CREATE TABLE audit (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    registration_id   BIGINT NOT NULL REFERENCES registrations (id),
    action            TEXT NOT NULL,
    source_message_id TEXT,
    actor             TEXT NOT NULL,
    detail            JSONB NOT NULL DEFAULT '{}',
    at                TIMESTAMPTZ NOT NULL
);
CREATE INDEX audit_registration ON audit (registration_id);
CREATE INDEX audit_action_at ON audit (action, at);

CREATE TABLE outbox (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- crate::domain::OutboxKind
    kind             TEXT NOT NULL,
    conference_id    TEXT,
    registration_id  BIGINT,
    recipient        TEXT NOT NULL,
    message_id       TEXT NOT NULL UNIQUE,
    in_reply_to      TEXT,
    subject          TEXT NOT NULL,
    -- the complete rendered message, sent as is (also on every retry)
    raw              BYTEA NOT NULL,
    -- queued | sent | failed (crate::domain::OutboxState)
    state            TEXT NOT NULL DEFAULT 'queued',
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  TIMESTAMPTZ NOT NULL,
    last_error       TEXT,
    created_at       TIMESTAMPTZ NOT NULL,
    sent_at          TIMESTAMPTZ,
    -- when a mail failed for good, so the organizers' digest can list it
    failed_at        TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);

-- Progress per mailbox folder.
CREATE TABLE mailbox_state (
    source       TEXT PRIMARY KEY,
    uidvalidity  BIGINT NOT NULL,
    last_uid     BIGINT NOT NULL
);

-- Addresses that bounced permanently: never written to again.
CREATE TABLE undeliverable (
    email       TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    at          TIMESTAMPTZ NOT NULL
);

-- One row per registration and reminder rule, written in the same transaction
-- as the queued reminder: the primary key is what makes a reminder go out once,
-- across restarts, `run --once` and several instances.
CREATE TABLE reminders_sent (
    registration_id  BIGINT NOT NULL REFERENCES registrations (id),
    rule_key         TEXT NOT NULL,
    -- sent | skipped (the address bounced before)
    outcome          TEXT NOT NULL,
    at               TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (registration_id, rule_key)
);

-- Per digest rule: the last scheduled time it was handled, and the time the
-- last digest actually sent covered up to (see migrations/sqlite/0002).
CREATE TABLE digest_runs (
    conference_id   TEXT NOT NULL,
    rule_key        TEXT NOT NULL,
    last_fire_at    TIMESTAMPTZ NOT NULL,
    last_digest_at  TIMESTAMPTZ,
    PRIMARY KEY (conference_id, rule_key)
);

-- A double-opt-in request: the token the attendee's reply must carry.
CREATE TABLE opt_in_requests (
    registration_id  BIGINT PRIMARY KEY REFERENCES registrations (id),
    -- upper case
    token            TEXT NOT NULL UNIQUE,
    requested_at     TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    -- open | confirmed | expired | cancelled (crate::domain::OptInState)
    state            TEXT NOT NULL DEFAULT 'open'
);
CREATE INDEX opt_in_requests_open ON opt_in_requests (state, expires_at);
