-- coopfed schema, version 9: members' uploaded media.
--
-- One row per upload (federation/images.py has checked and re-encoded it, and
-- federation/mediafiles.py stored the files by content).  ``object_uri`` is the
-- status it is attached to: NULL until a status takes it, then never again.
CREATE TABLE media_attachments (
    id              bigserial PRIMARY KEY,
    local_actor_id  integer NOT NULL REFERENCES local_actors (id) ON DELETE CASCADE,
    file_name       text NOT NULL,
    media_type      text NOT NULL,
    width           integer NOT NULL,
    height          integer NOT NULL,
    preview_name    text,
    preview_width   integer,
    preview_height  integer,
    blurhash        text NOT NULL,
    description     text NOT NULL DEFAULT '',
    focus_x         double precision NOT NULL DEFAULT 0,
    focus_y         double precision NOT NULL DEFAULT 0,
    object_uri      text,
    position        smallint NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX media_attachments_by_object ON media_attachments (object_uri)
    WHERE object_uri IS NOT NULL;
