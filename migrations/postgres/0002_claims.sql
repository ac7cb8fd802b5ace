-- Claims: a sender holds a queued mail while it talks to the SMTP server, so
-- any number of senders never send one mail twice; an expired lease (the
-- sender died) is claimed again. See src/storage/claims.rs.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TIMESTAMPTZ;
