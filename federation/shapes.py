"""One boundary for the shapes of incoming JSON.

ActivityStreams lets a sender write most values in several shapes, and JSON-LD
compaction picks the shape per value: one value or an array (``"tag": {...}``
for a single tag, as Fedify writes it), an IRI or an embedded object
(``"inReplyTo": {"id": ...}``), a ``Link`` or a bare IRI, ``@id``/``@type``
for ``id``/``type``, a typed literal (``{"@value": "10", "type": "xsd:decimal"}``)
for a plain one, and a term the sender's context does not define comes as its
full IRI (Fedify compacts a ``Proposal`` inside a ``Create`` with the Create's
context, so ``purpose`` arrives as ``https://w3id.org/valueflows/ont/vf#purpose``).

``normalise`` turns any of these into the one shape the handlers and the SQL
read: the terms of the vocabularies we know under their compact keys, the
properties that may hold many values as arrays, references to other objects as
IRIs.  Everything incoming (inbox activities, fetched objects, actor documents,
outbox pages) goes through it before it is read or stored.  It is pure and
bounded: depth and size are already limited where the JSON was parsed.
"""

from __future__ import annotations

from typing import Any

from federation.jsonld import AS_CONTEXT
from federation.vocab import COOP_NAMESPACE, OM2_NAMESPACE, VF_NAMESPACE

# Namespaces whose terms we read by their compact names.
KNOWN_NAMESPACES = (
    AS_CONTEXT + "#",
    VF_NAMESPACE,
    OM2_NAMESPACE,
    COOP_NAMESPACE,
    "http://joinmastodon.org/ns#",
    "https://w3id.org/security#",
)
PREFIXES = {"as": AS_CONTEXT + "#", "vf": VF_NAMESPACE, "om2": OM2_NAMESPACE}

# Properties that may hold one value or many: always arrays once normalised.
MANY = frozenset(
    {"to", "cc", "bto", "bcc", "audience", "tag", "attachment", "items", "orderedItems"}
)
# Addressing: arrays of IRIs (an embedded actor or collection is named by its id).
ADDRESSING = frozenset({"to", "cc", "bto", "bcc", "audience"})
# References to one other object: an IRI (an embedded object is named by its id).
REFERENCES = frozenset(
    {"inReplyTo", "resourceConformsTo", "satisfies", "fulfills", "provider", "receiver"}
)
MAX_DEPTH = 32


def _prefixes(context: Any) -> dict[str, str]:
    """Prefixes that a document's own inline ``@context`` maps to namespaces."""
    found: dict[str, str] = {}
    entries = context if isinstance(context, list) else [context]
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        for key, value in entry.items():
            if isinstance(value, str) and value.endswith(("#", "/")) and ":" not in key:
                found[key] = value
    return found


def _expand(name: str, prefixes: dict[str, str]) -> str:
    prefix, sep, rest = name.partition(":")
    if sep and not rest.startswith("//") and prefix in prefixes:
        return prefixes[prefix] + rest
    return name


def compact_name(name: str, prefixes: dict[str, str] | None = None) -> str:
    """A key or type name: a known namespace's full (or prefixed) IRI becomes the
    compact term (``vf:purpose`` and ``https://w3id.org/valueflows/ont/vf#purpose``
    are ``purpose``); JSON-LD keywords ``@id``/``@type`` are ``id``/``type``."""
    if name in ("@id", "@type"):
        return name[1:]
    full = _expand(name, prefixes or PREFIXES)
    for namespace in KNOWN_NAMESPACES:
        if full.startswith(namespace) and len(full) > len(namespace):
            return full[len(namespace) :]
    return name


def as_iri(value: Any) -> Any:
    """An IRI for a reference: a string stays, an object (or Link) gives its id or href;
    anything else is returned as it is, for the reader to refuse."""
    if isinstance(value, dict):
        for key in ("id", "href"):
            if isinstance(value.get(key), str):
                return value[key]
    if isinstance(value, list) and len(value) == 1:
        return as_iri(value[0])
    return value


def _value(value: Any, prefixes: dict[str, str], depth: int) -> Any:
    if depth > MAX_DEPTH:
        return value
    if isinstance(value, list):
        return [_value(v, prefixes, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    if "@value" in value and not isinstance(value["@value"], (dict, list)):
        return value["@value"]  # a typed literal: {"@value": "10", "type": "xsd:decimal"}
    return _object(value, prefixes, depth + 1)


def _object(document: dict[str, Any], prefixes: dict[str, str], depth: int) -> dict[str, Any]:
    if "@context" in document:
        prefixes = prefixes | _prefixes(document["@context"])
    out: dict[str, Any] = {}
    renamed: dict[str, Any] = {}
    for key, value in document.items():
        if key == "@context":
            out[key] = value
            continue
        name = compact_name(key, prefixes)
        target = out if name == key else renamed
        target[name] = _value(value, prefixes, depth)
    for name, value in renamed.items():
        out.setdefault(name, value)  # a compact key the sender also wrote wins
    kind = out.get("type")
    if isinstance(kind, str):
        out["type"] = compact_name(kind, prefixes)
    elif isinstance(kind, list):
        out["type"] = [compact_name(t, prefixes) if isinstance(t, str) else t for t in kind]
    for name in MANY & out.keys():
        value = out[name]
        items = [] if value is None else value if isinstance(value, list) else [value]
        out[name] = [as_iri(v) for v in items] if name in ADDRESSING else items
    for name in REFERENCES & out.keys():
        out[name] = as_iri(out[name])
    return out


def normalise(document: Any) -> Any:
    """The one shape of an incoming document (see the module's docstring); a value
    that is not an object is returned as it is."""
    if not isinstance(document, dict):
        return document
    return _object(document, PREFIXES, 0)
