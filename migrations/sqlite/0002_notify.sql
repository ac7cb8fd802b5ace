-- Notifications: reminders, digests, double opt-in. Times are RFC 3339 UTC text.

-- One row per registration and reminder rule, written in the same transaction
-- as the queued reminder: the primary key is what makes a reminder go out once,
-- across restarts, `run --once` and several instances.
CREATE TABLE reminders_sent (
    registration_id  INTEGER NOT NULL REFERENCES registrations (id),
    -- Reminder::key(), e.g. "before=86400s at=09:00"
    rule_key         TEXT NOT NULL,
    -- sent | skipped (the address bounced before)
    outcome          TEXT NOT NULL,
    at               TEXT NOT NULL,
    PRIMARY KEY (registration_id, rule_key)
);

-- Per digest rule: the last scheduled time it was handled (the next one is
-- computed from it, so downtime is caught up once), and the time the last
-- digest actually sent covered up to (the next digest reports what came after;
-- NULL before the first, which then reports everything).
CREATE TABLE digest_runs (
    conference_id   TEXT NOT NULL,
    -- the cron expression
    rule_key        TEXT NOT NULL,
    last_fire_at    TEXT NOT NULL,
    last_digest_at  TEXT,
    PRIMARY KEY (conference_id, rule_key)
);

-- A double-opt-in request: the token the attendee's reply must carry.
CREATE TABLE opt_in_requests (
    registration_id  INTEGER PRIMARY KEY REFERENCES registrations (id),
    -- upper case; compared case-insensitively (some mail clients lowercase addresses)
    token            TEXT NOT NULL UNIQUE,
    requested_at     TEXT NOT NULL,
    expires_at       TEXT NOT NULL,
    -- open | confirmed | expired | cancelled
    state            TEXT NOT NULL DEFAULT 'open'
);
CREATE INDEX opt_in_requests_open ON opt_in_requests (state, expires_at);
CREATE INDEX audit_action_at ON audit (action, at);
