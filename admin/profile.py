"""``/admin/profile``: the coop's name, summary, profile fields, avatar and header.

The form is multipart (``admin.uploads`` reads it with its size caps).  Every
field is checked and every problem named at once; an image goes through
``federation.images.process_image`` (type, bytes and pixels checked, metadata
dropped, cropped to Mastodon's sizes) before anything is stored.  Only a form
without errors stores its images (``node.media``), the profile, and then sends
one ``Update`` of the actor to the followers (``outbox.publish.update_profile``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from admin.auth import ADMIN, FILES, FORM, Admin, html_page, see_other
from admin.forms import check_length, collect
from admin.pages import Forms, render
from federation.context import NODE, NodeContext
from federation.images import AVATAR, HEADER, ImageRejected, ImageRules, process_image
from federation.safehtml import safe_href
from federation.store import LocalActor
from outbox.errors import InvalidInput
from outbox.publish import update_profile

FORM_ID = "profile"
MAX_NAME = 100
MAX_SUMMARY = 2000
MAX_FIELDS = 4  # as Mastodon
MAX_FIELD_TEXT = 255  # as Mastodon
IMAGES: dict[str, tuple[str, ImageRules]] = {
    "avatar": ("avatar_url", AVATAR),
    "header": ("header_url", HEADER),
}
DONE = {
    "saved": "Saved. The followers get the new profile.",
    "unchanged": "Nothing changed.",
}


def current_values(actor: LocalActor) -> dict[str, str]:
    values = {"name": actor.name, "summary": actor.summary}
    for i, item in enumerate((actor.fields or [])[:MAX_FIELDS]):
        values[f"field-{i}-name"] = item["name"]
        values[f"field-{i}-value"] = item["value"]
    return values


def profile_page(actor: LocalActor, forms: Forms, *, flash: str = "", error: str = "") -> str:
    return render(
        "profile",
        "Profile",
        actor=actor,
        forms=forms,
        current=current_values(actor),
        field_count=MAX_FIELDS,
        field_names=tuple(f"field-{i}-{p}" for i in range(MAX_FIELDS) for p in ("name", "value")),
        avatar=safe_href(actor.avatar_url),
        header=safe_href(actor.header_url),
        flash=flash,
        error=error,
    )


def read_fields(form: Mapping[str, str]) -> tuple[list[dict[str, str]], dict[str, str]]:
    """The profile fields of the form (empty rows dropped) and their errors."""
    items: list[dict[str, str]] = []
    errors: dict[str, str] = {}
    for i in range(MAX_FIELDS):
        name = form.get(f"field-{i}-name", "").strip()
        value = form.get(f"field-{i}-value", "").strip()
        for key, text in ((f"field-{i}-name", name), (f"field-{i}-value", value)):
            try:
                check_length(key, text, MAX_FIELD_TEXT)
            except InvalidInput as exc:
                errors[key] = exc.message
        if value and not name:
            errors.setdefault(f"field-{i}-name", "is required when the field has a value")
        if name or value:
            items.append({"name": name, "value": value})
    return items, errors


async def handle_profile(request: web.Request) -> web.Response:
    admin = request[ADMIN]
    flash = DONE.get(request.query.get("done", ""), "")
    return html_page(profile_page(admin.actor, Forms(csrf=admin.session.csrf), flash=flash))


async def _checked_images(request: web.Request) -> tuple[dict[str, Any], dict[str, str]]:
    """The processed uploads by input name, and the errors of those refused."""
    processed: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, (_, rules) in IMAGES.items():
        upload = request[FILES].get(name)
        if upload is None:
            continue
        if upload.too_large:
            errors[name] = f"images may be at most {rules.max_bytes // (1024 * 1024)} MB"
            continue
        try:
            processed[name] = await asyncio.to_thread(process_image, upload.data, rules)
        except ImageRejected as exc:
            errors[name] = str(exc)
    return processed, errors


async def do_save_profile(request: web.Request) -> web.Response:
    node: NodeContext = request.config_dict[NODE]
    admin: Admin = request[ADMIN]
    form = request[FORM]
    name, summary = form.get("name", "").strip(), form.get("summary", "").strip()
    errors = collect(
        lambda: check_length("name", name, MAX_NAME, required=True),
        lambda: check_length("summary", summary, MAX_SUMMARY),
    )
    fields, field_errors = read_fields(form)
    errors.update(field_errors)
    images, image_errors = await _checked_images(request)
    errors.update(image_errors)
    if errors:
        forms = Forms(csrf=admin.session.csrf)
        forms.fail(FORM_ID, errors, form)
        names = ", ".join(errors)
        text = f"Not saved: {len(errors)} field(s) need a change ({names}). Nothing was stored."
        return html_page(profile_page(admin.actor, forms, error=text), 422)
    changes: dict[str, Any] = {}
    for input_name, (column, _) in IMAGES.items():
        if input_name in images:
            saved = await asyncio.to_thread(node.media.save, images[input_name].image)
            changes[column] = node.urls.media(saved)
        elif form.get(f"remove-{input_name}") == "yes":
            changes[column] = ""
    wanted: dict[str, Any] = {"name": name, "summary": summary, "fields": fields, **changes}
    actor = admin.actor
    stored: dict[str, Any] = {
        "name": actor.name,
        "summary": actor.summary,
        "fields": actor.fields or [],
        "avatar_url": actor.avatar_url,
        "header_url": actor.header_url,
    }
    changed = {k: v for k, v in wanted.items() if stored[k] != v}
    if not changed:
        raise see_other("/admin/profile?done=unchanged")
    actor = await node.store.update_local_profile(actor.id, **changed)
    await update_profile(node, actor)
    raise see_other("/admin/profile?done=saved")


def setup(app: web.Application) -> None:
    app.router.add_get("/profile", handle_profile)
    app.router.add_post("/profile", do_save_profile)
