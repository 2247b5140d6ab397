-- Slot bytes move to a rowid table, found through a unique index on the
-- id. In the WITHOUT ROWID table of schema 1 the bytes were part of the
-- b-tree key: every comparison on the way down to a row of more than a
-- few hundred bytes read the whole row through its overflow pages (an
-- LSTM-512 slot is 4 KiB; a lookup read ~10 such rows), and every insert
-- rewrote them. Now a lookup descends the narrow index (32-byte id and a
-- rowid) and reads one row once; inserts append to the table. The
-- documented way to change a table: build, copy, drop, rename.
CREATE TABLE slots_by_rowid (
    id BLOB NOT NULL UNIQUE,
    layout TEXT NOT NULL,
    bytes BLOB NOT NULL
);
INSERT INTO slots_by_rowid (id, layout, bytes) SELECT id, layout, bytes FROM slots ORDER BY id;
DROP TABLE slots;
ALTER TABLE slots_by_rowid RENAME TO slots;
