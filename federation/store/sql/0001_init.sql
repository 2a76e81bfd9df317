-- coopfed schema, version 1: actors, follows, inbox, outbox, objects, jobs.

CREATE TABLE local_actors (
    id                          serial PRIMARY KEY,
    username                    text NOT NULL UNIQUE,
    kind                        text NOT NULL CHECK (kind IN ('coop', 'instance', 'member')),
    name                        text NOT NULL DEFAULT '',
    summary                     text NOT NULL DEFAULT '',
    avatar_url                  text NOT NULL DEFAULT '',
    manually_approves_followers boolean NOT NULL DEFAULT false,
    discoverable                boolean NOT NULL DEFAULT true,
    private_key_pem             text NOT NULL,
    public_key_pem              text NOT NULL,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX local_actors_one_coop ON local_actors (kind) WHERE kind IN ('coop', 'instance');

CREATE TABLE remote_actors (
    uri            text PRIMARY KEY,
    host           text NOT NULL,
    type           text NOT NULL,
    username       text NOT NULL DEFAULT '',
    name           text NOT NULL DEFAULT '',
    inbox          text NOT NULL,
    shared_inbox   text,
    followers_url  text,
    key_id         text,
    public_key_pem text,
    document       jsonb NOT NULL,
    fetched_at     timestamptz NOT NULL DEFAULT now(),
    gone           boolean NOT NULL DEFAULT false
);
CREATE INDEX remote_actors_key_id ON remote_actors (key_id);
CREATE INDEX remote_actors_host ON remote_actors (host);

-- inbound: the remote actor follows our local actor; outbound: we follow them.
CREATE TABLE follows (
    id             bigserial PRIMARY KEY,
    local_actor_id int NOT NULL REFERENCES local_actors (id) ON DELETE CASCADE,
    remote_actor   text NOT NULL,
    direction      text NOT NULL CHECK (direction IN ('inbound', 'outbound')),
    state          text NOT NULL CHECK (state IN ('pending', 'accepted')),
    activity_id    text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    accepted_at    timestamptz,
    UNIQUE (local_actor_id, remote_actor, direction)
);
CREATE INDEX follows_remote ON follows (remote_actor);

-- Every verified activity received, once: the unique id is the de-duplication.
CREATE TABLE inbox_activities (
    id            bigserial PRIMARY KEY,
    activity_id   text NOT NULL UNIQUE,
    actor         text NOT NULL,
    type          text NOT NULL,
    body          jsonb NOT NULL,
    local_actor_id int REFERENCES local_actors (id) ON DELETE CASCADE,
    received_at   timestamptz NOT NULL DEFAULT now(),
    processed_at  timestamptz,
    outcome       text
);

-- Every activity our actors published.
CREATE TABLE outbox_activities (
    seq            bigserial PRIMARY KEY,
    id             text NOT NULL UNIQUE,
    local_actor_id int NOT NULL REFERENCES local_actors (id) ON DELETE CASCADE,
    type           text NOT NULL,
    object_id      text,
    body           jsonb NOT NULL,
    listed         boolean NOT NULL,
    published      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_by_actor ON outbox_activities (local_actor_id, seq DESC);

-- Objects: our own posts and the posts of remote actors we received.
CREATE TABLE objects (
    seq           bigserial PRIMARY KEY,
    uri           text NOT NULL UNIQUE,
    local         boolean NOT NULL,
    type          text NOT NULL,
    attributed_to text NOT NULL,
    in_reply_to   text,
    visibility    text NOT NULL CHECK (visibility IN ('public', 'unlisted', 'followers', 'direct')),
    body          jsonb NOT NULL,
    published     timestamptz,
    updated       timestamptz,
    deleted_at    timestamptz,
    received_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX objects_attributed ON objects (attributed_to, seq DESC);
CREATE INDEX objects_in_reply_to ON objects (in_reply_to) WHERE in_reply_to IS NOT NULL;

-- Likes and Announces of objects, by anyone.
CREATE TABLE interactions (
    activity_id text PRIMARY KEY,
    type        text NOT NULL CHECK (type IN ('Like', 'Announce')),
    actor       text NOT NULL,
    object_uri  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (type, actor, object_uri)
);
CREATE INDEX interactions_object ON interactions (object_uri);

CREATE TABLE domain_blocks (
    domain     text PRIMARY KEY,
    reason     text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Delivery health per remote host (Mastodon's DeliveryFailureTracker).
CREATE TABLE hosts (
    host             text PRIMARY KEY,
    failure_days     date[] NOT NULL DEFAULT '{}',
    last_failure_at  timestamptz,
    unavailable      boolean NOT NULL DEFAULT false
);

-- The job queue: claimed with FOR UPDATE SKIP LOCKED and a lease.
CREATE TABLE jobs (
    id           bigserial PRIMARY KEY,
    kind         text NOT NULL,
    payload      jsonb NOT NULL,
    attempts     int NOT NULL DEFAULT 0,
    max_attempts int NOT NULL,
    run_at       timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_ready ON jobs (run_at);

-- Jobs that ended without success, kept for the admin to read.
CREATE TABLE failed_jobs (
    id         bigint PRIMARY KEY,
    kind       text NOT NULL,
    payload    jsonb NOT NULL,
    attempts   int NOT NULL,
    last_error text,
    created_at timestamptz NOT NULL,
    failed_at  timestamptz NOT NULL DEFAULT now()
);
