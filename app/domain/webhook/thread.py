"""The delivery worker on a thread of its own, as the service runs it."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
from collections.abc import Callable
from typing import Any

from app.config import Settings
from app.domain.webhook.delivery import STOP_GRACE_SECONDS, DeliveryWorker
from app.domain.webhook.work import WorkerConfig


class DeliveryThread:
    """A :class:`DeliveryWorker` on its own thread, event loop and small connection pool.

    Delivery is a chain of short waits per event (read, POST, record), one event after
    the other for each webhook. On the API's event loop, busy with requests, every wait
    queued behind them: at full intake a webhook got almost nothing (bench/README.md,
    scenario ``webhooks``). On its own loop the worker only waits for the GIL, and
    requests do not wait for it either.
    """

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        # A few connections suffice: a delivery holds one only to read events or record.
        self.settings = settings.model_copy(
            update={
                "db_pool_size": min(4, settings.webhook_concurrency),
                "db_max_overflow": 0,
                "db_pool_timeout_seconds": 30.0,
            }
        )
        self.config = WorkerConfig.from_settings(settings)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    def start(self) -> None:
        """Start the thread; deliveries begin once its pool is up."""
        self._thread = threading.Thread(target=self._run, name="storeops-webhooks", daemon=True)
        self._thread.start()

    def _run_until(self, done: Callable[[], bool]) -> None:
        """Run the worker on this thread until ``done()`` (polled every second)."""

        async def watch() -> None:
            while not done():  # noqa: ASYNC110 - a condition of another process
                await asyncio.sleep(1.0)
            assert self._stop is not None
            self._stop.set()

        async def main() -> None:
            watcher = asyncio.create_task(self._main())
            await asyncio.sleep(0)
            await asyncio.to_thread(self._ready.wait, 30)
            await watch()
            await watcher

        self._runner(main)

    def _run(self) -> None:
        self._runner(self._main)

    def _runner(self, main: Callable[[], Any]) -> None:
        try:
            import uvloop

            factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
        except ImportError:  # pragma: no cover - uvloop is optional
            factory = None
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(main())

    async def _main(self) -> None:
        from app.db import create_engine, create_sessionmaker

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        engine = create_engine(self.url, self.settings)
        worker = DeliveryWorker(create_sessionmaker(engine), self.config)
        worker.start()
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await worker.stop()
            await engine.dispose()

    async def stop(self) -> None:
        """Stop the worker (see :meth:`DeliveryWorker.stop`) and wait for the thread."""
        if self._thread is None:
            return
        await asyncio.to_thread(self._ready.wait, 10)
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        await asyncio.to_thread(self._thread.join, STOP_GRACE_SECONDS + 10)
        self._thread = None


class DeliveryProcess:
    """A :class:`DeliveryWorker` in a child process of its own (its own interpreter and GIL).

    On a thread, delivery shares the API process's GIL: under full-speed intake the thread
    got a fraction of a core and webhooks fell behind intake (bench/README.md, scenario
    ``webhooks``). A spawned child competes only for CPU. It stops when :meth:`stop` asks,
    and on its own when the parent process is gone (checked every second), so a killed API
    process leaves no orphan delivering. Leases in PostgreSQL share the work as before.
    """

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self._process: Any = None
        self._stop: Any = None

    def start(self) -> None:
        """Spawn the child; it delivers once its pool is up."""
        ctx = multiprocessing.get_context("spawn")
        self._stop = ctx.Event()
        self._process = ctx.Process(
            target=_child_main,
            args=(self.url, self.settings.model_dump(), self._stop, os.getpid()),
            name="storeops-webhooks",
            daemon=True,
        )
        self._process.start()

    async def stop(self) -> None:
        """Ask the child to finish its requests in flight and wait for it (then kill it)."""
        if self._process is None:
            return
        self._stop.set()
        await asyncio.to_thread(self._process.join, STOP_GRACE_SECONDS + 10)
        if self._process.is_alive():
            self._process.kill()
            await asyncio.to_thread(self._process.join, 5)
        self._process = None


def _child_main(url: str, fields: dict[str, Any], stop: Any, parent: int) -> None:
    """The child process: a delivery thread's worker, on this process's main thread."""
    from app.logging import configure_logging

    settings = Settings(**fields)
    configure_logging(settings.log_level)
    with contextlib.suppress(KeyboardInterrupt):
        DeliveryThread(url, settings)._run_until(lambda: stop.is_set() or os.getppid() != parent)
