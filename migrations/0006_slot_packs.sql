-- Large slots from bulk writes keep their bytes in pack files beside the
-- database (`packs/<n>.pack`, appended once, sequentially) instead of in
-- SQLite (where every byte went through the WAL and again through the
-- checkpoint). A packed slot's row has empty `bytes` and says where its
-- bytes are; every read still re-hashes them against the id. Pack numbers
-- are recorded here and never reused.
ALTER TABLE slots ADD COLUMN pack INTEGER;
ALTER TABLE slots ADD COLUMN pack_offset INTEGER;
ALTER TABLE slots ADD COLUMN pack_length INTEGER;
CREATE TABLE packs (
    number INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL
);
