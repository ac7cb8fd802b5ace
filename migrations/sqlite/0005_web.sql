-- The web dashboard: login sessions and failed login attempts.

-- A logged-in browser. The cookie holds a random token; only its SHA-256 is
-- stored, so a copy of the database does not let anyone log in.
CREATE TABLE web_sessions (
    token_hash    TEXT PRIMARY KEY,
    user_name     TEXT NOT NULL,
    -- the token every form of this session carries (compared in constant time)
    csrf          TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    last_seen_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);

-- Failed logins, counted per user name and per address for the rate limit.
CREATE TABLE web_login_failures (
    id         INTEGER PRIMARY KEY,
    user_name  TEXT NOT NULL,
    address    TEXT NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX web_login_failures_user ON web_login_failures (user_name, at);
CREATE INDEX web_login_failures_address ON web_login_failures (address, at);
