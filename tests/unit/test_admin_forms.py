"""Pure parts of the admin's forms and the profile document."""

from __future__ import annotations

from datetime import UTC, datetime

from actors.local import field_value_html, image_json
from admin.forms import proposal_errors


def test_every_invalid_proposal_field_is_named() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    errors = proposal_errors(
        {
            "kind": "solidarity",
            "title": "",
            "quantity": "x",
            "currency": "euros",
            "deadline": "2020-01-01T00:00:00+00:00",
            "tags": "ok not-a-word",
        },
        now=now,
    )
    assert errors == {
        "title": "is required",
        "quantity": "must be a number",
        "currency": "must be a three-letter code such as EUR",
        "deadline": "is in the past",
        "tags": "'not-a-word' is not a single word",
    }
    # A solidarity request's own rules are named too, once the fields parse
    assert proposal_errors({"kind": "solidarity", "title": "Fund"}, now=now) == {
        "quantity": "a solidarity request needs a target above 0",
        "deadline": "a solidarity request needs a deadline",
    }
    assert proposal_errors({"kind": "offer", "title": "Bread"}, now=now) == {}


def test_profile_field_values_link_only_http_urls() -> None:
    assert field_value_html("https://bakery.example/a?b=1&c=2") == (
        '<a href="https://bakery.example/a?b=1&amp;c=2" rel="me nofollow noopener" '
        'target="_blank">bakery.example/a?b=1&amp;c=2</a>'
    )
    assert field_value_html("javascript:alert(1)") == "javascript:alert(1)"
    assert field_value_html("<b>Mill Lane</b>") == "&lt;b&gt;Mill Lane&lt;/b&gt;"


def test_image_json_names_the_media_type_it_knows() -> None:
    assert image_json("https://x.example/media/ab.png") == {
        "type": "Image",
        "url": "https://x.example/media/ab.png",
        "mediaType": "image/png",
    }
    assert image_json("https://x.example/avatar") == {
        "type": "Image",
        "url": "https://x.example/avatar",
    }
