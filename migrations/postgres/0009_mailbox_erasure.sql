-- Copies of a person's mail in the mailbox folders (processed, review) that
-- `forget` asked to delete. Deleting needs the mailbox credentials, which only
-- the daemon may hold: `forget` records the request here, whoever holds the
-- credentials carries it out and records what it deleted. Holds no personal
-- data itself: the inbound row keeps only its Message-ID and location.
CREATE TABLE mailbox_erasures (
    inbound_id   BIGINT PRIMARY KEY REFERENCES inbound_messages (id),
    requested_at TIMESTAMPTZ NOT NULL,
    done_at      TIMESTAMPTZ,
    -- what was deleted, per folder ("rsvpd.processed: UID 7"), or "not found"
    result       TEXT
);
CREATE INDEX mailbox_erasures_pending ON mailbox_erasures (done_at);
