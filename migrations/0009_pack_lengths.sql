-- Each pack's committed length: where the next append may start. A pack
-- file that is missing or shorter than this (lost, or truncated by a
-- restore from an older backup) is never appended to: new bytes go to a
-- new pack, so putting the old file back later cannot collide with them.
-- NULL in packs written before schema 9: found from their slots once.
ALTER TABLE packs ADD COLUMN length INTEGER;
