"""Public HTML pages: what a person sees when a browser opens the coop's URL.

Server-rendered from the Jinja2 templates in ``actors/templates`` (autoescaped),
no JavaScript: the profile with its board, one page per proposal, the archive
of closed ones, the network view of what followed coops publish, and tag
pages.  Proposal and post ``content`` is shown only for our own (local) ones,
whose HTML our own builders made; peers' content is never rendered here.

``templates`` builds the environment the other packages' pages use too: each
package's templates are named ``package/file.html`` and may extend
``actors/page.html``.
"""

from __future__ import annotations

from datetime import UTC, datetime

import jinja2
import markupsafe

from actors.board import KIND_LABELS, KIND_TITLES, facts_of, is_closed, progress_of
from federation.display import proposal_words, when_text
from federation.safehtml import safe_href, sanitize_html
from federation.store import LocalActor, Proposal, StoredObject
from federation.urls import Urls


def templates(*packages: str) -> jinja2.Environment:
    """The templates of ``packages`` (each its ``templates`` folder), autoescaped.

    Two filters carry the node's one link check and its sanitiser into every page:
    ``href`` (an http(s) URL, else nothing) and ``sanitized`` (stored HTML, cleaned
    again as it is shown: written safe is not enough).
    """
    environment = jinja2.Environment(
        loader=jinja2.PrefixLoader(
            {name: jinja2.PackageLoader(name, "templates") for name in {"actors", *packages}}
        ),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["href"] = lambda url: safe_href(url) or ""
    environment.filters["sanitized"] = lambda html: markupsafe.Markup(
        sanitize_html(html) if isinstance(html, str) else ""
    )
    return environment


PAGES = templates()
PAGES.globals.update(
    kind_titles=KIND_TITLES,
    kind_labels=KIND_LABELS,
    facts_of=facts_of,
    progress_of=progress_of,
)


def _when(post: StoredObject) -> str:
    return post.published.strftime("%Y-%m-%d %H:%M UTC") if post.published else post.uri


def _shown(post: StoredObject) -> bool:
    # Only our own posts are listed: their HTML comes from our own builders.
    return (
        post.local
        and post.visibility in ("public", "unlisted")
        and "Proposal" not in post.body.get("type", [])
    )


def render_profile(
    actor: LocalActor,
    urls: Urls,
    posts: list[StoredObject],
    proposals: list[Proposal],
    now: datetime,
    *,
    home: bool = False,
) -> str:
    """The coop's page; as the node's home page (``/``) it also links the admin pages."""
    handle = f"@{actor.username}@{urls.domain}"
    open_by_kind = {
        kind: [p for p in proposals if p.kind == kind and not is_closed(p, now)]
        for kind in KIND_TITLES
    }
    return PAGES.get_template("actors/profile.html").render(
        title=f"{actor.name} ({handle})",
        alternate=urls.actor(actor.username),
        actor=actor,
        actor_url=urls.actor(actor.username),
        handle=handle,
        summary=[p for p in actor.summary.split("\n\n") if p.strip()],
        open_by_kind=open_by_kind,
        now=now,
        profile_url=urls.profile_page(actor.username),
        base_url=urls.base,
        posts=[p for p in posts if _shown(p)],
        when=_when,
        home=home,
    )


def _answers(p: Proposal, handle: str) -> tuple[str, str]:
    """What a reader writes to answer ``p``: a mention, and the coopfed command."""
    amount = proposal_words(p)["amount"]
    if p.kind == "solidarity":
        said, command = "I pledge …", f"coopfed respond {p.uri} --quantity N"
    else:
        said = f"I'd like {amount or 'some'}" if p.kind == "offer" else "We can provide …"
        command = f"coopfed respond {p.uri} --quantity N --price TOTAL"
    return f"{handle} {said} {p.uri}", command


def render_proposal(
    coop: LocalActor,
    urls: Urls,
    post: StoredObject,
    proposal: Proposal | None,
    now: datetime | None = None,
) -> str:
    """One of our proposals, readable by anyone: its title once, its status, dates and
    terms, and how to answer it from a fediverse account or from another coop."""
    deleted = post.deleted_at is not None
    heading = str(post.body.get("name") or "Proposal")
    handle = f"@{coop.username}@{urls.domain}"
    context: dict[str, object] = {}
    if proposal is not None:
        moment = now or datetime.now(UTC)
        closed = is_closed(proposal, moment)
        mention, respond = _answers(proposal, handle)
        context = {
            "status": "closed" if closed else "open",
            "status_label": "Closed" if closed else "Open",
            "published": when_text(proposal.published),
            "words": proposal_words(proposal),
            "facts": [
                f
                for f in facts_of(proposal, moment)
                if f != "Closed" and not f.startswith("Deadline:")
            ],
            "paragraphs": [
                part.strip().split("\n") for part in proposal.details.split("\n\n") if part.strip()
            ],
            "mention": mention,
            "respond": respond,
        }
    return PAGES.get_template("actors/proposal.html").render(
        title="Deleted proposal" if deleted else f"{heading} · {coop.name}",
        alternate=None if deleted else post.uri,
        heading=heading,
        coop=coop,
        handle=handle,
        profile_url=urls.profile_page(coop.username),
        post=post,
        proposal=proposal,
        **context,
    )


def _listing(title: str, **context: object) -> str:
    """The archive, the network view and a tag: a heading, a line, the cards."""
    return PAGES.get_template("actors/listing.html").render(
        {"alternate": None, "intro": "", "names": None, **context}, title=title
    )


def render_archive(coop: LocalActor, urls: Urls, proposals: list[Proposal], now: datetime) -> str:
    return _listing(
        f"Archive · {coop.name}",
        heading=f"{coop.name}: archive",
        back="Back to the board",
        profile_url=urls.profile_page(coop.username),
        items=[p for p in proposals if is_closed(p, now)],
        now=now,
        empty="No closed items yet.",
    )


def render_network(
    coop: LocalActor, urls: Urls, proposals: list[Proposal], names: dict[str, str], now: datetime
) -> str:
    return _listing(
        f"Network · {coop.name}",
        heading="Our network",
        intro=f"What the coops {coop.name} follows offer and need.",
        back=f"Back to {coop.name}",
        profile_url=urls.profile_page(coop.username),
        items=[p for p in proposals if not is_closed(p, now)],
        names=names,
        now=now,
        empty="The coops we follow have nothing open right now.",
    )


def render_tag(
    coop: LocalActor, urls: Urls, tag: str, proposals: list[Proposal], now: datetime
) -> str:
    return _listing(
        f"#{tag} · {coop.name}",
        heading=f"#{tag}",
        back=coop.name,
        profile_url=urls.profile_page(coop.username),
        items=proposals,
        now=now,
        empty="Nothing with this tag.",
    )
