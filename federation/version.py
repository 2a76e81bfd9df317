"""The installed version of coopfed (read when asked, not at import)."""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version


@cache
def software_version() -> str:
    try:
        return version("coopfed")
    except PackageNotFoundError:
        return "0.0.0+unknown"
