-- coopfed schema, version 9: the profile an admin edits in the browser, and
-- members an admin suspends.

-- The header image's URL (the avatar is avatar_url) and the profile fields
-- (Mastodon's PropertyValue attachments: a list of {"name", "value"}, at most 4).
ALTER TABLE local_actors ADD COLUMN header_url text NOT NULL DEFAULT '';
ALTER TABLE local_actors ADD COLUMN fields jsonb NOT NULL DEFAULT '[]'::jsonb;
-- Set while a member is suspended: its logins are refused and its tokens were revoked.
ALTER TABLE local_actors ADD COLUMN suspended_at timestamptz;
-- The name, summary and avatar URL the settings (flags, environment) gave at the
-- last start that applied them: a restart with the same settings keeps what the
-- admin edited in the browser since; a changed setting applies.
ALTER TABLE local_actors ADD COLUMN settings_profile jsonb;
