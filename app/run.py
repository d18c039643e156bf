"""``make run``: embedded PostgreSQL if needed, migrations, admin key, then uvicorn.

Stops the embedded server on exit, including Ctrl-C and SIGTERM (uvicorn re-raises
SIGTERM after its graceful shutdown, so atexit handlers alone would not run).
"""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import uvicorn

from app import bootstrap
from app.config import get_settings


def _sigterm_to_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    """Serve the API until interrupted."""
    signal.signal(signal.SIGTERM, _sigterm_to_exit)
    settings = get_settings()
    url, embedded = bootstrap.resolve_database(settings)
    try:
        where = f"embedded PostgreSQL in {embedded.pgdata}" if embedded else "DATABASE_URL"
        print(f"storeops: database: {where}", file=sys.stderr)
        bootstrap.migrate(url)
        secret, path = bootstrap.admin_secret(settings)
        os.environ["DATABASE_URL"] = url
        os.environ["STOREOPS_ADMIN_KEY"] = secret
        get_settings.cache_clear()
        if path is not None:
            print(f"storeops: admin API key is in {path}", file=sys.stderr)
        else:
            print("storeops: admin API key is STOREOPS_ADMIN_KEY", file=sys.stderr)
        print(
            f"storeops: serving on http://{settings.host}:{settings.port} "
            f"(docs: http://{settings.host}:{settings.port}/docs)",
            file=sys.stderr,
        )
        uvicorn.run(
            "app.main:app",
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            access_log=False,
        )
    except KeyboardInterrupt:
        pass
    finally:
        if embedded is not None:
            embedded.stop()
            print("storeops: embedded PostgreSQL stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
