"""The client API's pure parts: the HTML sanitizer, composing a post, the JSON
of a status and of an account, and which notification types an app asked for."""

from __future__ import annotations

from datetime import UTC, datetime

from clientapi.common import Params
from clientapi.compose import Mentioned, mentioned_handles, render
from clientapi.notifications import wanted_types
from clientapi.sanitize import sanitize_html
from clientapi.serializers import AccountView, StatusData, status_json
from federation.store import StatusCounts, StoredObject

TAGS = "https://coop.example/tags/"


def test_sanitizer_keeps_the_safe_subset() -> None:
    # What Mastodon keeps of a remote post: inline emphasis as sent, no attributes
    assert sanitize_html("<p>Hi <b>there</b> <i>you</i> <code>x</code></p>") == (
        "<p>Hi <b>there</b> <i>you</i> <code>x</code></p>"
    )
    assert sanitize_html('<p onclick="x()" style="color:red" class="big">a</p>') == "<p>a</p>"
    assert sanitize_html("<script>alert(1)</script><style>p{}</style>ok") == "ok"
    assert sanitize_html("<svg><g><text>bad</text></g></svg>after") == "after"
    assert sanitize_html('<h1 id="t">Title</h1><div>body</div>') == "<p>Title</p><p>body</p>"
    assert sanitize_html('<img src="x" onerror="alert(1)">text<iframe src="y"></iframe>') == "text"


def test_sanitizer_links_and_escaping() -> None:
    def attrs(tag: str) -> set[str]:
        return set(tag.removeprefix("<a ").removesuffix(">").split('" ')) - {""}

    kept = sanitize_html('<a href="https://a.example/?q=1&amp;r=2" class="mention x">m</a>')
    assert kept.endswith(">m</a>")
    assert {a.rstrip('"') for a in attrs(kept[: kept.index(">") + 1])} == {
        'href="https://a.example/?q=1&amp;r=2',
        'class="mention',
        'rel="nofollow noopener noreferrer',
        'target="_blank',
    }
    for bad in ("javascript:alert(1)", " JaVaScRiPt:alert(1)", "data:text/html,x", "//evil"):
        cleaned = sanitize_html(f'<a href="{bad}">x</a>')
        assert "href" not in cleaned and cleaned.endswith(">x</a>"), cleaned
    assert sanitize_html("1 &lt; 2 &amp; <b>3 > 2</b>") == "1 &lt; 2 &amp; <b>3 &gt; 2</b>"
    # Unclosed tags are closed as a browser would, comments removed
    assert sanitize_html("<p><strong>open</p>end<!-- hidden -->") == (
        "<p><strong>open</strong></p><strong>end</strong>"
    )
    assert sanitize_html('<span class="invisible">https://</span>x') == (
        '<span class="invisible">https://</span>x'
    )


def test_compose_links_mentions_hashtags_and_urls() -> None:
    text = "Hi @Coop@127.0.0.1:8001, see https://a.example/x. #Bread!\n\n<b>&</b> @nobody"
    assert mentioned_handles(text) == ["coop@127.0.0.1:8001", "nobody"]
    found = {
        "coop@127.0.0.1:8001": Mentioned(
            uri="http://127.0.0.1:8001/users/coop",
            url="http://127.0.0.1:8001/@coop",
            username="coop",
        )
    }
    html, tags = render(text, found, tag_base=TAGS)
    assert html == (
        '<p>Hi <span class="h-card"><a href="http://127.0.0.1:8001/@coop" class="u-url mention">'
        "@<span>coop</span></a></span>, see "
        '<a href="https://a.example/x" rel="nofollow noopener noreferrer">https://a.example/x</a>. '
        '<a href="https://coop.example/tags/bread" class="mention hashtag" rel="tag">'
        "#<span>Bread</span></a>!</p><p>&lt;b&gt;&amp;&lt;/b&gt; @nobody</p>"
    )
    assert tags == ["Bread"]
    # An e-mail address is no mention; a number alone is no hashtag
    assert mentioned_handles("write to me@example.com about #42") == []
    assert render("line one\nline two", {}, tag_base=TAGS) == ("<p>line one<br>line two</p>", [])


def _account(account_id: int, acct: str) -> AccountView:
    return AccountView(
        id=account_id,
        uri=f"https://a.example/users/{acct}",
        username=acct,
        acct=f"{acct}@a.example",
        display_name=acct.title(),
        note="",
        url=f"https://a.example/@{acct}",
        avatar="https://coop.example/avatar.png",
        header="https://coop.example/header.png",
        locked=False,
        bot=False,
        group=True,
        discoverable=True,
        created_at=datetime(2024, 5, 1, 13, 30, tzinfo=UTC),
    )


def test_status_json_of_a_peers_proposal() -> None:
    body = {
        "id": "https://a.example/proposals/1",
        "type": ["Note", "Proposal"],
        "content": "<p><strong>OFFER:</strong> Bread</p><ul><li>Quantity: 40</li></ul>"
        "<script>x</script>",
        "url": [{"type": "Link", "href": "https://a.example/p/1", "mediaType": "text/html"}],
        "tag": [
            {"type": "Hashtag", "name": "#CoopOffer", "href": "https://a.example/tags/coopoffer"},
            {"type": "Mention", "href": "https://a.example/users/bob", "name": "@bob"},
        ],
        "contentMap": {"fr": "…"},
        "sensitive": False,
    }
    obj = StoredObject(
        seq=42,
        uri=body["id"],  # type: ignore[arg-type]
        local=False,
        type="Note",
        attributed_to="https://a.example/users/coop",
        in_reply_to=None,
        visibility="followers",
        body=body,
        published=datetime(2024, 6, 1, 8, 0, 0, 123456, tzinfo=UTC),
        updated=None,
        deleted_at=None,
    )
    data = StatusData(
        obj=obj,
        account=_account(7, "coop"),
        in_reply_to_id=None,
        in_reply_to_account_id=None,
        mentions=[_account(8, "bob")],
        counts=StatusCounts(replies=2, likes=3, announces=1),
        favourited=True,
    )
    status = status_json(data)
    assert {k: status[k] for k in ("id", "created_at", "visibility", "language", "url")} == {
        "id": "42",
        "created_at": "2024-06-01T08:00:00.123Z",
        "visibility": "private",
        "language": "fr",
        "url": "https://a.example/p/1",
    }
    assert status["content"] == (
        "<p><strong>OFFER:</strong> Bread</p><ul><li>Quantity: 40</li></ul>"
    )
    assert (status["replies_count"], status["favourites_count"], status["reblogs_count"]) == (
        2,
        3,
        1,
    )
    assert (status["favourited"], status["reblogged"], "pinned" in status) == (True, False, False)
    assert status["tags"] == [{"name": "coopoffer", "url": "https://a.example/tags/coopoffer"}]
    assert status["mentions"] == [
        {"id": "8", "username": "bob", "url": "https://a.example/@bob", "acct": "bob@a.example"}
    ]
    account = status["account"]
    assert (account["id"], account["acct"], account["created_at"], account["group"]) == (
        "7",
        "coop@a.example",
        "2024-05-01T00:00:00.000Z",
        True,
    )


def test_notification_types_an_app_asked_for() -> None:
    everything = ["follow", "follow_request", "mention", "favourite", "reblog", "coopfed_exchange"]
    assert wanted_types(Params({})) == everything
    assert wanted_types(Params({"types[]": ["mention", "follow"]})) == ["follow", "mention"]
    assert wanted_types(Params({"exclude_types[]": ["follow", "coopfed_exchange"]})) == [
        "follow_request",
        "mention",
        "favourite",
        "reblog",
    ]
