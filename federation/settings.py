"""Node settings: one frozen value built from flags and ``COOPFED_*`` variables.

Every setting of ``coopfed run`` is both a command-line flag and an environment
variable, so that scripts, systemd units and compose files can rely on the same
names.  Flags win over the environment, the environment over defaults.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from federation.proxies import Network, parse_networks

USERNAME_RE = re.compile(r"^[a-z0-9_]+([.-]+[a-z0-9_]+)*$", re.IGNORECASE)

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
LOG_FORMATS = ("text", "json")


class SettingsError(Exception):
    """A setting has a value the node cannot run with."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    origin: str = ""
    data_dir: Path = Path("data")
    # Uploaded images (avatars, headers, members' photos); empty: <data_dir>/media.
    # Several web processes or hosts must share it (a volume, a network mount).
    media_dir: Path | None = None
    username: str = "coop"
    # Profile: applied at start when given; empty keeps what the node has.
    name: str = ""
    summary: str = ""
    avatar_url: str = ""
    allow_private_addresses: bool = False
    database_url: str = ""
    manually_approves_followers: bool = False
    # Background work: in-process worker tasks and job leases.
    workers: int = 1
    worker_concurrency: int = 32
    # Processes of ``coopfed run``: web processes share the port (SO_REUSEPORT);
    # with worker processes, the web processes only answer requests.
    web_processes: int = 1
    worker_processes: int = 0
    # Niceness added to worker processes: under a burst the CPU goes to accepting
    # (and answering) first; queued processing and deliveries catch up after.
    worker_nice: int = 10
    # While the web processes are busy, a worker process waits this long at most before
    # it claims more jobs (the queue always moves, if more slowly).
    worker_yield_seconds: float = 1.0
    # Threads that compute RSA signatures of outgoing requests (0: on the event loop).
    signing_threads: int = 1
    job_lease_seconds: float = 60.0
    delivery_timeout_seconds: float = 20.0
    # Retry policy for deliveries (about two days with the default 16 attempts).
    max_delivery_attempts: int = 16
    max_inbox_attempts: int = 8
    # Inbox requests per second (and burst) allowed from one remote host.
    inbox_rate: float = 100.0
    inbox_burst: float = 500.0
    # Client-to-server requests per second (and burst) allowed for one bearer token.
    c2s_rate: float = 10.0
    c2s_burst: float = 60.0
    # Streaming API: WebSockets one token may hold open, events waiting for a slow
    # reader before it is disconnected, ping interval, and how long one send may take.
    stream_connections_per_token: int = 4
    stream_queue_size: int = 100
    stream_heartbeat_seconds: float = 30.0
    stream_send_timeout_seconds: float = 10.0
    # Key fetches an inbox POST may cause, per keyId host and per peer address
    # (a second, and burst); a failed or refetched key waits this many seconds.
    key_fetch_rate: float = 1.0
    key_fetch_burst: float = 30.0
    key_refetch_seconds: float = 60.0
    # Unprocessed inbox activities one remote actor may have queued (then 429).
    max_pending_per_actor: int = 1000
    # Multiplies every retry delay (tests use a small value to retry in seconds).
    retry_scale: float = 1.0
    # A host that failed on this many distinct days is skipped until it revives.
    unavailable_after_days: int = 7
    # Log lines as ``text`` or ``json`` (one object a line, for log collectors).
    log_format: str = "text"
    # Reverse proxies whose X-Forwarded-For is believed (CIDRs, comma-separated).
    trusted_proxies: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not USERNAME_RE.match(self.username):
            raise SettingsError("username", f"{self.username!r} is not a valid handle")
        if self.log_format not in LOG_FORMATS:
            raise SettingsError("log_format", f"{self.log_format!r} is not one of text, json")
        if not 0 < self.port < 65536:
            raise SettingsError("port", f"{self.port} is out of range")
        if self.key_fetch_rate <= 0 or self.key_fetch_burst < 1:
            raise SettingsError("key_fetch_rate", "the rate must be positive, the burst at least 1")
        if self.signing_threads < 0:
            raise SettingsError("signing_threads", "must not be negative")
        if self.web_processes < 1 or self.worker_processes < 0:
            raise SettingsError(
                "web_processes", "at least 1 web process, and no negative count of workers"
            )
        if not 0 <= self.worker_nice <= 19:
            raise SettingsError("worker_nice", "must be between 0 and 19")
        if not 0 <= self.worker_yield_seconds <= 60:
            raise SettingsError("worker_yield_seconds", "must be between 0 and 60")
        if self.key_refetch_seconds < 0:
            raise SettingsError("key_refetch_seconds", "must not be negative")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError("trusted_proxies", str(exc)) from exc
        if self.origin:
            parts = urlsplit(self.origin)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise SettingsError("origin", f"{self.origin!r} is not an http(s) base URL")
            if parts.path not in ("", "/") or parts.query or parts.fragment:
                raise SettingsError("origin", "the origin must not carry a path")

    @property
    def media_path(self) -> Path:
        return self.media_dir if self.media_dir is not None else self.data_dir / "media"

    @property
    def base_url(self) -> str:
        """The public base URL, without a trailing slash."""
        if self.origin:
            return self.origin.rstrip("/")
        return f"http://{self.host}:{self.port}"

    @property
    def domain(self) -> str:
        """The host part of handles (``coop@domain``): host[:port] of the origin."""
        return urlsplit(self.base_url).netloc

    @property
    def trusted_networks(self) -> tuple[Network, ...]:
        return parse_networks(self.trusted_proxies)

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


# name -> (environment variable, kind)
ENV_NAMES: dict[str, tuple[str, type]] = {
    "host": ("COOPFED_HOST", str),
    "port": ("COOPFED_PORT", int),
    "origin": ("COOPFED_ORIGIN", str),
    "data_dir": ("COOPFED_DATA_DIR", Path),
    "media_dir": ("COOPFED_MEDIA_DIR", Path),
    "username": ("COOPFED_USERNAME", str),
    "name": ("COOPFED_NAME", str),
    "summary": ("COOPFED_SUMMARY", str),
    "avatar_url": ("COOPFED_AVATAR_URL", str),
    "allow_private_addresses": ("COOPFED_ALLOW_PRIVATE_ADDRESSES", bool),
    "database_url": ("DATABASE_URL", str),
    "manually_approves_followers": ("COOPFED_MANUALLY_APPROVES_FOLLOWERS", bool),
    "workers": ("COOPFED_WORKERS", int),
    "worker_concurrency": ("COOPFED_WORKER_CONCURRENCY", int),
    "web_processes": ("COOPFED_WEB_PROCESSES", int),
    "worker_processes": ("COOPFED_WORKER_PROCESSES", int),
    "worker_nice": ("COOPFED_WORKER_NICE", int),
    "worker_yield_seconds": ("COOPFED_WORKER_YIELD_SECONDS", float),
    "signing_threads": ("COOPFED_SIGNING_THREADS", int),
    "job_lease_seconds": ("COOPFED_JOB_LEASE_SECONDS", float),
    "delivery_timeout_seconds": ("COOPFED_DELIVERY_TIMEOUT_SECONDS", float),
    "max_delivery_attempts": ("COOPFED_MAX_DELIVERY_ATTEMPTS", int),
    "max_inbox_attempts": ("COOPFED_MAX_INBOX_ATTEMPTS", int),
    "retry_scale": ("COOPFED_RETRY_SCALE", float),
    "inbox_rate": ("COOPFED_INBOX_RATE", float),
    "inbox_burst": ("COOPFED_INBOX_BURST", float),
    "c2s_rate": ("COOPFED_C2S_RATE", float),
    "c2s_burst": ("COOPFED_C2S_BURST", float),
    "max_pending_per_actor": ("COOPFED_MAX_PENDING_PER_ACTOR", int),
    "stream_connections_per_token": ("COOPFED_STREAM_CONNECTIONS_PER_TOKEN", int),
    "stream_queue_size": ("COOPFED_STREAM_QUEUE_SIZE", int),
    "stream_heartbeat_seconds": ("COOPFED_STREAM_HEARTBEAT_SECONDS", float),
    "stream_send_timeout_seconds": ("COOPFED_STREAM_SEND_TIMEOUT_SECONDS", float),
    "key_fetch_rate": ("COOPFED_KEY_FETCH_RATE", float),
    "key_fetch_burst": ("COOPFED_KEY_FETCH_BURST", float),
    "key_refetch_seconds": ("COOPFED_KEY_REFETCH_SECONDS", float),
    "unavailable_after_days": ("COOPFED_UNAVAILABLE_AFTER_DAYS", int),
    "log_format": ("COOPFED_LOG_FORMAT", str),
    "trusted_proxies": ("COOPFED_TRUSTED_PROXIES", str),
}


def _convert(name: str, kind: type, raw: object) -> object:
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        word = str(raw).strip().lower()
        if word not in TRUE_WORDS | FALSE_WORDS:
            raise SettingsError(
                name, f"{raw!r} is neither on (1, true, yes, on) nor off (0, false, no, off)"
            )
        return word in TRUE_WORDS
    try:
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(name, f"{raw!r} is not a valid {kind.__name__}") from exc


def load_settings(
    flags: Mapping[str, object] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings: flags (non-None values) over environment over defaults."""
    env = os.environ if environ is None else environ
    values: dict[str, object] = {}
    for name, (var, kind) in ENV_NAMES.items():
        if var in env and env[var] != "":
            values[name] = _convert(name, kind, env[var])
    for name, raw in (flags or {}).items():
        if raw is None or name not in ENV_NAMES:
            continue
        values[name] = _convert(name, ENV_NAMES[name][1], raw)
    return Settings(**values)  # type: ignore[arg-type]
