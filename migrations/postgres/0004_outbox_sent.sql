-- The rate limit (`max_per_minute`) counts the mail sent in the last minute
-- before every send; without an index on the send time that count reads every
-- sent row (see migrations/sqlite/0006_outbox_sent.sql for the measurement).
CREATE INDEX outbox_sent ON outbox (state, sent_at);
