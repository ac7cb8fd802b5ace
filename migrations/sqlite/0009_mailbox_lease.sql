-- The one mailbox reader (src/storage/reader.rs): each process that becomes
-- the reader bumps `epoch`; every commit of inbound state checks that the
-- epoch is still the one its reader got, so a reader that lost the mailbox
-- records nothing. On SQLite the lock itself is a file lock; this row keeps
-- the same epoch as on PostgreSQL, and says who reads.
CREATE TABLE mailbox_lease (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    epoch        INTEGER NOT NULL,
    -- "rsvpd run, pid 4242 on host-a"
    holder       TEXT NOT NULL,
    -- daemon | once
    role         TEXT NOT NULL,
    -- PostgreSQL only: the server process of the reader's lock connection
    backend_pid  INTEGER,
    since        TEXT NOT NULL,
    renewed_at   TEXT NOT NULL
);
