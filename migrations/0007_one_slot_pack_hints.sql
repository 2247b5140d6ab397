-- A one-slot state whose slot is in a pack remembers where (pack number,
-- offset), so reading it takes one lookup in `states` and one read of the
-- pack instead of a second lookup (index, then row) in `slots`: reading a
-- replay buffer's states is the Python package's hot loop.
-- A hint, not a source of truth: the bytes read are hashed against the
-- slot id as every read is, and a hint that is missing or stale falls
-- back to the slot's row. NULL in rows written before schema 7 and for
-- slots kept inside the database; gc's pack compaction moves them along.
ALTER TABLE states ADD COLUMN slot_pack INTEGER;
ALTER TABLE states ADD COLUMN slot_offset INTEGER;
