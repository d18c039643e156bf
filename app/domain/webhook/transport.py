"""A lean HTTP/1.1 transport for the webhook worker's ``httpx.AsyncClient``.

A webhook delivers one request at a time, in order, so its throughput is one over the cost
of a request. httpx's default transport (httpcore on anyio, h11 in pure Python) spent
~0.27 ms of CPU per request on a local receiver, three quarters of the worker's whole cost
per delivery, and under full-speed intake the worker fell behind (bench/README.md,
scenario ``webhooks``). This transport keeps the client (its request building, timeouts
and redirect policy) and replaces only the wire: an ``asyncio.Protocol`` per connection,
responses parsed by ``httptools`` (llhttp, the parser uvicorn serves us with), keep-alive
connections pooled per origin.

What it does, and what it leaves out on purpose:

- HTTP/1.1 over TCP or TLS (the default certificate checks of httpx), no proxies (the
  worker's client ignores the environment), no HTTP/2, no ``Expect: 100-continue``;
- the request body is sent whole (the worker's bodies are bytes in memory);
- the timeouts of ``request.extensions["timeout"]``: ``connect`` for the connection (TLS
  included), ``write`` while the socket buffer is full, ``read`` for each wait on the
  response; they raise httpx's own timeout exceptions, other failures httpx's
  ``ConnectError``/``ReadError``/``RemoteProtocolError``;
- a response head over 64 KiB is a protocol error; the body is streamed to the caller;
- a connection goes back to the pool only after its response was read to the end and the
  server allows keep-alive; an idle one is dropped after ``keepalive_seconds``;
- a request on a reused connection that the server had closed meanwhile (nothing came
  back) is sent once more on a new connection, as a browser does.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from typing import Any, cast

import httptools
import httpx

MAX_HEAD_BYTES = 64 * 1024
_Origin = tuple[str, str, int]


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: sends a request, parses the response as it arrives."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.used = False
        self.idle_since = 0.0
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: list[bytes] = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.head_size = 0
        self.received = 0
        self.error: Exception | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writable = True
        self._drained: asyncio.Future[None] | None = None

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, but behave as one.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.received += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("Protocol upgrade not supported."))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"Malformed response: {exc}"))
        if self.head_size > MAX_HEAD_BYTES or (
            not self.head_done and self.received > MAX_HEAD_BYTES
        ):
            self._fail(httpx.RemoteProtocolError("Response head over 64 KiB."))
        self._wake()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.complete and self.error is None:
            if self.head_done and not self._has_length():
                # A body delimited by the end of the connection ends here.
                self.complete = True
            else:
                self.error = httpx.RemoteProtocolError(
                    "Server disconnected without sending a complete response."
                )
        self._wake()
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    def pause_writing(self) -> None:
        self._writable = False

    def resume_writing(self) -> None:
        self._writable = True
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value) + 4
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.headers = []  # an interim response (100 Continue…): the real one follows
            return
        self.status = status
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.head_done:
            # Asked now: once the message is over, the parser answers for the next one.
            self.keep_alive = self.parser.should_keep_alive()
            self.complete = True

    # used by the transport

    def _has_length(self) -> bool:
        for name, value in self.headers:
            lower = name.lower()
            if lower == b"content-length" or (
                lower == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                return True
        return self.status in (204, 304)

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self.close()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def begin(self) -> None:
        """Ready for the next exchange."""
        self.status = 0
        self.headers = []
        self.chunks = []
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.head_size = 0
        self.received = 0
        self.error = None

    async def send(self, data: bytes, seconds: float | None) -> None:
        assert self.transport is not None
        if self.closed:
            raise httpx.RemoteProtocolError("Connection closed.")
        self.transport.write(data)
        if not self._writable and not self.closed:
            self._drained = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(seconds):
                    await self._drained
            except TimeoutError:
                raise httpx.WriteTimeout("Timed out sending the request.") from None
            finally:
                self._drained = None

    async def wait(self, seconds: float | None) -> None:
        """Until more of the response arrived (or the connection ended)."""
        if self.error is not None:
            raise self.error
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(seconds):
                await self._waiter
        except TimeoutError:
            raise httpx.ReadTimeout("Timed out reading the response.") from None
        finally:
            self._waiter = None
        if self.error is not None:
            raise self.error

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Body(httpx.AsyncByteStream):
    """The response body as it arrives; on close the connection is pooled or closed."""

    def __init__(self, pool: LeanTransport, origin: _Origin, conn: _Connection, read: Any):
        self._pool = pool
        self._origin = origin
        self._conn = conn
        self._read = read
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            if conn.chunks:
                chunk = b"".join(conn.chunks)
                conn.chunks = []
                yield chunk
                continue
            if conn.complete:
                return
            await conn.wait(self._read)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._conn.reusable():
            self._pool.release(self._origin, self._conn)
        else:
            self._conn.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """See the module docstring."""

    def __init__(
        self,
        *,
        ssl_context: ssl.SSLContext | None = None,
        max_idle_per_origin: int = 8,
        keepalive_seconds: float = 5.0,
    ) -> None:
        self._ssl = ssl_context
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._max_idle = max_idle_per_origin
        self._keepalive = keepalive_seconds
        self._open: set[_Connection] = set()

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        return self._ssl

    def release(self, origin: _Origin, conn: _Connection) -> None:
        """Keep ``conn`` for the origin's next request (or close it when enough are kept)."""
        idle = self._idle.setdefault(origin, [])
        if len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def _checkout(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive:
                return conn
            conn.close()
        return None

    async def _connect(self, request: httpx.Request, origin: _Origin, seconds: Any) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls = self._ssl_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(seconds):
                _, conn = await loop.create_connection(
                    _Connection, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise httpx.ConnectTimeout("Timed out connecting.", request=request) from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__, request=request) from exc
        return conn

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        if url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"Unsupported scheme {url.scheme!r}.")
        origin = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        timeouts = request.extensions.get("timeout", {})
        body = await request.aread()
        lines = [request.method.encode(), b" ", url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            lines += [name, b": ", value, b"\r\n"]
        lines.append(b"\r\n")
        data = b"".join(lines) + body
        conn = self._checkout(origin)
        if conn is not None:
            try:
                return await self._exchange(request, origin, conn, data, timeouts)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                if conn.received:
                    raise
                # The server closed the kept connection before reading the request: once
                # more on a fresh one (nothing was processed).
        conn = await self._connect(request, origin, timeouts.get("connect"))
        return await self._exchange(request, origin, conn, data, timeouts)

    async def _exchange(
        self,
        request: httpx.Request,
        origin: _Origin,
        conn: _Connection,
        data: bytes,
        timeouts: dict[str, Any],
    ) -> httpx.Response:
        conn.begin()
        read = timeouts.get("read")
        self._open.add(conn)
        try:
            await conn.send(data, timeouts.get("write"))
            while not conn.head_done:
                await conn.wait(read)
        except httpx.HTTPError as exc:
            conn.close()
            self._open.discard(conn)
            exc.request = request
            raise
        except BaseException:
            conn.close()
            self._open.discard(conn)
            raise
        self._open.discard(conn)
        return httpx.Response(
            conn.status,
            headers=conn.headers,
            stream=_Body(self, origin, conn, read),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        for conn in self._open:
            conn.close()
        self._open.clear()
