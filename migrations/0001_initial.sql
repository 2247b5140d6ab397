-- The first schema: the content-addressed store (slots, states, tensor
-- objects), models, refs (tags and streams) and the append-only event
-- journal. Ids are 32-byte sha256 BLOBs; see README for the recipes.

CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    -- sha256 of weights/<hex>.safetensors
    weights BLOB NOT NULL,
    -- JSON ModelConfig (also in the weights file's metadata)
    config TEXT NOT NULL,
    -- JSON training parameters and losses; NULL for imported models
    training TEXT,
    created_at INTEGER NOT NULL
);

-- One batch slot's state, all layers, stored once per distinct content.
CREATE TABLE slots (
    id BLOB PRIMARY KEY,
    layout TEXT NOT NULL,
    bytes BLOB NOT NULL
) WITHOUT ROWID;

-- A state: the layout and the ordered slot ids (32 bytes each), so a
-- broadcast or a re-batch writes a new list and no tensor bytes.
CREATE TABLE states (
    id BLOB PRIMARY KEY,
    layout TEXT NOT NULL,
    batch INTEGER NOT NULL,
    slot_ids BLOB NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Prediction inputs and outputs: safetensors bytes without metadata.
CREATE TABLE objects (
    id BLOB PRIMARY KEY,
    bytes BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE tags (
    name TEXT PRIMARY KEY,
    state BLOB NOT NULL REFERENCES states(id),
    updated_at INTEGER NOT NULL
);

-- A stream is the "current state" of a model's stateful layer.
CREATE TABLE streams (
    model INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    state BLOB NOT NULL REFERENCES states(id),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (model, name)
);

-- Everything that made a state or moved a ref. The model column has no
-- foreign key on purpose: the journal outlives a replaced model, and
-- `weights` keeps what a replay needs.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    at INTEGER NOT NULL,
    model INTEGER,
    model_name TEXT,
    weights BLOB,
    stream TEXT,
    -- 1 when the event set the stream to state_after (HEAD~N walks these)
    moved_stream INTEGER NOT NULL DEFAULT 0,
    state_before BLOB,
    state_after BLOB,
    input BLOB,
    output BLOB,
    tag TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX events_by_stream ON events (model, stream, moved_stream, id);
CREATE INDEX events_by_state_after ON events (state_after);
