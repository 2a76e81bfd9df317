-- coopfed schema, version 4: deleting the coop (`coopfed delete-coop`).

-- Set when the actor was deleted: its documents answer 410 and its inbox refuses
-- everything.  The row and its key stay, so the queued Deletes are still signed.
ALTER TABLE local_actors ADD COLUMN deleted_at timestamptz;
