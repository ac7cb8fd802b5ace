-- Claims: a sender holds a queued mail while it talks to the SMTP server, so
-- two senders (a daemon and `run --once`, or several workers) never send one
-- mail twice; an expired lease (the sender died) is claimed again.
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN claimed_until TEXT;
