-- coopfed schema, version 9: live updates (streaming API) and poll votes.
--
-- 1. Every web process streams to its own WebSocket clients; PostgreSQL tells all of
--    them what changed on channel ``coopfed_stream``, whichever process (or CLI
--    command) wrote it.  The payload is small JSON with ids only; the streaming side
--    reads the rows:
--      {"k": "o", "s": seq}   a new (not deleted) object: timelines
--      {"k": "d", "s": seq}   an object deleted
--      {"k": "n"}             something that may notify a member (follow, like, boost,
--                             of a peer or of a local actor, exchange step); a new
--                             object also may (a mention)
CREATE FUNCTION coopfed_stream_object() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.deleted_at IS NULL THEN
        PERFORM pg_notify('coopfed_stream', json_build_object('k', 'o', 's', NEW.seq)::text);
    ELSIF TG_OP = 'UPDATE' AND OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
        PERFORM pg_notify('coopfed_stream', json_build_object('k', 'd', 's', NEW.seq)::text);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER objects_stream AFTER INSERT OR UPDATE OF deleted_at ON objects
    FOR EACH ROW EXECUTE FUNCTION coopfed_stream_object();

CREATE FUNCTION coopfed_stream_notice() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('coopfed_stream', '{"k": "n"}');
    RETURN NULL;
END $$;

CREATE TRIGGER follows_stream AFTER INSERT OR UPDATE OF state ON follows
    FOR EACH ROW WHEN (NEW.direction = 'inbound') EXECUTE FUNCTION coopfed_stream_notice();
CREATE TRIGGER interactions_stream AFTER INSERT ON interactions
    FOR EACH ROW EXECUTE FUNCTION coopfed_stream_notice();
CREATE TRIGGER outbox_reactions_stream AFTER INSERT ON outbox_activities
    FOR EACH ROW WHEN (NEW.type IN ('Like', 'Announce')) EXECUTE FUNCTION coopfed_stream_notice();
CREATE TRIGGER exchanges_stream AFTER INSERT ON exchanges
    FOR EACH ROW EXECUTE FUNCTION coopfed_stream_notice();
CREATE TRIGGER exchange_events_stream AFTER INSERT ON exchange_events
    FOR EACH ROW EXECUTE FUNCTION coopfed_stream_notice();

-- 2. A member's votes in a poll (a Question of another server): one row per chosen
--    option; the vote itself is a Create of a Note sent to the poll's author only.
CREATE TABLE poll_votes (
    local_actor_id int NOT NULL REFERENCES local_actors (id) ON DELETE CASCADE,
    poll_uri       text NOT NULL,
    choice         int NOT NULL,
    activity_id    text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (local_actor_id, poll_uri, choice)
);
