"""The public board's facts: whether a proposal is closed, what its card lists,
and how far a solidarity request has come.

Pure functions of a stored ``Proposal``, in the words of ``federation.display``
(the admin pages and the CLI use the same); ``actors.pages`` lays them out.
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.display import is_closed as is_closed
from federation.display import proposal_facts as facts_of
from federation.display import proposal_words, share_of
from federation.store import Proposal

KIND_TITLES = {"offer": "Offers", "need": "Needs", "solidarity": "Solidarity requests"}
KIND_LABELS = {"offer": "Offer", "need": "Need", "solidarity": "Solidarity"}

__all__ = ["KIND_LABELS", "KIND_TITLES", "Progress", "facts_of", "is_closed", "progress_of"]


@dataclass(frozen=True, slots=True)
class Progress:
    label: str
    share: int
    received: str


def progress_of(p: Proposal) -> Progress | None:
    """How much a solidarity request has been pledged and received; None for others."""
    words = proposal_words(p)
    if words["progress"] is None or words["received"] is None:
        return None
    return Progress(words["progress"], share_of(p.pledged, p.quantity), words["received"])
