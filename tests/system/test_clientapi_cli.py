"""``coopfed member``: the coop admin creates members and sets their passwords,
then the member logs in from an app.  The real ``coopfed`` script runs as a
subprocess against an in-process node's database (about half a second a call)."""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from actors.local import DEFAULT_NAME
from outbox.errors import ActionError
from outbox.members import create_member
from tests.support.cli import coopfed
from tests.support.mastoflow import api, register_app
from tests.support.nodes import RunningNode


async def login(http: aiohttp.ClientSession, node: RunningNode, password: str) -> tuple[int, str]:
    app = await register_app(http, node)
    form = {
        "grant_type": "password",
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "username": "alice",
        "password": password,
    }
    async with http.post(f"{node.base_url}/oauth/token", data=form) as answer:
        return answer.status, (await answer.json()).get("access_token", "")


async def test_member_add_list_and_password(node: RunningNode, http: aiohttp.ClientSession) -> None:
    domain = node.settings.domain
    # When the admin adds alice, typing her password on standard input
    code, out, _ = await coopfed(
        node,
        "member",
        "add",
        "alice",
        "--name",
        "Alice",
        "--password-stdin",
        stdin="first pass 1\n",
    )
    # Then she exists, and can log in from an app with that password
    assert code == 0
    assert out.splitlines()[0] == f"@alice@{domain} is ready: {node.base_url}/users/alice"
    code, out, _ = await coopfed(node, "member", "list", "--json")
    [listed] = orjson.loads(out)
    assert (listed["handle"], listed["name"]) == (f"@alice@{domain}", "Alice")
    status, token = await login(http, node, "first pass 1")
    assert status == 200
    # A taken username and a short password are refused
    code, _, err = await coopfed(
        node, "member", "add", "Alice", "--password-stdin", stdin="another pass\n"
    )
    assert (code, err.strip()) == (1, "coopfed: the username Alice is taken on this node")
    with pytest.raises(ActionError, match="at least 8 characters"):
        await create_member(node.ctx, "bob", "short")
    # And the member's --name never renames the coop
    assert (await node.ctx.coop_actor()).name == DEFAULT_NAME
    # When the admin sets a new password, her old token stops working
    code, _, _ = await coopfed(
        node, "member", "password", "alice", "--password-stdin", stdin="second pass 2\n"
    )
    assert code == 0
    status, _, _ = await api(http, node, "GET", "/api/v1/accounts/verify_credentials", token)
    assert status == 401
    assert (await login(http, node, "first pass 1"))[0] == 400
    assert (await login(http, node, "second pass 2"))[0] == 200


async def test_member_suspend_unsuspend_and_remove(
    node: RunningNode, http: aiohttp.ClientSession
) -> None:
    await create_member(node.ctx, "alice", "first pass 1")
    status, token = await login(http, node, "first pass 1")
    assert status == 200
    # When the admin suspends alice, her token ends and her logins are refused
    code, out, _ = await coopfed(node, "member", "suspend", "alice")
    assert code == 0 and out.startswith("@alice is suspended")
    status, _, _ = await api(http, node, "GET", "/api/v1/accounts/verify_credentials", token)
    assert status == 401
    assert (await login(http, node, "first pass 1"))[0] == 400
    code, out, _ = await coopfed(node, "member", "list")
    assert out.rstrip().endswith("suspended")
    # Suspending again has nothing to do (exit 0)
    code, out, _ = await coopfed(node, "member", "suspend", "alice")
    assert (code, out.strip()) == (0, "@alice is already suspended: nothing to do")
    # When she is unsuspended, she logs in again; unsuspending again has nothing to do
    code, _, _ = await coopfed(node, "member", "unsuspend", "alice")
    assert code == 0
    assert (await login(http, node, "first pass 1"))[0] == 200
    code, out, _ = await coopfed(node, "member", "unsuspend", "alice")
    assert (code, out.strip()) == (0, "@alice is not suspended: nothing to do")
    # When she is removed, her actor answers 410 and she cannot log in
    code, out, _ = await coopfed(node, "member", "remove", "alice")
    assert code == 0 and "answers 410" in out
    async with http.get(f"{node.base_url}/users/alice") as answer:
        assert answer.status == 410
    assert (await login(http, node, "first pass 1"))[0] == 400
    code, out, _ = await coopfed(node, "member", "remove", "alice")
    assert (code, out.strip()) == (0, "@alice was already removed: nothing to do")
    # And an unknown member is an error (exit 1)
    code, _, err = await coopfed(node, "member", "suspend", "nobody")
    assert (code, err.strip()) == (1, "coopfed: no member @nobody on this node")
