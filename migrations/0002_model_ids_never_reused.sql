-- Model ids are never reused. Events name their model by id, and an id that
-- a replaced model gave up and a new model took let `HEAD~N` and
-- `audit --train` walk into the old model's history. AUTOINCREMENT makes
-- SQLite keep the largest id ever handed out; it is seeded above every id
-- the journal already names. Rebuilt the way SQLite documents for a change
-- a plain ALTER TABLE cannot make (foreign keys are off while migrating).

CREATE TABLE models_v2 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    -- sha256 of weights/<hex>.safetensors
    weights BLOB NOT NULL,
    -- JSON ModelConfig (also in the weights file's metadata)
    config TEXT NOT NULL,
    -- JSON training parameters and losses; NULL for imported models
    training TEXT,
    created_at INTEGER NOT NULL
);
INSERT INTO models_v2 (id, name, weights, config, training, created_at)
    SELECT id, name, weights, config, training, created_at FROM models;
DROP TABLE models;
ALTER TABLE models_v2 RENAME TO models;
DELETE FROM sqlite_sequence WHERE name IN ('models', 'models_v2');
INSERT INTO sqlite_sequence (name, seq) VALUES ('models', (
    SELECT coalesce(max(id), 0) FROM (
        SELECT max(id) AS id FROM models UNION ALL SELECT max(model) FROM events
    )
));
