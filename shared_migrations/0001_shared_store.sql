-- The shared store on PostgreSQL: the same content-addressed rows as an
-- embedded store (ids are the same 32-byte sha256 values), refs by name,
-- and a journal of events from many stores, each with its origin (the
-- pushing store's id) and its number there. Slot, object and weights
-- bytes live in the database too: storage EXTERNAL, since float data does
-- not compress and TOAST would only spend time trying.
CREATE TABLE statectl_schema (
    version integer NOT NULL
);

CREATE TABLE slots (
    id bytea PRIMARY KEY,
    layout text NOT NULL,
    bytes bytea NOT NULL
);
ALTER TABLE slots ALTER COLUMN bytes SET STORAGE EXTERNAL;

CREATE TABLE states (
    id bytea PRIMARY KEY,
    layout text NOT NULL,
    batch integer NOT NULL,
    slot_ids bytea NOT NULL,
    created_at bigint NOT NULL
);
ALTER TABLE states ALTER COLUMN slot_ids SET STORAGE EXTERNAL;

CREATE TABLE objects (
    id bytea PRIMARY KEY,
    bytes bytea NOT NULL
);
ALTER TABLE objects ALTER COLUMN bytes SET STORAGE EXTERNAL;

-- Weights files (and nothing else from weights/), by their sha256.
CREATE TABLE weights_files (
    id bytea PRIMARY KEY,
    bytes bytea NOT NULL
);
ALTER TABLE weights_files ALTER COLUMN bytes SET STORAGE EXTERNAL;

CREATE TABLE models (
    name text PRIMARY KEY,
    weights bytea NOT NULL,
    config text NOT NULL,
    training text,
    created_at bigint NOT NULL
);

CREATE TABLE tags (
    name text PRIMARY KEY,
    state bytea NOT NULL,
    updated_at bigint NOT NULL
);
CREATE INDEX tags_by_state ON tags (state);

CREATE TABLE streams (
    model text NOT NULL,
    name text NOT NULL,
    state bytea NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (model, name)
);

-- The stores that pushed here, by their own id.
CREATE TABLE origins (
    id bytea PRIMARY KEY,
    first_push bigint NOT NULL,
    last_push bigint NOT NULL
);

CREATE TABLE events (
    id bigserial PRIMARY KEY,
    origin bytea NOT NULL REFERENCES origins (id),
    origin_event bigint NOT NULL,
    kind text NOT NULL,
    at bigint NOT NULL,
    model_name text,
    weights bytea,
    stream text,
    moved_stream boolean NOT NULL,
    state_before bytea,
    state_after bytea,
    input bytea,
    output bytea,
    tag text,
    detail text NOT NULL,
    UNIQUE (origin, origin_event)
);
CREATE INDEX events_by_stream ON events (model_name, stream, moved_stream, id);

INSERT INTO statectl_schema (version) VALUES (1);
