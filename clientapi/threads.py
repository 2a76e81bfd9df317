"""The order of a thread as apps show it: each reply right under its parent.

The store finds a status's descendants in the order they were stored, which is
not the thread's order when parents arrive after their replies (a parent
fetched for a reply is stored after it).  Pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from federation.store import StoredObject

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tree_order(root: str, descendants: Sequence[StoredObject]) -> list[StoredObject]:
    """``descendants`` of ``root`` depth first, siblings oldest first; any that do
    not hang from ``root`` (should not happen) at the end, as given."""
    children: dict[str, list[StoredObject]] = {}
    for obj in descendants:
        children.setdefault(obj.in_reply_to or "", []).append(obj)
    for siblings in children.values():
        siblings.sort(key=lambda o: (o.published or EPOCH, o.seq))
    ordered: list[StoredObject] = []
    seen: set[str] = {root}
    stack = list(reversed(children.get(root, [])))
    while stack:
        obj = stack.pop()
        if obj.uri in seen:
            continue
        seen.add(obj.uri)
        ordered.append(obj)
        stack.extend(reversed(children.get(obj.uri, [])))
    return ordered + [o for o in descendants if o.uri not in seen]
