-- gc on the shared store takes no lock that stops writers. It marks the
-- states and slots nothing reaches, and removes one only on a run at least
-- the grace period after its mark, if it is still unreached and still
-- marked. A writer that names a state or slot unmarks it first, in its own
-- transaction, so a write in flight never loses what it is about to name,
-- and a push whose content landed before its refs keeps it for the grace
-- period.
CREATE TABLE gc_marks (
    kind text NOT NULL,
    id bytea NOT NULL,
    marked_at bigint NOT NULL,
    PRIMARY KEY (kind, id)
);
