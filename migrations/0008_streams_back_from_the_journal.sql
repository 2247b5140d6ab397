-- Streams back from the journal. Schema 2's rebuild of `models` ran with
-- foreign keys on in builds before this one, and its DROP TABLE cascaded
-- into `streams`: every stream of a store upgraded from schema 1 was lost
-- without a word. Every stream move is journaled (`moved_stream = 1`), so
-- a lost stream is put back at the journal's last state for it, when its
-- model still exists with the weights that event used (schema 1 reused
-- model ids: an event of a replaced model must not revive its stream under
-- the new one) and that state is still stored. Each restored stream gets a
-- `repair` event, so `log` says what was put back. Running this again
-- changes nothing: it only fills streams that are missing.

CREATE TEMP TABLE lost_streams AS
SELECT e.model AS model, m.name AS model_name, m.weights AS weights,
       e.stream AS stream, e.state_after AS state, e.at AS at, e.id AS event
FROM events e
JOIN models m ON m.id = e.model
WHERE e.moved_stream = 1
  AND e.stream IS NOT NULL
  AND e.state_after IS NOT NULL
  AND e.id = (SELECT max(l.id) FROM events l
              WHERE l.model = e.model AND l.stream = e.stream AND l.moved_stream = 1)
  AND (e.weights IS NULL OR e.weights = m.weights)
  AND EXISTS (SELECT 1 FROM states s WHERE s.id = e.state_after)
  AND NOT EXISTS (SELECT 1 FROM streams s WHERE s.model = e.model AND s.name = e.stream);

INSERT INTO streams (model, name, state, updated_at)
SELECT model, stream, state, at FROM lost_streams;

INSERT INTO events (kind, at, model, model_name, weights, stream, moved_stream, state_after, detail)
SELECT 'repair', CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
       model, model_name, weights, stream, 0, state,
       json_object('restored', 'stream', 'from_event', event)
FROM lost_streams ORDER BY model, stream;

DROP TABLE lost_streams;
