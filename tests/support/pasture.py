"""The examples of ``fediverse-pasture-inputs`` (PyPI), as JSON.

The package (real-world variations of what Fediverse servers send, collected by
the fediverse-pasture project) is installed into its own cached virtualenv
(tests/fixtures/pasture/requirements.txt says why) and asked once per test run
for the examples of the inputs a test names.  Their URLs name the pasture's own
hosts (``http://pasture-one-actor/...``); ``localise`` moves them onto a local
fake peer, so that tests talk only to 127.0.0.1.
"""

from __future__ import annotations

import functools
import json
import subprocess
from pathlib import Path
from typing import Any

from tests.support.venvs import cached_venv

REQUIREMENTS = Path(__file__).resolve().parent.parent / "fixtures" / "pasture" / "requirements.txt"
INSTALL_TIMEOUT = 300.0
PASTURE_ACTOR = "http://pasture-one-actor/actor"
PASTURE_HOST = "http://pasture-one-actor/"
DUMP = """
import json, sys
from fediverse_pasture_inputs import available
names = sys.argv[1:]
json.dump({n: available[n].examples for n in names}, sys.stdout)
"""


@functools.cache
def examples(*names: str) -> dict[str, list[dict[str, Any]]]:
    """``{input name: its examples}`` (each a dict of properties of a Note).  Blocking."""
    python = cached_venv("pasture", REQUIREMENTS, timeout=INSTALL_TIMEOUT)
    done = subprocess.run(
        [str(python), "-c", DUMP, *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    found: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)
    return found


def localise(example: dict[str, Any], replacements: dict[str, str]) -> dict[str, Any]:
    """``example`` with every URL prefix of ``replacements`` replaced (longest first)."""
    text = json.dumps(example)
    for old in sorted(replacements, key=len, reverse=True):
        text = text.replace(old, replacements[old])
    localised: dict[str, Any] = json.loads(text)
    return localised
