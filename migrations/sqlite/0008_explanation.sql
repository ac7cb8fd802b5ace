-- Why the understanding step decided what it did (understand::Explanation as
-- JSON): the rules that fired and the sentences they fired on. Personal data:
-- erased and purged with the subject.
ALTER TABLE inbound_messages ADD COLUMN explanation TEXT;
