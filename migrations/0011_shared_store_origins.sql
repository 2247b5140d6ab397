-- Push and pull (the shared store). Every store has a random id of its
-- own, made once here: the shared store records which store each event
-- came from and its number there, so events from many stores keep their
-- order and their origin. An event pulled into this store keeps its
-- origin and number (both NULL for the events this store wrote), and the
-- unique index makes a repeated pull insert nothing twice.
CREATE TABLE store_identity (
    id BLOB NOT NULL
);
INSERT INTO store_identity (id) VALUES (randomblob(16));
ALTER TABLE events ADD COLUMN origin BLOB;
ALTER TABLE events ADD COLUMN origin_event INTEGER;
CREATE UNIQUE INDEX events_by_origin ON events (origin, origin_event) WHERE origin IS NOT NULL;
