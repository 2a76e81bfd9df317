"""``coopfed``: run a node and administer it from the command line.

Every setting of ``coopfed run`` is a flag and a ``COOPFED_*`` variable.  The
other commands act on the node whose data directory (``--data-dir``) or
``DATABASE_URL`` they are given: they read the identity ``coopfed run`` saved
there, attach to its database and queue work that the node's workers send.
"""

from __future__ import annotations

import argparse
import errno
import sys
import traceback
from collections.abc import Sequence

from coopfed.cli import admin, data, market, member, node
from coopfed.cli.base import (
    NODE_FLAGS,
    Command,
    StartRefused,
    add_settings,
    has_node,
    needs_a_node,
    resolve_settings,
)
from coopfed.embedded_pg import PostgresNotFound, PostgresStartError
from coopfed.logs import configure_logging
from coopfed.state_file import NodeAlreadyRunning
from federation.settings import ENV_NAMES, SettingsError

# Our own exceptions carry a sentence for the admin; others are named by their kind.
PACKAGES = ("coopfed", "federation", "actors", "inbox", "outbox", "admin", "clientapi")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coopfed",
        description="coopfed: a federated coop-to-coop network over ActivityPub. "
        "Run your coop's node, follow other coops, and let anyone on Mastodon follow yours.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, func: Command, help_text: str, *, run_flags: bool = False
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_settings(p, list(ENV_NAMES) if run_flags else NODE_FLAGS)
        p.set_defaults(func=func, for_run=run_flags)
        return p

    add(
        "init",
        node.cmd_init,
        "create the coop's identity, keys and database (run does it too)",
        run_flags=True,
    )
    add("run", node.cmd_run, "start the node: web server and background workers", run_flags=True)
    worker = add(
        "worker", node.cmd_worker, "start one more worker process against the node's database"
    )
    add_settings(worker, ["log_format"])
    add("migrate", node.cmd_migrate, "apply database migrations (run applies them at start too)")
    admin.add_commands(add)
    market.add_commands(add)
    data.add_commands(add)
    member.add_commands(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose)
    try:
        settings = resolve_settings(args, for_run=args.for_run)
        configure_logging(settings.log_format, verbose=args.verbose)
        if needs_a_node(args, settings) and not has_node(settings):
            print(
                f"coopfed: no coopfed node in {settings.data_dir}: start one there with "
                f"`coopfed run --data-dir {settings.data_dir}` (or `coopfed init`), "
                "or give the node's --data-dir or --database-url",
                file=sys.stderr,
            )
            return 2
        return int(args.func(args, settings))
    except SettingsError as exc:
        print(f"coopfed: invalid setting {exc}", file=sys.stderr)
        return 2
    except PostgresNotFound as exc:
        print(f"coopfed: {exc}", file=sys.stderr)
        return 3
    except PostgresStartError as exc:
        print(f"coopfed: PostgreSQL did not start: {exc}", file=sys.stderr)
        return 3
    except (StartRefused, NodeAlreadyRunning) as exc:
        print(f"coopfed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # anything else: one line, the traceback with -v
        return report_failure(exc, verbose=args.verbose)


def report_failure(exc: BaseException, *, verbose: bool) -> int:
    """Print one clear line for an error (and the traceback with ``-v``); exit code 1."""
    if verbose:
        traceback.print_exception(exc)
    print(f"coopfed: {describe(exc)}", file=sys.stderr)
    if not verbose:
        print("coopfed: (run with -v to see the traceback)", file=sys.stderr)
    return 1


def describe(exc: BaseException) -> str:
    """A sentence for an admin: known failures say what to do, others name their kind."""
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return "the port is in use (another node or program); choose another with --port"
    text = str(exc).strip()
    kind = type(exc).__name__
    if type(exc).__module__.split(".")[0] in PACKAGES:
        return text or kind
    return f"{kind}: {text}" if text else kind
