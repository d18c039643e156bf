"""A real local HTTP receiver for webhook tests: an asyncio server on a free port.

Each path has a plan: statuses to answer in turn (then 200), or a hang. Every request is
recorded with its headers, body and arrival time.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    at: float

    @property
    def event_id(self) -> str:
        """The ``X-StoreOps-Event-Id`` header."""
        return self.headers["x-storeops-event-id"]

    @property
    def attempt(self) -> int:
        """The ``X-StoreOps-Attempt`` header."""
        return int(self.headers["x-storeops-attempt"])


@dataclass
class Receiver:
    """Answers POSTs per plan; ``hang`` paths never answer."""

    received: list[Received] = field(default_factory=list)
    plans: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    always: dict[str, int] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)
    port: int = 0
    _server: asyncio.Server | None = None
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        """Listen on a free local port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                self._server.close_clients()
            await self._server.wait_closed()

    def url(self, path: str) -> str:
        """The URL of ``path`` on this receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        """What arrived at ``path``, in arrival order."""
        return [r for r in self.received if r.path == path]

    async def wait_for(self, check: Any, seconds: float = 20.0) -> None:
        """Wait until ``check()`` is true (every arrival re-checks it)."""
        async with asyncio.timeout(seconds):
            while not check():
                self._arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), 0.05)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                _, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    raw = await reader.readline()
                    if raw in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = raw.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if path in self.hang:
                    self.received.append(Received(path, headers, body, 0, time.monotonic()))
                    self._arrived.set()
                    await asyncio.sleep(3600)
                plan = self.plans[path]
                status = plan.pop(0) if plan else self.always.get(path, 200)
                self.received.append(Received(path, headers, body, status, time.monotonic()))
                self._arrived.set()
                extra = "Location: http://127.0.0.1:9/elsewhere\r\n" if 300 <= status < 400 else ""
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Length: 2\r\n{extra}\r\nok".encode())
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            writer.close()
