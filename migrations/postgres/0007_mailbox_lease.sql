-- The one mailbox reader (src/storage/reader.rs): the process holding the
-- session advisory lock "rsvpd mb" reads the mailbox. Each acquisition bumps
-- `epoch`; every commit of inbound state checks that the epoch is still the
-- one its reader got, so a reader that lost its lock records nothing. The
-- reader renews `renewed_at` every 5 s; a standby ends the lock connection of
-- a reader that stopped renewing (it hangs, or sits behind a dead link).
CREATE TABLE mailbox_lease (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    epoch        BIGINT NOT NULL,
    -- "rsvpd run, pid 4242 on host-a"
    holder       TEXT NOT NULL,
    -- daemon | once
    role         TEXT NOT NULL,
    -- the server process of the reader's lock connection (pg_backend_pid)
    backend_pid  BIGINT,
    since        TIMESTAMPTZ NOT NULL,
    renewed_at   TIMESTAMPTZ NOT NULL
);
