-- coopfed schema, version 3: the admin pages' password and login sessions.

-- The admin password of a local actor (`coopfed password`): an scrypt hash.
CREATE TABLE admin_passwords (
    local_actor_id int PRIMARY KEY REFERENCES local_actors (id) ON DELETE CASCADE,
    password_hash  text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Browser sessions of the admin pages; only the SHA-256 of the cookie is kept.
-- A session opened with an API token ends when that token is revoked.
CREATE TABLE admin_sessions (
    id_hash        text PRIMARY KEY,
    local_actor_id int NOT NULL REFERENCES local_actors (id) ON DELETE CASCADE,
    token_id       int REFERENCES tokens (id) ON DELETE CASCADE,
    csrf           text NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
