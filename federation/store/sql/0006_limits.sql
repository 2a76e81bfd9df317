-- coopfed schema, version 6: limits.
-- The inbox counts each remote actor's unprocessed activities before storing one
-- more (settings.max_pending_per_actor): a partial index keeps that count cheap.
CREATE INDEX inbox_pending_by_actor ON inbox_activities (actor) WHERE processed_at IS NULL;
