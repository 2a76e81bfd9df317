"""What the embedded PostgreSQL needs from the machine: an unprivileged user to run
as (when we are root), directories that user can reach and owns, and a data
directory no other live server holds.

``coopfed.embedded_pg`` runs the server; this module only checks and prepares.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SERVER_USER_TO_CREATE = "coopfed-pg"


class PostgresStartError(Exception):
    """The embedded server could not be initialised or started."""

    def __init__(
        self,
        reason: str,
        *,
        data_dir: Path | None = None,
        log_path: Path | None = None,
        log_tail: str = "",
    ) -> None:
        self.reason = reason
        self.data_dir = data_dir
        self.log_path = log_path
        self.log_tail = log_tail
        message = reason
        if log_tail:
            where = f" ({log_path})" if log_path else ""
            message += f"\n--- end of postgres log{where} ---\n{log_tail}"
        super().__init__(message)


# --------------------------------------------------------------------------
# Privilege handling (root only)


@dataclass(frozen=True)
class ServerUser:
    name: str
    uid: int
    gid: int


def server_user() -> ServerUser:
    wanted = os.environ.get("PG_RUN_AS")
    if wanted:
        try:
            entry = pwd.getpwnam(wanted)
        except KeyError:
            raise PostgresStartError(f"PG_RUN_AS={wanted!r}: no such user") from None
        if entry.pw_uid == 0:
            raise PostgresStartError(
                f"PG_RUN_AS={wanted!r} is root; postgres refuses to run as root"
            )
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    for name in ("postgres", SERVER_USER_TO_CREATE):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    useradd = shutil.which("useradd")
    if useradd is None:
        raise PostgresStartError(
            "running as root: postgres must run as an unprivileged user, but there is no "
            f"`postgres` user and no `useradd` to create {SERVER_USER_TO_CREATE!r}; "
            "create a user and set PG_RUN_AS"
        )
    proc = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            SERVER_USER_TO_CREATE,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        entry = pwd.getpwnam(SERVER_USER_TO_CREATE)
    except KeyError:
        raise PostgresStartError(
            f"could not create system user {SERVER_USER_TO_CREATE!r} "
            f"(useradd exit {proc.returncode}): {proc.stderr.strip()}; set PG_RUN_AS"
        ) from None
    return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def can_traverse(path: Path, user: ServerUser) -> bool:
    st = path.stat()
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == user.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def check_reachable(path: Path, user: ServerUser, what: str) -> None:
    for parent in reversed(path.parents):
        if not can_traverse(parent, user):
            mode = stat.S_IMODE(parent.stat().st_mode)
            raise PostgresStartError(
                f"{what} {path} is not reachable by the server user {user.name!r}: "
                f"{parent} has mode {mode:o} (needs o+x). Run `chmod o+x {parent}` "
                f"or move the {what} to a traversable place (or set PG_RUN_AS)",
                data_dir=path,
            )


def chown_tree(root: Path, user: ServerUser) -> None:
    os.chown(root, user.uid, user.gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), user.uid, user.gid)


# --------------------------------------------------------------------------
# Lock files


def pid_is_postgres_in(pid: int, directory: Path) -> bool:
    """Whether a live ``pid`` is (or may be) a postgres serving ``directory``."""
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        return sys.platform != "linux"  # can't tell without /proc: assume yes
    try:
        return Path(os.readlink(proc / "cwd")) == directory
    except PermissionError:
        pass
    except OSError:
        return False  # exited meanwhile
    try:
        return (proc / "comm").read_text().strip() == "postgres"
    except OSError:
        return False


def clear_stale_lock(lock: Path, data_dir: Path) -> None:
    """Remove ``lock`` if its pid was reused by an unrelated process.

    A dead pid is handled by postgres itself; a *live* unrelated pid (common
    after a container restart) would make it refuse to start.
    """
    try:
        first = lock.read_text().split("\n", 1)[0].strip()
        pid = abs(int(first))
    except (OSError, ValueError):
        return
    if pid in (0, os.getpid()):
        return
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return  # dead: postgres removes the file itself
    except PermissionError:
        pass
    if pid_is_postgres_in(pid, data_dir):
        raise PostgresStartError(
            f"data dir {data_dir} is in use by another running postgres (pid {pid})",
            data_dir=data_dir,
        )
    lock.unlink(missing_ok=True)
