-- When a mail failed for good, so the organizers' digest can list it.
ALTER TABLE outbox ADD COLUMN failed_at TEXT;
