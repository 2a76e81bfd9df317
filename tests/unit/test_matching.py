"""Matches ranked: the same resource first, shared tags next, and a pair that only
shares a tag while naming different resources only when nothing better exists."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from federation.store import Proposal
from outbox.listings import record_of
from outbox.matching import ONLY_TAGS, SAME_RESOURCE, SHARED_TAGS, assess, rank_matches
from outbox.proposals import validate_spec
from tests.support.golden import ACTOR, BASE, NOW, PEER


def proposal(name: str, kind: str, resource: str | None, *tags: str, age: int = 0) -> Proposal:
    raw = {"kind": kind, "title": name, "tags": list(tags), "resource": resource}
    spec = validate_spec({k: v for k, v in raw.items() if v is not None}, now=NOW)
    local = kind == "need"
    return record_of(
        spec,
        uri=f"{BASE if local else 'https://other.example'}/proposals/{name}",
        local=local,
        attributed_to=ACTOR if local else PEER,
        body={},
        published=NOW - timedelta(minutes=age),
        updated=None,
    )


RYE_NEED = proposal("rye-need", "need", "rye grain", "rye", "grain")
RYE_OFFER = proposal("rye-offer", "offer", "rye grain", "grain")
BREAD_OFFER = proposal("bread-offer", "offer", "bread", "rye", "bread")
SEED_OFFER = proposal("seed-offer", "offer", None, "rye")


def test_each_kind_of_fit_says_why() -> None:
    same = assess(RYE_NEED, RYE_OFFER)
    assert same is not None and same.rank == SAME_RESOURCE
    assert same.reason == "same resource: rye grain (and the tag #grain)"
    tags = assess(RYE_NEED, SEED_OFFER)
    assert tags is not None and (tags.rank, tags.reason) == (SHARED_TAGS, "shares the tag #rye")
    only = assess(RYE_NEED, BREAD_OFFER)
    assert only is not None and only.rank == ONLY_TAGS
    assert only.reason == "only shares the tag #rye: theirs is bread, ours rye grain"
    assert assess(RYE_NEED, replace(RYE_OFFER, kind="need")) is None
    assert assess(RYE_NEED, replace(BREAD_OFFER, tags=["bread"])) is None


def test_the_same_resource_comes_first_and_a_bread_offer_drops_out() -> None:
    # Given our rye-grain need, and peers offering rye grain, bread (#rye) and seed (#rye)
    pairs = [(RYE_NEED, other, other.uri) for other in (BREAD_OFFER, SEED_OFFER, RYE_OFFER)]
    ranked = rank_matches(pairs)
    # Then the rye grain comes first, the seed (a tag, no clash) next, and no bread
    assert [item for _, _, _, item in ranked] == [RYE_OFFER.uri, SEED_OFFER.uri]
    assert [fit.rank for fit, *_ in ranked] == [SAME_RESOURCE, SHARED_TAGS]


def test_a_tag_only_pair_shows_when_nothing_better_exists_and_says_so() -> None:
    ranked = rank_matches([(RYE_NEED, BREAD_OFFER, "bread"), (RYE_NEED, SEED_OFFER, "seed")])
    assert [(fit.rank, item) for fit, _, _, item in ranked] == [
        (SHARED_TAGS, "seed"),
        (ONLY_TAGS, "bread"),
    ]
    assert ranked[1][0].reason.startswith("only shares the tag #rye")


def test_a_bread_offer_that_fits_our_bread_need_is_not_also_paired_with_rye() -> None:
    # Given the bread offer fits our bread need exactly and our rye need only by #rye
    bread_need = proposal("bread-need", "need", "bread", "bread")
    ranked = rank_matches([(RYE_NEED, BREAD_OFFER, "rye"), (bread_need, BREAD_OFFER, "bread")])
    # Then it is shown once, against the bread need
    assert [item for *_, item in ranked] == ["bread"]


def test_equal_ranks_show_the_newest_first() -> None:
    older = proposal("old-rye", "offer", "rye grain", age=60)
    ranked = rank_matches([(RYE_NEED, older, "old"), (RYE_NEED, RYE_OFFER, "new")])
    assert [item for *_, item in ranked] == ["new", "old"]
