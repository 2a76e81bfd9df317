"""What the deploy-kit tests share: the repository's deploy folder, the tools they
need (installed from Debian when missing), the compose file and the Dockerfile read.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from federation.settings import ENV_NAMES
from tests.support.systemtools import ensure_command

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
NODE_VARS = {var for var, _ in ENV_NAMES.values()}
VAR_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


# -- helpers -------------------------------------------------------------------


def tool(name: str) -> str | None:
    """A command from this venv's bin directory (test extra) or from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which(name)


def need(name: str, how: str, *, apt: str | None = None) -> str:
    """The tool, installed from Debian's ``apt`` package when missing (CI runs as
    root); a missing tool fails the test, saying how to get it."""
    found = tool(name)
    if found is None and apt is not None:
        try:
            found = ensure_command(name, apt)
        except LookupError as exc:
            pytest.fail(f"{exc} ({how})")
    if found is None:
        pytest.fail(f"{name} is not installed ({how})")
    return found


def load_compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def env_example_vars(path: Path) -> dict[str, str]:
    """NAME -> value of every NAME=value line, commented-out examples included."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        match = VAR_LINE.match(line.strip())
        if match:
            found[match[1]] = match[2]
    return found


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text()
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    for line in logical:
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def run(
    *cmd: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
