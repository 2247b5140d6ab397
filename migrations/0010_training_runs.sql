-- Training runs that have not finished: each run's plan (JSON: model
-- config, training settings, init source, data object id), its
-- checkpoints and the states it has recorded so far. A checkpoint is a
-- safetensors file in weights/, named by its sha256 like a weights file
-- (the parameters, Adam's moments, the carried state and the losses so
-- far): kept out of the database, whose WAL would write its megabytes
-- twice. A run's rows go in the transaction that registers its model.
CREATE TABLE runs (
    name TEXT PRIMARY KEY,
    plan TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE checkpoints (
    run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
    batches_done INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    batch INTEGER NOT NULL,
    file BLOB NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (run, batches_done)
) WITHOUT ROWID;

CREATE TABLE run_states (
    run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    state BLOB NOT NULL REFERENCES states(id),
    epoch INTEGER NOT NULL,
    batch INTEGER,
    PRIMARY KEY (run, position)
) WITHOUT ROWID;
