"""The webhook worker's HTTP/1.1 transport against real local servers (TCP and TLS).

Each server is a scripted asyncio server: it reads one request head and body at a time and
answers with the raw bytes the test gives, so framing the transport must handle (chunked,
read-until-close, interim 100 responses, closed keep-alive connections) is sent exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx
import pytest
import trustme

from app.domain.webhook.delivery import DeliveryWorker
from app.domain.webhook.transport import MAX_HEAD_BYTES, LeanTransport

Answer = Callable[[int], bytes | None]
"""The raw answer to the n-th request of the server (None: hang without answering,
b"": close the connection without answering)."""


@dataclass
class Server:
    port: int = 0
    connections: int = 0
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)
    """(head, body) of each request, in arrival order."""
    close_after: set[int] = field(default_factory=set)
    """Requests (by number) after whose answer the server closes the connection."""


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head, await reader.readexactly(length)


@contextlib.asynccontextmanager
async def serving(answer: Answer, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server.connections += 1
        try:
            while True:
                try:
                    request = await _read_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                assert request is not None
                n = len(server.requests)
                server.requests.append(request)
                raw = answer(n)
                if raw == b"":
                    return  # closes without a word
                if raw is None:
                    await asyncio.sleep(3600)
                    return
                writer.write(raw)
                await writer.drain()
                if n in server.close_after:
                    return
        except asyncio.CancelledError:
            return  # the server is closing
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        with contextlib.suppress(Exception):
            listener.close_clients()


def _client(transport: LeanTransport, timeout: float = 2.0) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=transport, timeout=httpx.Timeout(timeout), follow_redirects=False
    )


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_requests_share_one_kept_connection_and_arrive_exactly() -> None:
    async with serving(lambda n: OK) as server, _client(LeanTransport()) as client:
        url = f"http://127.0.0.1:{server.port}/hooks/a?x=1"
        for i in range(5):
            r = await client.post(url, content=b'{"n":%d}' % i, headers={"X-Id": str(i)})
            assert (r.status_code, r.content) == (200, b"ok")
    assert server.connections == 1
    head, body = server.requests[3]
    assert head.startswith(b"POST /hooks/a?x=1 HTTP/1.1\r\n")
    assert b"\r\nx-id: 3\r\n" in head.lower()
    assert b"\r\nhost: 127.0.0.1:" in head.lower()
    assert body == b'{"n":3}'


async def test_chunked_and_interim_responses() -> None:
    answers = [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        OK,
    ]
    async with serving(lambda n: answers[n]) as server, _client(LeanTransport()) as client:
        url = f"http://127.0.0.1:{server.port}/"
        got = [await client.post(url, content=b"{}") for _ in answers]
    assert [(r.status_code, r.content) for r in got] == [
        (200, b"abcde"),
        (201, b"x"),
        (204, b""),
        (200, b"ok"),
    ]
    assert server.connections == 1


async def test_a_body_until_close_ends_with_the_connection_and_is_not_reused() -> None:
    answer = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it"
    async with serving(lambda n: answer) as server, _client(LeanTransport()) as client:
        server.close_after = {0, 1}
        url = f"http://127.0.0.1:{server.port}/"
        first = await client.post(url, content=b"{}")
        second = await client.post(url, content=b"{}")
    assert first.content == second.content == b"all of it"
    assert server.connections == 2


async def test_a_kept_connection_the_server_closed_is_replaced() -> None:
    async with serving(lambda n: OK) as server, _client(LeanTransport()) as client:
        server.close_after = {0}  # closed without saying so (no Connection: close)
        url = f"http://127.0.0.1:{server.port}/"
        assert (await client.post(url, content=b"1")).status_code == 200
        await asyncio.sleep(0.05)
        assert (await client.post(url, content=b"2")).status_code == 200
    assert server.connections == 2
    assert [body for _, body in server.requests] == [b"1", b"2"]


async def test_a_kept_connection_dropped_in_flight_is_retried_once_on_a_new_one() -> None:
    answers = [OK, b"", OK]
    async with serving(lambda n: answers[n]) as server, _client(LeanTransport()) as client:
        url = f"http://127.0.0.1:{server.port}/"
        assert (await client.post(url, content=b"1")).status_code == 200
        assert (await client.post(url, content=b"2")).status_code == 200
    assert server.connections == 2
    assert [body for _, body in server.requests] == [b"1", b"2", b"2"]


async def test_a_new_connection_dropped_in_flight_is_an_error() -> None:
    async with serving(lambda n: b"") as server, _client(LeanTransport()) as client:
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"http://127.0.0.1:{server.port}/", content=b"{}")
    assert len(server.requests) == 1


async def test_errors_are_httpx_errors() -> None:
    async with serving(lambda n: None) as server, _client(LeanTransport(), 0.3) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"http://127.0.0.1:{server.port}/", content=b"{}")
    with pytest.raises(httpx.ConnectError):
        async with _client(LeanTransport()) as client:
            await client.post(f"http://127.0.0.1:{server.port}/", content=b"{}")
    huge = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * MAX_HEAD_BYTES + b"\r\n\r\n"
    garbage = b"SMTP ready\r\n\r\n"
    for answer in (huge, garbage):
        async with serving(lambda n, a=answer: a) as server, _client(LeanTransport()) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.post(f"http://127.0.0.1:{server.port}/", content=b"{}")
    half = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
    async with serving(lambda n: half) as server, _client(LeanTransport()) as client:
        server.close_after = {0}
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(f"http://127.0.0.1:{server.port}/", content=b"{}")


async def test_redirects_are_answers_not_followed() -> None:
    moved = b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n"
    async with serving(lambda n: moved) as server, _client(LeanTransport()) as client:
        r = await client.post(f"http://127.0.0.1:{server.port}/", content=b"{}")
    assert r.status_code == 302
    assert len(server.requests) == 1


async def test_a_large_body_read_in_part_closes_the_connection() -> None:
    big = b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + b"x" * 200_000
    async with serving(lambda n: big) as server, _client(LeanTransport()) as client:
        url = f"http://127.0.0.1:{server.port}/"
        for _ in range(2):
            async with client.stream("POST", url, content=b"{}") as r:
                async for _chunk in r.aiter_raw():
                    break
    assert server.connections == 2


async def test_https_with_certificate_checks() -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server_ctx)
    trusted = ssl.create_default_context()
    ca.configure_trust(trusted)
    async with serving(lambda n: OK, tls=server_ctx) as server:
        url = f"https://127.0.0.1:{server.port}/"
        async with _client(LeanTransport(ssl_context=trusted)) as client:
            for _ in range(3):
                assert (await client.post(url, content=b"{}")).content == b"ok"
        assert server.connections == 1
        # The default trust store does not know the test CA: refused at connect.
        async with _client(LeanTransport()) as client:
            with pytest.raises(httpx.ConnectError):
                await client.post(url, content=b"{}")


async def test_the_workers_client_keeps_no_cookies() -> None:
    answer = b"HTTP/1.1 204 No Content\r\nSet-Cookie: session=abc; Path=/\r\n\r\n"
    worker = DeliveryWorker(maker=None)  # type: ignore[arg-type]  # no database needed
    async with serving(lambda n: answer) as server:
        try:
            for _ in range(2):
                r = await worker.client.post(f"http://127.0.0.1:{server.port}/", content=b"{}")
                assert r.status_code == 204
        finally:
            await worker.client.aclose()
    assert all(b"cookie:" not in head.lower() for head, _ in server.requests)
    assert b"user-agent: storeops-webhooks/1.0" in server.requests[0][0].lower()
