"""``<data dir>/node.json``: the identity ``coopfed run`` uses, for the other commands.

``coopfed follow`` in another terminal must build the same URLs as the node
that runs in that data directory, so ``run`` (and ``init``) save the settings
that make up the node's identity and address.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from federation.settings import Settings

IDENTITY_FILE = "node.json"
SAVED = ("host", "port", "origin", "username", "allow_private_addresses")


def save_identity(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    data = {name: getattr(settings, name) for name in SAVED}
    path = settings.data_dir / IDENTITY_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    os.replace(tmp, path)


def load_identity(data_dir: Path) -> dict[str, Any]:
    try:
        data = orjson.loads((data_dir / IDENTITY_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return {k: v for k, v in data.items() if k in SAVED} if isinstance(data, dict) else {}
