"""Debian packages the tests need (chromium, nginx, caddy, …), installed on demand.

CI runs as root on a fresh Debian machine: a missing tool is installed once with
apt-get, and a test that still cannot find it fails saying how to install it.
A check that silently skips proves nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

INSTALL_TIMEOUT = 300
LOG_DIR = Path("/var/tmp")


def apt_install(package: str) -> str:
    """Install ``package`` with apt-get; "" on success, else why it failed.

    A failed attempt leaves its log, and later calls do not retry until it is
    deleted, so one broken mirror does not cost every test five minutes.
    """
    log_path = LOG_DIR / f"coopfed-{package}-install.log"
    if os.geteuid() != 0:
        return f"not root: run `apt-get install -y {package}` (Debian) first"
    if shutil.which("apt-get") is None:
        return f"no apt-get here: install {package} with the system's package manager"
    if log_path.exists():
        return f"an earlier install attempt failed (see {log_path}; delete it to retry)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with log_path.open("w") as log:
        for command, timeout in (
            (["apt-get", "update"], 120),
            (["apt-get", "install", "-y", package], INSTALL_TIMEOUT),
        ):
            try:
                done = subprocess.run(
                    command, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=timeout
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                return f"{' '.join(command)} failed: {exc} (log: {log_path})"
            if done.returncode != 0:
                return f"{' '.join(command)} exited {done.returncode} (log: {log_path})"
    log_path.unlink()
    return ""


def ensure_command(command: str, package: str) -> str:
    """The path of ``command``, installing ``package`` first if it is missing."""
    found = shutil.which(command)
    if found is None:
        problem = apt_install(package) or f"{command} is still not on PATH after installing"
        found = shutil.which(command)
        if found is None:
            raise LookupError(f"{command} is needed: {problem}")
    return found
