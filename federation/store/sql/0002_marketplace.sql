-- coopfed schema, version 2: offers, needs, solidarity requests, exchanges,
-- matches, client tokens and the coop's rules.

CREATE TABLE proposals (
    seq           bigserial PRIMARY KEY,
    uri           text NOT NULL UNIQUE,
    local         boolean NOT NULL,
    attributed_to text NOT NULL,
    kind          text NOT NULL CHECK (kind IN ('offer', 'need', 'solidarity')),
    title         text NOT NULL,
    details       text NOT NULL DEFAULT '',
    action        text NOT NULL,
    resource      text,
    unit          text,
    quantity      numeric,
    price         numeric,
    currency      text,
    tags          text[] NOT NULL DEFAULT '{}',
    deadline      timestamptz,
    pledged       numeric NOT NULL DEFAULT 0,
    received      numeric NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed', 'deleted')),
    body          jsonb NOT NULL,
    published     timestamptz NOT NULL,
    updated       timestamptz,
    search        tsvector GENERATED ALWAYS AS (
                      to_tsvector('simple', title || ' ' || details)) STORED
);
CREATE INDEX proposals_by_owner ON proposals (attributed_to, seq DESC);
CREATE INDEX proposals_open ON proposals (kind, status);
CREATE INDEX proposals_tags ON proposals USING gin (tags);
CREATE INDEX proposals_search ON proposals USING gin (search);

-- One exchange per Offer(Agreement); both nodes keep one.
CREATE TABLE exchanges (
    id                  bigserial PRIMARY KEY,
    offer_id            text NOT NULL UNIQUE,
    proposal_uri        text NOT NULL,
    proposer            text NOT NULL,
    responder           text NOT NULL,
    role                text NOT NULL CHECK (role IN ('proposer', 'responder')),
    state               text NOT NULL CHECK (state IN
                            ('offered', 'accepted', 'rejected', 'withdrawn', 'cancelled',
                             'completed')),
    pledge              boolean NOT NULL,
    quantity            numeric,
    unit                text,
    reciprocal_quantity numeric,
    reciprocal_unit     text,
    message             text NOT NULL DEFAULT '',
    agreement_uri       text UNIQUE,
    offer               jsonb NOT NULL,
    agreement           jsonb,
    receipt             jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exchanges_proposal ON exchanges (proposal_uri);

-- Every state change of an exchange, and every refused one.
CREATE TABLE exchange_events (
    id          bigserial PRIMARY KEY,
    exchange_id bigint NOT NULL REFERENCES exchanges (id) ON DELETE CASCADE,
    event       text NOT NULL,
    from_state  text NOT NULL,
    to_state    text,
    by_actor    text NOT NULL,
    activity_id text,
    refused     text,
    at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE matches (
    id             bigserial PRIMARY KEY,
    our_proposal   text NOT NULL,
    their_proposal text NOT NULL,
    reason         text NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    dismissed      boolean NOT NULL DEFAULT false,
    UNIQUE (our_proposal, their_proposal)
);

-- Bearer tokens of the client-to-server API; only their SHA-256 is stored.
CREATE TABLE tokens (
    id             serial PRIMARY KEY,
    local_actor_id int NOT NULL REFERENCES local_actors (id) ON DELETE CASCADE,
    name           text NOT NULL,
    token_hash     text NOT NULL UNIQUE,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    revoked_at     timestamptz
);

-- The coop's rules (auto-accept pledges, …), one row per setting.
CREATE TABLE rules (
    name  text PRIMARY KEY,
    value jsonb NOT NULL
);
