"""Public HTML pages: what a person sees when a browser opens the coop's URL."""

from __future__ import annotations

import html

from federation.safehtml import sanitize_html
from federation.store import LocalActor, StoredObject
from federation.urls import Urls

STYLE = """
body{font-family:system-ui,sans-serif;max-width:42rem;margin:0 auto;padding:1rem;
line-height:1.5;color:#1d1d1f;background:#fafaf7}
header{border-bottom:2px solid #2f6f4f;margin-bottom:1rem}
h1{margin:.2rem 0;color:#2f6f4f}.handle{color:#555;font-family:monospace}
.post{background:#fff;border:1px solid #ddd;border-radius:.5rem;padding:.8rem;margin:.8rem 0}
.hint{background:#eef6f1;border-radius:.5rem;padding:.8rem}
.kind{font-size:.8rem;text-transform:uppercase;background:#2f6f4f;color:#fff;
border-radius:.3rem;padding:.1rem .4rem}.card h3{margin:.2rem 0}
progress{width:100%;height:1rem;accent-color:#2f6f4f}.tags{color:#2f6f4f}
nav{margin:1rem 0}a{color:#1f5f3f}
footer{margin-top:2rem;font-size:.9rem;color:#555}
"""


def render_page(title: str, body: str, *, alternate: str | None = None) -> str:
    link = (
        f'<link rel="alternate" type="application/activity+json" href="{html.escape(alternate)}">'
        if alternate
        else ""
    )
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title>{link}<style>{STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def render_profile(
    actor: LocalActor, urls: Urls, posts: list[StoredObject], board: str = ""
) -> str:
    handle = f"@{actor.username}@{urls.domain}"
    actor_url = urls.actor(actor.username)
    summary = "".join(f"<p>{html.escape(p)}</p>" for p in actor.summary.split("\n\n") if p.strip())
    items = (
        "".join(
            f'<article class="post">{_content(p) if _is_trusted(p) else ""}'
            f'<p><a href="{html.escape(p.uri)}">{html.escape(_when(p))}</a></p></article>'
            for p in posts
            if p.visibility in ("public", "unlisted") and "Proposal" not in p.body.get("type", [])
        )
        or "<p>Nothing published yet.</p>"
    )
    body = (
        f"<header><h1>{html.escape(actor.name)}</h1>"
        f'<p class="handle">{html.escape(handle)}</p></header>'
        f"<main>{summary}"
        '<section class="hint"><h2>Follow this coop</h2>'
        "<p>From Mastodon, GoToSocial, Pleroma, Misskey or any fediverse server, search for "
        f'<strong class="handle">{html.escape(handle)}</strong> and press Follow.</p></section>'
        f"{board}<h2>Posts</h2>{items}</main>"
        f'<footer><a href="{html.escape(actor_url)}" type="application/activity+json">'
        "ActivityPub JSON</a> · powered by coopfed</footer>"
    )
    return render_page(f"{actor.name} ({handle})", body, alternate=actor_url)


def _is_trusted(post: StoredObject) -> bool:
    # Only our own posts are shown here; their HTML is built by our own builders.
    return post.local


def _content(post: StoredObject) -> str:
    """A post's stored HTML, sanitised again now: written safe is not enough."""
    content = post.body.get("content")
    return sanitize_html(content) if isinstance(content, str) else ""


def _when(post: StoredObject) -> str:
    return post.published.strftime("%Y-%m-%d %H:%M UTC") if post.published else post.uri


def render_proposal(coop: LocalActor, urls: Urls, post: StoredObject, extra: str = "") -> str:
    """One proposal, readable by anyone, with the handle to follow the coop."""
    handle = f"@{coop.username}@{urls.domain}"
    if post.deleted_at is not None:
        body = "<main><p>This proposal was deleted.</p></main>"
        return render_page("Deleted proposal", body)
    title = str(post.body.get("name") or "Proposal")
    content = _content(post)
    body = (
        f'<header><h1>{html.escape(title)}</h1><p class="handle">'
        f'<a href="{html.escape(urls.profile_page(coop.username))}">'
        f"{html.escape(coop.name)}</a> · {html.escape(handle)}</p></header>"
        f'<main><article class="post">{content}{extra}</article>'
        '<section class="hint"><h2>Follow this coop</h2><p>From your own fediverse server, '
        f'search for <strong class="handle">{html.escape(handle)}</strong>.</p></section></main>'
        f'<footer><a href="{html.escape(post.uri)}" type="application/activity+json">'
        "ActivityPub JSON</a></footer>"
    )
    return render_page(f"{title} · {coop.name}", body, alternate=post.uri)
