-- Bulk imports journal once. A state that an import (or any bulk
-- operation) made names that event in `made_by`; gc keeps it while the
-- event is kept, as a per-state event used to. States made before schema
-- 4 have their own events and leave it NULL.
ALTER TABLE states ADD COLUMN made_by INTEGER;

-- Tags keyed by name without a rowid: the name is stored once (the rowid
-- table kept it twice, in the table and in its unique index). No foreign
-- key to states: its check was a random lookup per tag (a third of a bulk
-- import's time), and what it guarded holds by construction: a tag is only
-- ever set to a stored state, tags are gc roots, and `verify` reports a tag
-- whose state is missing. The documented way to change a table: build,
-- copy, drop, rename.
CREATE TABLE tags_by_name (
    name TEXT PRIMARY KEY,
    state BLOB NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO tags_by_name (name, state, updated_at) SELECT name, state, updated_at FROM tags;
DROP TABLE tags;
ALTER TABLE tags_by_name RENAME TO tags;
CREATE INDEX tags_by_state ON tags (state);
