-- coopfed schema, version 8: incoming shapes and refused deliveries.
--
-- 1. Stored bodies hold to/cc/bto/bcc/audience/tag/attachment as arrays: the inbox
--    normalises every incoming document (federation/shapes.py) before storing it, and
--    the queries that look inside bodies (mentions, hashtags, addressing) rely on it.
--    Rows stored before that boundary may hold a single value: wrap it.
UPDATE objects SET body = (
    SELECT jsonb_object_agg(
        e.key,
        CASE WHEN e.key IN ('to', 'cc', 'bto', 'bcc', 'audience', 'tag', 'attachment')
                  AND jsonb_typeof(e.value) NOT IN ('array', 'null')
             THEN jsonb_build_array(e.value) ELSE e.value END)
    FROM jsonb_each(body) AS e)
WHERE jsonb_typeof(body) = 'object' AND EXISTS (
    SELECT 1 FROM jsonb_each(body) AS e
    WHERE e.key IN ('to', 'cc', 'bto', 'bcc', 'audience', 'tag', 'attachment')
      AND jsonb_typeof(e.value) NOT IN ('array', 'null'));

-- 2. The last delivery each host refused, so that `coopfed status` can say why: the
--    HTTP status (NULL when there was no answer) and the first 200 bytes of the answer.
--    A successful delivery to the host removes its row.
CREATE TABLE delivery_refusals (
    host         text PRIMARY KEY,
    status       integer,
    answer       text NOT NULL DEFAULT '',
    inbox        text NOT NULL,
    activity_id  text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now()
);
