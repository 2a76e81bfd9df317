"""What a post says, read as Mastodon reads it: language, content warning, hashtags,
attachments.  Pure functions, fed what other servers send."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from clientapi import compose, hashtags
from clientapi.sanitize import attachments
from clientapi.sanitize import hashtags as tags_of
from federation.languages import LANGUAGE_KEY, keep_languages, recorded_language

# -- language -----------------------------------------------------------------------


def test_the_first_language_as_sent_is_kept_through_reordering() -> None:
    sent = b'{"type":"Create","object":{"contentMap":{"en":"English","de":"Deutsch"}}}'
    kept = keep_languages(orjson.loads(sent))
    assert kept["object"][LANGUAGE_KEY] == "en"
    # jsonb gives the keys back shortest first, then bytewise: de before en
    stored = kept["object"] | {"contentMap": {"de": "Deutsch", "en": "English"}}
    assert recorded_language(stored) == "en"


def test_a_senders_own_language_key_is_replaced() -> None:
    sent = {"object": {"contentMap": {"fr": "Bonjour"}, LANGUAGE_KEY: "xx-forged"}}
    assert keep_languages(sent)["object"][LANGUAGE_KEY] == "fr"
    bad = {"object": {"contentMap": {"<b>": "x"}, LANGUAGE_KEY: "en"}}
    assert LANGUAGE_KEY not in keep_languages(bad)["object"]
    assert recorded_language({"content": "no map"}) is None


# -- hashtags -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["test", "nohash", "Café", "foo·bar", "a_b", "日本語", "x", "2025vote", "_x"]
)
def test_hashtag_names_mastodon_accepts(name: str) -> None:
    assert hashtags.valid_name(name)


@pytest.mark.parametrize(
    "name", ["", "123", "with-dash_under", "with white space", "foo·", "·foo", "a(b)", "#x"]
)
def test_hashtag_names_mastodon_refuses(name: str) -> None:
    assert not hashtags.valid_name(name)


def test_posted_hashtags_follow_the_name_rules() -> None:
    html, found = compose.render(
        "#foo·bar and #123 and #Apples #apples", {}, tag_base="https://a.example/tags/"
    )
    assert found == ["foo·bar", "Apples"]  # digits only is no tag; case-insensitive, once
    assert 'href="https://a.example/tags/foo·bar"' in html
    assert "#123" in html and "tags/123" not in html


def test_received_hashtags_with_bad_names_are_dropped() -> None:
    body = {
        "tag": [
            {"type": "Hashtag", "name": "#Test", "href": "https://b.example/tags/test"},
            {"type": "Hashtag", "name": "nohash"},
            {"type": "Hashtag", "name": "#with white space"},
            {"type": "Hashtag", "name": "#with(subtag)"},
        ]
    }
    assert [t["name"] for t in tags_of(body)] == ["test", "nohash"]


# -- attachments --------------------------------------------------------------------


def one(item: dict[str, Any]) -> dict[str, Any]:
    (found,) = attachments(7, {"attachment": [item]})
    return found


@pytest.mark.parametrize(
    ("item", "kind"),
    [
        ({"type": "Document", "url": "https://b.example/1.png"}, "image"),
        ({"type": "Image", "url": "https://b.example/2.JPG?size=large"}, "image"),
        ({"url": "https://b.example/3.webp"}, "image"),
        ({"type": "Image", "url": {"type": "Link", "href": "https://b.example/4"}}, "unknown"),
        (
            {"type": "Image", "url": [{"href": "https://b.example/5", "mediaType": "image/png"}]},
            "image",
        ),
        ({"type": "Image", "url": "https://b.example/logo.svg"}, "unknown"),
        ({"type": "Document", "url": "https://b.example/moo.mp3"}, "audio"),
        ({"type": "Document", "mediaType": "video/mp4", "url": "https://b.example/v"}, "video"),
        ({"type": "Document", "url": "https://b.example/sample.txt"}, "unknown"),
    ],
)
def test_attachments_are_typed_by_media_type_then_extension(
    item: dict[str, Any], kind: str
) -> None:
    assert one(item)["type"] == kind


def test_an_attachment_is_described_by_its_name_then_its_summary() -> None:
    url = "https://b.example/1.png"
    assert one({"url": url, "name": "name", "summary": "summary"})["description"] == "name"
    assert one({"url": url, "summary": "summary"})["description"] == "summary"
    assert one({"url": url, "name": "  "})["description"] is None


def test_links_and_unsafe_urls_are_not_media() -> None:
    body = {
        "attachment": [
            {"type": "Link", "href": "https://funfedi.dev"},
            {"type": "Document", "url": "javascript:alert(1)//x.png"},
            {"type": "Image", "url": "data:image/png;base64,AAAA"},
        ]
    }
    assert attachments(1, body) == []


def test_size_and_focal_point_are_meta() -> None:
    found = one(
        {"url": "https://b.example/1.png", "width": 300, "height": 200, "focalPoint": [0.5, -1]}
    )
    assert found["meta"] == {
        "original": {"width": 300, "height": 200, "size": "300x200", "aspect": 1.5},
        "focus": {"x": 0.5, "y": -1.0},
    }
