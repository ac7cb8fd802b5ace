-- While the SMTP server or our setup refuses mail (connection, TLS, login,
-- sender), the whole outbox pauses with a growing backoff; no address is
-- marked. One row: the current or the last pause, kept after it ended so the
-- organizers' digest can report it.
CREATE TABLE delivery_pause (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    since       TEXT NOT NULL,
    paused_until TEXT NOT NULL,
    failures    INTEGER NOT NULL,
    stage       TEXT NOT NULL,
    error       TEXT NOT NULL,
    fix         TEXT NOT NULL,
    ended_at    TEXT
);
