-- For a conference of 100,000 attendees and a million inbound mails a day;
-- the same as migrations/postgres/0008_capacity.sql (docs/capacity.md has the
-- plans): indexes, and the seats count kept by the database. A later
-- migration that rebuilds `registrations` (the SQLite way to change a
-- column) drops these triggers and must create them again.
CREATE INDEX registrations_conference_status
    ON registrations (conference_id, status, registered_at, id);
CREATE INDEX registrations_conference_registered
    ON registrations (conference_id, registered_at, id);
CREATE INDEX inbound_messages_from ON inbound_messages (from_addr);
CREATE INDEX outbox_registration ON outbox (registration_id);

CREATE TABLE conference_seats (
    conference_id  TEXT PRIMARY KEY,
    taken          INTEGER NOT NULL
);
INSERT INTO conference_seats (conference_id, taken)
SELECT conference_id, SUM(party_size) FROM registrations WHERE status = 'confirmed' GROUP BY conference_id;

CREATE TRIGGER registrations_seats_insert AFTER INSERT ON registrations
WHEN NEW.status = 'confirmed'
BEGIN
    INSERT INTO conference_seats (conference_id, taken) VALUES (NEW.conference_id, NEW.party_size)
    ON CONFLICT (conference_id) DO UPDATE SET taken = taken + excluded.taken;
END;

-- Only the updates that move seats (see the PostgreSQL migration).
CREATE TRIGGER registrations_seats_update
AFTER UPDATE OF status, party_size, conference_id ON registrations
WHEN OLD.status IS NOT NEW.status OR OLD.party_size IS NOT NEW.party_size
     OR OLD.conference_id IS NOT NEW.conference_id
BEGIN
    UPDATE conference_seats SET taken = taken - OLD.party_size
    WHERE conference_id = OLD.conference_id AND OLD.status = 'confirmed';
    INSERT INTO conference_seats (conference_id, taken)
    SELECT NEW.conference_id, NEW.party_size WHERE NEW.status = 'confirmed'
    ON CONFLICT (conference_id) DO UPDATE SET taken = taken + excluded.taken;
END;

CREATE TRIGGER registrations_seats_delete AFTER DELETE ON registrations
WHEN OLD.status = 'confirmed'
BEGIN
    UPDATE conference_seats SET taken = taken - OLD.party_size WHERE conference_id = OLD.conference_id;
END;
