-- coopfed schema, version 5: members use the node from Mastodon-compatible apps
-- (the Mastodon client API and its OAuth 2).

-- The login password of a member (`coopfed member add`): an scrypt hash.
-- Kept apart from admin_passwords: a member's password never opens the admin pages.
CREATE TABLE member_passwords (
    local_actor_id int PRIMARY KEY REFERENCES local_actors (id) ON DELETE CASCADE,
    password_hash  text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Client applications registered with POST /api/v1/apps; the secret is kept as SHA-256.
CREATE TABLE oauth_apps (
    id            bigserial PRIMARY KEY,
    client_id     text NOT NULL UNIQUE,
    secret_hash   text NOT NULL,
    name          text NOT NULL,
    website       text,
    redirect_uris text[] NOT NULL,
    scopes        text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Authorization codes: single use, short-lived, with the PKCE challenge if any.
CREATE TABLE oauth_codes (
    code_hash        text PRIMARY KEY,
    app_id           bigint NOT NULL REFERENCES oauth_apps (id) ON DELETE CASCADE,
    local_actor_id   int NOT NULL REFERENCES local_actors (id) ON DELETE CASCADE,
    redirect_uri     text NOT NULL,
    scopes           text[] NOT NULL,
    challenge        text,
    challenge_method text CHECK (challenge_method IN ('S256', 'plain')),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz
);

-- Access tokens (SHA-256 only).  An app token (client_credentials) has no actor.
CREATE TABLE oauth_tokens (
    id             bigserial PRIMARY KEY,
    token_hash     text NOT NULL UNIQUE,
    app_id         bigint NOT NULL REFERENCES oauth_apps (id) ON DELETE CASCADE,
    local_actor_id int REFERENCES local_actors (id) ON DELETE CASCADE,
    scopes         text[] NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz,
    revoked_at     timestamptz
);
CREATE INDEX oauth_tokens_actor ON oauth_tokens (local_actor_id);

-- The numeric account ids Mastodon clients need, for local and remote actors alike.
CREATE TABLE api_accounts (
    id  bigserial PRIMARY KEY,
    uri text NOT NULL UNIQUE
);

-- Notifications are computed from follows, objects, interactions and exchange
-- events; a member's "clear" and "dismiss" are remembered here.
CREATE TABLE api_notification_marks (
    local_actor_id int PRIMARY KEY REFERENCES local_actors (id) ON DELETE CASCADE,
    cleared_before bigint NOT NULL
);
CREATE TABLE api_notification_dismissals (
    local_actor_id  int NOT NULL REFERENCES local_actors (id) ON DELETE CASCADE,
    notification_id bigint NOT NULL,
    PRIMARY KEY (local_actor_id, notification_id)
);

-- Mentions of a member (notifications) and a post's likes and boosts by our actors.
CREATE INDEX objects_tags ON objects USING gin ((body -> 'tag') jsonb_path_ops);
CREATE INDEX outbox_by_object ON outbox_activities (object_id)
    WHERE type IN ('Like', 'Announce', 'Undo');
