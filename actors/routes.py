"""HTTP routes of ``actors``: actor documents, collections, discovery, pages."""

from __future__ import annotations

from aiohttp import web

from actors import collections, nodeinfo, pages, webfinger
from actors.local import build_actor, build_tombstone
from federation.context import NODE
from federation.display import coop_label
from federation.errors import ApiError, json_response
from federation.jsonld import AP_CONTENT_TYPE, build_context
from federation.mediafiles import CACHE_CONTROL
from federation.store import LocalActor
from federation.urls import INSTANCE_ACTOR_USERNAME
from federation.vocab import KIND_TAGS, namespace_document, proposal_context

HTML_TYPES = ("text/html", "application/xhtml+xml")
AP_TYPES = ("application/activity+json", "application/ld+json", "application/json")


def wants_html(request: web.Request) -> bool:
    """Content negotiation: a browser asks for HTML before any JSON type."""
    accept = request.headers.get("Accept", "").lower()
    if not accept:
        return False
    best_html = min((accept.find(t) for t in HTML_TYPES if t in accept), default=-1)
    best_json = min((accept.find(t) for t in AP_TYPES if t in accept), default=-1)
    if best_html < 0:
        return False
    return best_json < 0 or best_html < best_json


def activity_json(data: object, *, status: int = 200) -> web.Response:
    response = json_response(data, status=status, content_type=AP_CONTENT_TYPE)
    response.headers["Vary"] = "Accept"
    return response


async def _actor_or_404(request: web.Request, *, deleted: bool = False) -> LocalActor:
    """The local actor the path names; 404, or 410 once deleted (unless ``deleted``)."""
    node = request.app[NODE]
    username = request.match_info["username"]
    actor = await node.store.get_local_actor(username)
    if actor is None or actor.kind == "instance":
        raise ApiError(404, "no such actor", reason="not_found")
    if actor.deleted_at is not None and not deleted:
        raise ApiError(410, "this actor was deleted", reason="gone")
    return actor


async def handle_actor(request: web.Request) -> web.StreamResponse:
    actor = await _actor_or_404(request, deleted=True)
    node = request.app[NODE]
    if actor.deleted_at is not None:
        return activity_json(build_tombstone(actor, node.urls), status=410)
    if wants_html(request):
        raise web.HTTPFound(node.urls.profile_page(actor.username))
    return activity_json(build_actor(actor, node.urls))


async def handle_instance_actor(request: web.Request) -> web.Response:
    node = request.app[NODE]
    actor = await node.store.get_local_actor(INSTANCE_ACTOR_USERNAME)
    if actor is None:
        raise ApiError(404, "no instance actor", reason="not_found")
    return activity_json(build_actor(actor, node.urls))


async def handle_instance_outbox(request: web.Request) -> web.Response:
    """The instance actor publishes nothing; its outbox exists and is empty (as Mastodon's)."""
    node = request.app[NODE]
    return activity_json(
        collections.build_collection(f"{node.urls.instance_actor}/outbox", 0, first=None)
    )


async def handle_profile_page(request: web.Request) -> web.StreamResponse:
    actor = await _actor_or_404(request)
    node = request.app[NODE]
    if not wants_html(request) and request.headers.get("Accept"):
        return activity_json(build_actor(actor, node.urls))
    return await _profile_response(request, actor)


async def handle_home(request: web.Request) -> web.StreamResponse:
    """``/``: the coop's public page for people; ActivityPub clients get 404 as before."""
    node = request.app[NODE]
    accept = request.headers.get("Accept", "")
    if not wants_html(request) and any(t in accept.lower() for t in AP_TYPES):
        raise ApiError(404, "not found", reason="not_found")
    coop = await node.coop_actor()
    if coop.deleted_at is not None:
        raise ApiError(410, "this coop was deleted", reason="gone")
    return await _profile_response(request, coop, home=True)


async def _profile_response(
    request: web.Request, actor: LocalActor, *, home: bool = False
) -> web.Response:
    node = request.app[NODE]
    actor_url = node.urls.actor(actor.username)
    posts = await node.store.list_objects_by(actor_url, limit=20)
    proposals = await node.store.search_proposals(coop=actor_url, now=node.clock(), limit=200)
    return web.Response(
        text=pages.render_profile(actor, node.urls, posts, proposals, node.clock(), home=home),
        content_type="text/html",
        headers={"Vary": "Accept"},
    )


async def handle_followers(request: web.Request) -> web.Response:
    actor = await _actor_or_404(request)
    page = collections.parse_page_number(request.query.get("page"))
    return activity_json(
        await collections.follow_collection(request.app[NODE], actor, "inbound", page)
    )


async def handle_following(request: web.Request) -> web.Response:
    actor = await _actor_or_404(request)
    page = collections.parse_page_number(request.query.get("page"))
    return activity_json(
        await collections.follow_collection(request.app[NODE], actor, "outbound", page)
    )


async def handle_outbox(request: web.Request) -> web.Response:
    actor = await _actor_or_404(request)
    return activity_json(await collections.outbox_collection(request.app[NODE], actor, request))


async def handle_activity(request: web.Request) -> web.Response:
    node = request.app[NODE]
    activity_id = node.urls.activity(request.match_info["token"])
    stored = await node.store.get_outbox_activity(activity_id)
    if stored is None or not stored["listed"]:
        raise ApiError(404, "no such activity", reason="not_found")
    return activity_json(stored["body"])


async def handle_object(request: web.Request) -> web.Response:
    node = request.app[NODE]
    uri = node.urls.object(request.match_info["token"])
    stored = await node.store.get_object(uri)
    if stored is None or not stored.local or stored.visibility not in ("public", "unlisted"):
        raise ApiError(404, "no such object", reason="not_found")
    if stored.deleted_at is not None:
        return activity_json({"@context": build_context(), **stored.body}, status=410)
    # Stored bodies are embedded objects (no @context); a fetched document needs one,
    # or Mastodon (supported_context?), GoToSocial and Fedify drop it.
    return activity_json({"@context": build_context(), **stored.body})


async def handle_proposal(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    uri = node.urls.proposal(request.match_info["token"])
    stored = await node.store.get_object(uri)
    if stored is None or not stored.local:
        raise ApiError(404, "no such proposal", reason="not_found")
    if wants_html(request):
        coop = await node.coop_actor()
        proposal = await node.store.get_proposal(uri)
        return web.Response(
            text=pages.render_proposal(coop, node.urls, stored, proposal, node.clock()),
            content_type="text/html",
            headers={"Vary": "Accept"},
        )
    if stored.deleted_at is not None:
        return activity_json({"@context": build_context(), **stored.body}, status=410)
    return activity_json({"@context": proposal_context(), **stored.body})


async def handle_archive(request: web.Request) -> web.Response:
    actor = await _actor_or_404(request)
    node = request.app[NODE]
    proposals = await node.store.search_proposals(
        coop=node.urls.actor(actor.username), now=node.clock(), limit=500
    )
    return web.Response(
        text=pages.render_archive(actor, node.urls, proposals, node.clock()),
        content_type="text/html",
    )


async def handle_network(request: web.Request) -> web.Response:
    node = request.app[NODE]
    coop = await node.coop_actor()
    proposals = await node.store.search_proposals(
        local=False, status="open", now=node.clock(), limit=300
    )
    names: dict[str, str] = {}
    for uri in {p.attributed_to for p in proposals}:
        remote = await node.store.get_remote_actor(uri)
        names[uri] = (
            coop_label(uri, remote.name, remote.handle if remote.username else None)
            if remote
            else coop_label(uri)
        )
    return web.Response(
        text=pages.render_network(coop, node.urls, proposals, names, node.clock()),
        content_type="text/html",
    )


async def handle_tag(request: web.Request) -> web.Response:
    node = request.app[NODE]
    coop = await node.coop_actor()
    tag = request.match_info["tag"].lower()[:40]
    kinds = {t.lower(): k for k, t in KIND_TAGS.items()}
    proposals = await node.store.search_proposals(
        coop=node.urls.actor(coop.username),
        tag=None if tag in kinds else tag,
        kind=kinds.get(tag),
        now=node.clock(),
        limit=200,
    )
    return web.Response(
        text=pages.render_tag(coop, node.urls, tag, proposals, node.clock()),
        content_type="text/html",
    )


async def handle_namespace(request: web.Request) -> web.Response:
    """The JSON-LD context document of coopfed's extension terms."""
    return json_response(namespace_document(), content_type="application/ld+json")


async def handle_media(request: web.Request) -> web.FileResponse:
    """An uploaded image, by its content-addressed name: cached for good."""
    media = request.app[NODE].media
    name = request.match_info["name"]
    path = media.path_of(name)
    if path is None:
        raise ApiError(404, "no such file", reason="not_found")
    response = web.FileResponse(
        path,
        headers={
            "Content-Type": media.media_type(name),
            "Cache-Control": CACHE_CONTROL,
            # An image, never a document: nothing in it may run.
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
    return response


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", handle_home)
    app.router.add_get("/.well-known/webfinger", webfinger.handle_webfinger)
    app.router.add_get("/.well-known/host-meta", webfinger.handle_host_meta)
    app.router.add_get("/.well-known/host-meta.json", webfinger.handle_host_meta)
    app.router.add_get("/.well-known/nodeinfo", nodeinfo.handle_nodeinfo_links)
    app.router.add_get("/nodeinfo/{version}", nodeinfo.handle_nodeinfo)
    app.router.add_get("/actor", handle_instance_actor)
    app.router.add_get("/actor/outbox", handle_instance_outbox)
    app.router.add_get("/users/{username}", handle_actor)
    app.router.add_get("/users/{username}/followers", handle_followers)
    app.router.add_get("/users/{username}/following", handle_following)
    app.router.add_get("/users/{username}/outbox", handle_outbox)
    app.router.add_get("/@{username}", handle_profile_page)
    app.router.add_get("/activities/{token}", handle_activity)
    app.router.add_get("/objects/{token}", handle_object)
    app.router.add_get("/proposals/{token}", handle_proposal)
    app.router.add_get("/@{username}/archive", handle_archive)
    app.router.add_get("/network", handle_network)
    app.router.add_get("/tags/{tag}", handle_tag)
    app.router.add_get("/ns", handle_namespace)
    app.router.add_get("/media/{name}", handle_media)
