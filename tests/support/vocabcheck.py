"""Checks of marketplace JSON against the vocabulary, and an independent parser.

``vocabulary_problems`` walks an activity: its ``@context`` may name only the
ActivityStreams and security contexts by URL (everything else inline), every
key and every ``type`` value is either an ActivityStreams/ActivityPub term or
a term defined inline in that activity's own ``@context`` (and, for ``vf:`` /
``coop:`` terms, in ``federation.vocab.coop_terms()``), and every
``hasNumericalValue`` is a plain decimal string.

``independent_parse`` hands the activity to little-boxes 0.1.0 (PyPI), an
ActivityPub implementation that shares no code with coopfed.  It knows only
Create/Update/Delete/Accept/Undo/Announce/Like/Follow and the types Note,
Person, Tombstone, and it rejects a list-valued ``type``: so a proposal
(``["Note", "Proposal"]``) is parsed as a copy typed ``"Note"`` (what Mastodon
renders it as), its ``attributedTo`` copied to the ``actor`` little-boxes
wrongly requires on a Note.  ``Offer``, ``Reject``, ``Update(Agreement)`` and
``Create(Document)`` are not types little-boxes supports; those are checked
structurally (``structural_problems``) and reported as such.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from little_boxes import activitypub as lb  # type: ignore[import-untyped]

from federation.jsonld import AS_CONTEXT, SECURITY_CONTEXT
from federation.vocab import coop_terms

# ActivityStreams 2.0 / ActivityPub / security terms our marketplace JSON may use.
AS_TERMS = frozenset(
    {
        "id",
        "type",
        "actor",
        "object",
        "target",
        "result",
        "origin",
        "instrument",
        "to",
        "cc",
        "bto",
        "bcc",
        "audience",
        "attributedTo",
        "name",
        "content",
        "contentMap",
        "summary",
        "published",
        "updated",
        "url",
        "href",
        "tag",
        "attachment",
        "context",
        "inReplyTo",
        "mediaType",
        "startTime",
        "endTime",
        "sensitive",
    }
)
AS_TYPES = frozenset(
    {
        "Create",
        "Update",
        "Delete",
        "Accept",
        "Reject",
        "Undo",
        "Offer",
        "Announce",
        "Like",
        "Follow",
        "Note",
        "Document",
        "Tombstone",
        "Hashtag",
        "Mention",
    }
)
DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")
LB_TYPES = frozenset({t.value for t in lb.ActivityType})


def _inline_terms(context: Any) -> dict[str, Any]:
    terms: dict[str, Any] = {}
    for entry in context if isinstance(context, list) else [context]:
        if isinstance(entry, dict):
            terms.update(entry)
    return terms


def _walk(value: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """Every (path, key, value) of every object below ``value``."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "@context":
                continue
            yield path, key, inner
            yield from _walk(inner, f"{path}.{key}")
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _walk(inner, f"{path}[{index}]")


def _iri_of(definition: Any) -> str:
    """A term definition's IRI: the string itself, or an expanded map's ``@id``."""
    if isinstance(definition, dict):
        return str(definition.get("@id", ""))
    return str(definition)


def _types(value: Any) -> Iterable[str]:
    return [value] if isinstance(value, str) else [t for t in value if isinstance(t, str)]


def vocabulary_problems(activity: dict[str, Any]) -> list[str]:
    """Everything in ``activity`` that the vocabulary does not define (empty: valid)."""
    problems: list[str] = []
    context = activity.get("@context")
    if not isinstance(context, list) or context[:2] != [AS_CONTEXT, SECURITY_CONTEXT]:
        problems.append(f"@context must start with the AS and security URLs: {context!r}")
        return problems
    urls = [e for e in context if isinstance(e, str)]
    if urls != [AS_CONTEXT, SECURITY_CONTEXT]:
        problems.append(f"@context names other URLs: {urls!r}")
    if any(not isinstance(e, (str, dict)) for e in context):
        problems.append("@context entries must be URLs or inline maps")
    inline = _inline_terms(context)
    ours = coop_terms()
    for term, definition in inline.items():
        if term in ours and definition != ours[term]:
            problems.append(f"{term} is defined as {definition!r}, not {ours[term]!r}")
    for path, key, value in _walk(activity, "$"):
        if key not in AS_TERMS and key not in inline:
            problems.append(f"{path}.{key} is not defined")
        elif key not in AS_TERMS and _iri_of(inline[key]).startswith(("vf:", "om2:", "coop:")):
            if key not in ours:
                problems.append(f"{path}.{key} is not a term of federation.vocab")
        if key == "type":
            for name in _types(value):
                if name not in AS_TYPES and name not in inline:
                    problems.append(f"{path}.type {name} is not defined")
        if key == "hasNumericalValue" and not (isinstance(value, str) and DECIMAL.match(value)):
            problems.append(f"{path}.hasNumericalValue {value!r} is not a decimal string")
    return problems


def terms_used(activity: dict[str, Any]) -> set[str]:
    """The vf:/coop: terms (keys and types) an activity uses."""
    ours = coop_terms()
    used: set[str] = set()
    for _, key, value in _walk(activity, "$"):
        if key in ours:
            used.add(key)
        if key == "type":
            used.update(t for t in _types(value) if t in ours)
    return used


def structural_problems(activity: dict[str, Any]) -> list[str]:
    """What an ActivityPub server needs of any activity (for types little-boxes lacks)."""
    problems: list[str] = []
    for key in ("id", "actor"):
        value = activity.get(key)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            problems.append(f"{key} must be an absolute URL: {value!r}")
    if not isinstance(activity.get("type"), str):
        problems.append("an activity's type must be a single string")
    obj = activity.get("object")
    if isinstance(obj, dict):
        if "type" not in obj:
            problems.append("the embedded object has no type")
    elif not isinstance(obj, str):
        problems.append(f"object must be a URL or an object: {obj!r}")
    to = activity.get("to")
    if not isinstance(to, list) or not to or not all(isinstance(t, str) for t in to):
        problems.append(f"to must be a non-empty list of URLs: {to!r}")
    return problems


class _Actors(lb.BaseBackend):  # type: ignore[misc]
    """little-boxes validates every actor through ``fetch_iri``; offline."""

    def __init__(self, actors: Iterable[str]) -> None:
        self.actors = set(actors)

    def fetch_iri(self, iri: str) -> dict[str, Any]:
        if iri not in self.actors:
            raise ValueError(f"unknown actor {iri}")
        return {"@context": AS_CONTEXT, "id": iri, "type": "Person", "inbox": f"{iri}/inbox"}


@contextmanager
def little_boxes_backend(actors: Iterable[str]) -> Iterator[None]:
    previous = lb.BACKEND
    lb.use_backend(_Actors(actors))
    try:
        yield
    finally:
        lb.use_backend(previous)


def as_note(obj: dict[str, Any]) -> dict[str, Any]:
    """A proposal as little-boxes can read it: typed Note, with the actor it wants."""
    note = copy.deepcopy(obj)
    if isinstance(note.get("type"), list) and "Note" in note["type"]:
        note["type"] = "Note"
    if note.get("type") == "Note" and "actor" not in note:
        note["actor"] = note.get("attributedTo")
    return note


def independent_parse(activity: dict[str, Any]) -> str:
    """Parse with little-boxes where it can; returns how the activity was checked.

    Call inside ``little_boxes_backend(actors)``.  Raises (little-boxes'
    errors, or AssertionError) when the activity is not valid.
    """
    given = copy.deepcopy(activity)
    inner = given.get("object")
    if isinstance(inner, dict):
        given["object"] = as_note(inner)
        inner_type = given["object"].get("type")
    else:
        inner_type = None
    supported = given["type"] in LB_TYPES and given["type"] != "Reject"
    if supported and (inner_type is None or inner_type in LB_TYPES):
        parsed = lb.parse_activity(given)
        assert parsed.id == activity["id"]
        assert parsed.actor == activity["actor"]
        if isinstance(inner, dict):
            embedded = parsed.get_object()
            assert embedded.id == inner["id"]
            return f"little-boxes: {given['type']}({embedded.ACTIVITY_TYPE.value})"
        assert parsed.object == activity["object"]
        return f"little-boxes: {given['type']}"
    problems = structural_problems(activity)
    assert problems == [], problems
    kind = f"{activity['type']}({inner_type})" if inner_type else activity["type"]
    return f"structural: {kind}"
