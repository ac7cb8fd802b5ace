-- rsvpd schema, SQLite. Times are RFC 3339 UTC text; lists are JSON arrays.

CREATE TABLE conferences (
    id          TEXT PRIMARY KEY,
    title       TEXT NOT NULL,
    starts_at   TEXT NOT NULL,
    ends_at     TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    location    TEXT NOT NULL DEFAULT '',
    capacity    INTEGER,
    synced_at   TEXT NOT NULL
);

-- Every message that reached rsvpd, and what became of it.
CREATE TABLE inbound_messages (
    id            INTEGER PRIMARY KEY,
    message_id    TEXT NOT NULL,
    -- Where it came from, unique per copy: "imap:FOLDER:UIDVALIDITY:UID", "maildir:NAME", "file:SHA256".
    location      TEXT NOT NULL UNIQUE,
    from_addr     TEXT,
    subject       TEXT NOT NULL DEFAULT '',
    received_at   TEXT NOT NULL,
    -- recorded | review | ignored | duplicate | dismissed
    outcome       TEXT NOT NULL,
    reason        TEXT,
    conference_id TEXT,
    -- kept for messages in review, so that `review assign` can process them later
    raw           BLOB
);
CREATE INDEX inbound_messages_message_id ON inbound_messages (message_id);
CREATE INDEX inbound_messages_outcome ON inbound_messages (outcome);

CREATE TABLE registrations (
    id                INTEGER PRIMARY KEY,
    conference_id     TEXT NOT NULL,
    email             TEXT NOT NULL,
    name              TEXT,
    organization      TEXT,
    party_size        INTEGER NOT NULL DEFAULT 1,
    companions        TEXT NOT NULL DEFAULT '[]',
    workshops         TEXT NOT NULL DEFAULT '[]',
    notes             TEXT NOT NULL DEFAULT '[]',
    -- confirmed | waitlisted | pending | cancelled
    status            TEXT NOT NULL,
    language          TEXT NOT NULL,
    registered_at     TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    -- the Message-ID of the attendee's latest mail, for threading our answers
    last_message_id   TEXT,
    UNIQUE (conference_id, email)
);

-- Every change of a registration, with the message (or command) that caused it.
CREATE TABLE audit (
    id                INTEGER PRIMARY KEY,
    registration_id   INTEGER NOT NULL REFERENCES registrations (id),
    action            TEXT NOT NULL,
    source_message_id TEXT,
    actor             TEXT NOT NULL,
    detail            TEXT NOT NULL DEFAULT '{}',
    at                TEXT NOT NULL
);
CREATE INDEX audit_registration ON audit (registration_id);

CREATE TABLE outbox (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL,
    conference_id    TEXT,
    registration_id  INTEGER,
    recipient        TEXT NOT NULL,
    message_id       TEXT NOT NULL UNIQUE,
    in_reply_to      TEXT,
    subject          TEXT NOT NULL,
    -- the complete rendered message, sent as is (also on every retry)
    raw              BLOB NOT NULL,
    -- queued | sent | failed
    state            TEXT NOT NULL DEFAULT 'queued',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    last_error       TEXT,
    created_at       TEXT NOT NULL,
    sent_at          TEXT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);

-- Progress per mailbox folder.
CREATE TABLE mailbox_state (
    source       TEXT PRIMARY KEY,
    uidvalidity  INTEGER NOT NULL,
    last_uid     INTEGER NOT NULL
);

-- Addresses that bounced permanently: never written to again.
CREATE TABLE undeliverable (
    email       TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    at          TEXT NOT NULL
);
