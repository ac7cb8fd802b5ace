-- For a conference of 100,000 attendees and a million inbound mails a day:
-- each index and the seats count below replace a read of a whole conference
-- or a whole table; docs/capacity.md has the plans before and after
-- (scripts/capacity measures them on generated rows).

-- The waitlist in order (per freed place), the confirmed registrations in
-- order (per reminder): one conference's registrations of one status.
CREATE INDEX registrations_conference_status
    ON registrations (conference_id, status, registered_at, id);
-- The organizers' digest (new registrations of a day) and the attendee list.
CREATE INDEX registrations_conference_registered
    ON registrations (conference_id, registered_at, id);
-- One person's mails in: the attendee page, `rsvpd forget`.
CREATE INDEX inbound_messages_from ON inbound_messages (from_addr);
-- A registration's mails out, which erasing and the retention purge detach
-- (one statement per registration).
CREATE INDEX outbox_registration ON outbox (registration_id);

-- The seats a conference's confirmed registrations take (party sizes), kept
-- by the database as registrations change, so that a registration checks the
-- capacity with one row instead of summing the conference (58 ms at 100,000).
CREATE TABLE conference_seats (
    conference_id  TEXT PRIMARY KEY,
    taken          BIGINT NOT NULL
);
INSERT INTO conference_seats (conference_id, taken)
SELECT conference_id, SUM(party_size) FROM registrations WHERE status = 'confirmed' GROUP BY conference_id;

CREATE FUNCTION rsvpd_count_seats() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF OLD.status = 'confirmed' THEN
            UPDATE conference_seats SET taken = taken - OLD.party_size
            WHERE conference_id = OLD.conference_id;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NEW.status = 'confirmed' THEN
            INSERT INTO conference_seats (conference_id, taken) VALUES (NEW.conference_id, NEW.party_size)
            ON CONFLICT (conference_id) DO UPDATE SET taken = conference_seats.taken + excluded.taken;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER registrations_count_seats
    AFTER INSERT OR DELETE ON registrations
    FOR EACH ROW EXECUTE FUNCTION rsvpd_count_seats();
-- Only the updates that move seats: most updates of a registration (the last
-- message of its thread, a reminder's answer) leave the count alone and
-- should not write the conference's one row.
CREATE TRIGGER registrations_count_seats_update
    AFTER UPDATE OF status, party_size, conference_id ON registrations
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          OR OLD.party_size IS DISTINCT FROM NEW.party_size
          OR OLD.conference_id IS DISTINCT FROM NEW.conference_id)
    EXECUTE FUNCTION rsvpd_count_seats();
