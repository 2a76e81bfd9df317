"""A bovine-herd ActivityPub server that coopfed's interop tests run beside our
node on loopback (see tests/interop/bovine_peer.py, which installs bovine into
its own cached virtualenv and starts this script with that interpreter).

Everything ActivityPub here is bovine's: the herd (Quart) serves the actor and
its inbox and outbox, verifies the HTTP signatures of what reaches the inbox
(``bovine.crypto.build_validate_http_signature``), fetches keys, and delivers
what is posted to the outbox, signed (``bovine_process``).  The test drives it
through JSON endpoints under /control/ on the same port:

    GET  /control/health
    POST /control/follow  {"actor": URL}  the actor posts Follow to its own outbox,
                          signed by bovine's client (``bovine.BovineActor``)
    POST /control/fetch   {"url": URL}    a GET signed by bovine's client, and
                          bovine's own parse of the answer (``bovine.parse.Object``)
    GET  /control/received  what passed the inbox's signature check, oldest first,
                          with bovine's reading of an embedded object
    GET  /control/answers   every POST to the herd: path and status

Usage: python peer.py --port N --contexts DIR (activitystreams.jsonld,
security-v1.jsonld, did-v1.jsonld, multikey-v1.jsonld).  Prints "READY <port>"
once it serves.  No network beyond 127.0.0.1: bovine's JSON-LD loader is given
the contexts from DIR and refuses any other download.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

CONTEXT_FILES = {
    "https://www.w3.org/ns/activitystreams": "activitystreams.jsonld",
    "https://w3id.org/security/v1": "security-v1.jsonld",
    # bovine loads these two for its own actor parsing
    "https://www.w3.org/ns/did/v1": "did-v1.jsonld",
    "https://w3id.org/security/multikey/v1": "multikey-v1.jsonld",
}


def offline_contexts(directory: Path) -> None:
    """bovine's JSON-LD loader, without the network: the two contexts from files,
    any other URL refused (bovine then reads it as an empty context)."""
    import bovine.jsonld as bovine_jsonld

    for url, name in CONTEXT_FILES.items():
        document = json.loads((directory / name).read_text())
        bovine_jsonld.jsonld_cache.cache[url] = document["@context"]

    def refuse(**_: Any) -> Any:
        def loader(url: str, options: Any = None) -> Any:
            raise RuntimeError(f"offline: not fetching {url}")

        return loader

    bovine_jsonld.requests_document_loader = refuse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--contexts", type=Path, required=True)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bovine-peer-"))
    os.chdir(workdir)  # bovine keeps its JSON-LD cache in the working directory
    logging.basicConfig(level=os.environ.get("BOVINE_PEER_LOG", "WARNING"), stream=sys.stderr)
    offline_contexts(args.contexts)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    sock.close()
    origin = f"http://127.0.0.1:{port}"
    asyncio.run(serve(origin, port, workdir))


async def serve(origin: str, port: int, workdir: Path) -> None:
    import aiohttp
    from bovine import BovineActor
    from bovine.parse import Object
    from bovine_herd import BovineHerd, build_default_background_task_inbox
    from bovine_store.actor.register import endpoint_path_function_from_endpoint, register
    from bovine_store.models import BovineActor as StoredActor
    from bovine_store.models import BovineActorKeyPair
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config
    from quart import Quart, request

    app = Quart(__name__)
    received: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    me: dict[str, Any] = {}

    def reading(data: dict[str, Any]) -> dict[str, Any] | None:
        """bovine's own reading (bovine.parse.Object) of an embedded object."""
        inner = data.get("object")
        if not isinstance(inner, dict):
            return None
        try:
            parsed = Object({"@context": data.get("@context"), **inner})
            return {
                "id": parsed.identifier,
                "attributed_to": parsed.attributed_to_id,
                "type": inner.get("type"),
                "content": inner.get("content"),
                "name": inner.get("name"),
            }
        except Exception as error:  # a reading failure is a result, not a crash
            return {"error": repr(error)}

    default_inbox = build_default_background_task_inbox(app)

    async def inbox_task(item: Any, actor: Any) -> None:
        data = item.data if isinstance(item.data, dict) else {}
        inner = data.get("object")
        received.append(
            {
                "type": data.get("type"),
                "id": data.get("id"),
                "actor": data.get("actor"),
                "verified_as": item.submitter,
                "object_id": inner.get("id") if isinstance(inner, dict) else inner,
                "raw": data,
                "object": reading(data),
            }
        )
        await default_inbox(item, actor)

    BovineHerd(
        app,
        start_background_task_inbox=inbox_task,
        db_url=f"sqlite://{workdir / 'bovine.sqlite3'}",
    )

    @app.before_serving
    async def create_actor() -> None:
        stored = await register(
            "peer",
            endpoint_path_function=endpoint_path_function_from_endpoint(f"{origin}/endpoints/"),
        )
        stored = await StoredActor.get(id=stored.id).prefetch_related("endpoints", "keypairs")
        key = await BovineActorKeyPair.get(bovine_actor=stored, name="serverKey")
        actor_url = next(e.name for e in stored.endpoints if e.endpoint_type.value == "ACTOR")
        outbox = next(e.name for e in stored.endpoints if e.endpoint_type.value == "OUTBOX")
        client = BovineActor(
            actor_id=actor_url, public_key_url=f"{actor_url}#serverKey", secret=key.private_key
        )
        await client.init(session=aiohttp.ClientSession())
        me.update(actor=actor_url, outbox=outbox, client=client)

    @app.after_request
    async def record_answer(response: Any) -> Any:
        if request.method == "POST" and not request.path.startswith("/control/"):
            answers.append({"path": request.path, "status": response.status_code})
        return response

    @app.get("/control/health")
    async def health() -> Any:
        return {"ok": True, "actor": me.get("actor"), "outbox": me.get("outbox")}

    @app.get("/control/received")
    async def list_received() -> Any:
        return json.dumps(received), 200, {"content-type": "application/json"}

    @app.get("/control/answers")
    async def list_answers() -> Any:
        return json.dumps(answers), 200, {"content-type": "application/json"}

    @app.post("/control/follow")
    async def follow() -> Any:
        body = await request.get_json()
        activity = {
            "@context": "https://www.w3.org/ns/activitystreams",
            "type": "Follow",
            "actor": me["actor"],
            "object": body["actor"],
            "to": [body["actor"]],
        }
        response = await me["client"].post(me["outbox"], activity)
        return {"status": response.status, "location": response.headers.get("location")}

    @app.post("/control/fetch")
    async def fetch() -> Any:
        body = await request.get_json()
        data = await me["client"].get(body["url"])
        parsed = Object(data)
        return {
            "document": data,
            "id": parsed.identifier,
            "attributed_to": parsed.attributed_to_id,
        }

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = "-"
    shutdown = asyncio.Event()

    async def announce() -> None:
        while not me:
            await asyncio.sleep(0.05)
        print(f"READY {port}", flush=True)

    task = asyncio.create_task(announce())
    await hypercorn_serve(app, config, shutdown_trigger=shutdown.wait)  # type: ignore[arg-type]
    task.cancel()


if __name__ == "__main__":
    main()
