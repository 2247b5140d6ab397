-- Tags by the state they name: `show`, `log` and `tag` checks ask "which
-- tags name this state?", which scanned every tag (80-100 ms per command in
-- a store of a million tags) without this index.
CREATE INDEX tags_by_state ON tags (state);
