"""Which PostgreSQL a command uses: ``DATABASE_URL``, or the node's own cluster.

With no ``DATABASE_URL`` the node keeps a private cluster in
``<data dir>/postgres``.  ``coopfed run`` owns it (starts it, stops it on exit);
other commands attach to it while the node runs, or start it for their own
duration when it does not.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from coopfed.embedded_pg import EmbeddedPostgres, running_dsn
from federation.settings import Settings


def embedded_dir(settings: Settings) -> Path:
    return settings.data_dir / "postgres"


@contextlib.contextmanager
def database_for(settings: Settings) -> Iterator[str]:
    """Yield a DSN for the duration of the block."""
    if settings.database_url:
        yield settings.database_url
        return
    attached = running_dsn(embedded_dir(settings))
    if attached is not None:
        yield attached
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(embedded_dir(settings))
    dsn = server.start()
    try:
        yield dsn
    finally:
        server.stop()
