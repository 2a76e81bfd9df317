"""What every ``coopfed`` command shares: the settings flags, the node it acts on,
how it asks for a password and how it prints.

A command that acts on a node opens the node's state with ``run_async`` (its
database attached or started for the command's duration) and prints JSON with
``print_json``; ``command`` turns a refused action into one line and exit 1.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from coopfed.app import open_node
from coopfed.database import database_for
from coopfed.state_file import IDENTITY_FILE, REMEMBERED, load_identity
from federation.context import NodeContext
from federation.settings import ENV_NAMES, Settings, load_settings
from outbox.errors import ActionError, InvalidInput

Command = Callable[[argparse.Namespace, Settings], int]
Action = Callable[[NodeContext, argparse.Namespace], Awaitable[int]]

FLAG_HELP: dict[str, str] = {
    "host": "address to bind (default 127.0.0.1)",
    "port": "port to listen on (default 8080)",
    "origin": "public base URL, e.g. https://coop.example (default http://HOST:PORT)",
    "data_dir": "directory for keys, the embedded database and logs (default ./data)",
    "media_dir": "directory for uploaded images (default DATA_DIR/media); shared by all "
    "web processes",
    "username": "the coop's handle: @USERNAME@domain (default coop); never changes later",
    "name": "the coop's display name",
    "summary": "a short description of the coop (plain text)",
    "avatar_url": "URL of the coop's avatar image",
    "allow_private_addresses": "allow fetches and deliveries to loopback and private "
    "networks (local development and tests only)",
    "database_url": "PostgreSQL URL; without it the node runs its own private cluster",
    "manually_approves_followers": "new followers wait for `coopfed approve`",
    "workers": "in-process worker tasks (default 1)",
    "worker_concurrency": "jobs each worker runs at once (default 32)",
    "signing_threads": "threads signing outgoing requests off the event loop (default 1; "
    "0: sign on the loop)",
    "web_processes": "web processes sharing the port with SO_REUSEPORT (default 1)",
    "worker_processes": "worker processes; with any, web processes leave all jobs to them "
    "(default 0: the web process runs the workers)",
    "worker_nice": "niceness of worker processes, 0-19: accepting requests comes first "
    "under load (default 10)",
    "worker_yield_seconds": "while the web processes are busy, worker processes wait up to "
    "this long before claiming more jobs (default 1)",
    "job_lease_seconds": "seconds a claimed job stays locked (default 60)",
    "delivery_timeout_seconds": "timeout of one delivery or fetch (default 20)",
    "max_delivery_attempts": "attempts before a delivery is given up (default 16, ~2 days)",
    "max_inbox_attempts": "attempts to process a received activity (default 8)",
    "retry_scale": "multiplies every retry delay (default 1.0)",
    "unavailable_after_days": "failing days before a host is skipped (default 7)",
    "c2s_rate": "client API requests a second per token (default 10)",
    "c2s_burst": "client API burst per token (default 60)",
    "max_pending_per_actor": "unprocessed activities one remote actor may queue (default 1000)",
    "trusted_proxies": "reverse proxies whose X-Forwarded-For is believed, as CIDRs "
    "(e.g. 127.0.0.1/32,::1/128; default none)",
    "key_fetch_rate": "key fetches an inbox may cause a second, per key host and per peer "
    "(default 1)",
    "key_fetch_burst": "burst of those key fetches (default 30)",
    "key_refetch_seconds": "seconds before a failed or cached key is fetched again (default 60)",
    "log_format": "log lines as `text` or `json` (one JSON object a line; default text)",
}
NODE_FLAGS = ("data_dir", "database_url")


def add_settings(parser: argparse.ArgumentParser, names: Sequence[str]) -> None:
    for name in names:
        var, kind = ENV_NAMES[name]
        flag = "--" + name.replace("_", "-")
        help_text = f"{FLAG_HELP.get(name, name)} [env {var}]"
        if kind is bool:
            parser.add_argument(
                flag,
                dest=name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=help_text)


def resolve_settings(args: argparse.Namespace, *, for_run: bool) -> Settings:
    """Flags over environment over what the data directory remembers over defaults.

    Other commands act on the node that runs in this data directory, so they
    take all of its saved identity; ``run`` and ``init`` take the remembered
    handle, origin and address unless a flag or a variable gives them.
    """
    flags = {name: getattr(args, name, None) for name in ENV_NAMES}
    settings = load_settings(flags)
    saved = load_identity(settings.data_dir)
    if not saved:
        return settings
    given = {k for k, v in flags.items() if v is not None}
    given |= {k for k, (var, _) in ENV_NAMES.items() if os.environ.get(var)}
    names = REMEMBERED if for_run else tuple(saved)
    remembered = {k: saved[k] for k in names if k in saved and k not in given and k in ENV_NAMES}
    return settings.with_overrides(**remembered)


def check_identity(settings: Settings) -> None:
    """Refuse a start that would give an existing coop another handle or address."""
    saved = load_identity(settings.data_dir)
    if saved.get("username") not in (None, settings.username):
        raise StartRefused(
            f"data dir {settings.data_dir} belongs to the coop @{saved['username']}; "
            f"it cannot become @{settings.username} (a coop's handle never changes: "
            "peers know it by its URL). Start without --username, or use another --data-dir"
        )
    before = Settings(
        host=saved.get("host", settings.host),
        port=int(saved.get("port", settings.port)),
        origin=saved.get("origin", settings.origin),
        username=settings.username,
    ).base_url
    if saved and before != settings.base_url:
        raise StartRefused(
            f"data dir {settings.data_dir} belongs to the coop at {before}; it cannot move "
            f"to {settings.base_url} (its actor URLs would change under its followers). "
            f"Start it at {before}, or give --origin {before} to serve it from another port"
        )


class StartRefused(Exception):
    """The node cannot start as asked; the message says why and what to do."""


def check_port_free(host: str, port: int) -> None:
    """Fail before anything is created when the address is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise StartRefused(f"cannot listen on {host}: {exc.strerror}") from exc
    for family, _, _, _, address in infos[:1]:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise StartRefused(
                    f"port {port} on {host} is in use (another node or program); "
                    "choose another with --port"
                ) from exc
            raise StartRefused(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


# Commands that create a node's data rather than act on an existing node.
CREATES_A_NODE = frozenset({"import"})


def needs_a_node(args: argparse.Namespace, settings: Settings) -> bool:
    return not args.for_run and args.command not in CREATES_A_NODE


def has_node(settings: Settings) -> bool:
    """A node lives in the data directory, or the settings name its database.

    Without this, a command given the wrong --data-dir would quietly create a
    new coop (with new keys) there instead of acting on the real one.
    """
    return bool(settings.database_url) or (settings.data_dir / IDENTITY_FILE).exists()


def run_async(
    settings: Settings, action: Callable[[Any], Awaitable[int]], *, apply_profile: bool = False
) -> int:
    """Open the node's state (attaching to its database) and run ``action`` with it."""

    async def main(dsn: str) -> int:
        async with open_node(settings, dsn, pool_size=2, apply_profile=apply_profile) as node:
            return await action(node)

    with database_for(settings) as dsn:
        return asyncio.run(main(dsn))


def read_new_password(from_stdin: bool, whose: str) -> str:
    """A new password: one line of stdin, or typed twice at the terminal.

    Without a terminal and without ``--password-stdin`` there is nobody to ask:
    refuse rather than read whatever the pipe holds.
    """
    import getpass

    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise ValueError(
            "no terminal to ask for the password: give it on standard input "
            "with --password-stdin (echo 'secret' | coopfed ... --password-stdin)"
        )
    first = getpass.getpass(f"New password for {whose}: ")
    if getpass.getpass("Repeat it: ") != first:
        raise ValueError("the two passwords differ")
    return first


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def command(action: Action) -> Command:
    """A command that runs ``action`` on the node; a refused action exits 1 saying why."""

    def run(args: argparse.Namespace, settings: Settings) -> int:
        async def with_node(node: NodeContext) -> int:
            try:
                return await action(node, args)
            except InvalidInput as exc:
                print(f"coopfed: invalid {exc.field}: {exc.message}", file=sys.stderr)
                return 1
            except ActionError as exc:
                if exc.reason in ActionError.ALREADY_DONE:
                    print(f"{exc.detail}: nothing to do")
                    return 0
                print(f"coopfed: {exc.detail}", file=sys.stderr)
                return 1

        return run_async(settings, with_node)

    return run
