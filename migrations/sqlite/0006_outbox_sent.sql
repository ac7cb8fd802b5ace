-- The rate limit (`max_per_minute`) counts the mail sent in the last minute
-- before every send. Without an index on the send time that count looked up
-- every sent row, so a send cost more the longer the outbox's history: in a
-- 1,000-mail backlog 2.4 ms a mail for the first hundred, 15 ms for the last
-- hundred (benches/throughput.rs). PostgreSQL: migrations/postgres/0004.
CREATE INDEX outbox_sent ON outbox (state, sent_at);
