"""Request bounds: a body larger than ``STOREOPS_MAX_BODY_BYTES`` is ``413`` while it streams.

The limit is enforced in pure ASGI, outside routing: a declared ``Content-Length`` over the
limit is refused before the application runs (so before authentication), and a chunked or
streamed body is counted as it arrives, so no more than the limit is ever held in memory.
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PROBLEM_MEDIA_TYPE, problem_body, problem_response

CODE = "payload_too_large"


class BodyTooLarge(StarletteHTTPException):
    """Raised from ``receive`` once a body passes the limit.

    An ``HTTPException``, so FastAPI's body parsing re-raises it untouched and the
    application's handler renders it as problem+json; :class:`BodyLimitMiddleware` answers
    itself if it escapes the application.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=_detail(limit))


def _detail(limit: int) -> str:
    return f"The request body is larger than the limit of {limit} bytes."


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


class BodyLimitMiddleware:
    """Refuse bodies over ``max_bytes`` with ``413 payload_too_large`` before reading them whole."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        # No ``Connection: close``: uvicorn then discards the rest of the body as it arrives
        # and the client reads the 413; closing with unread data resets the connection
        # before the client sees any answer.
        response = problem_response(413, problem_body(413, CODE, _detail(self.max_bytes)))
        await response(scope, receive, send)


PAYLOAD_TOO_LARGE: dict[str, Any] = {
    "description": "Content too large (`payload_too_large`): the body is over "
    "`STOREOPS_MAX_BODY_BYTES` (default 8 MiB).",
    "content": {
        PROBLEM_MEDIA_TYPE: {
            "schema": {"$ref": "#/components/schemas/Problem"},
            "example": problem_body(413, CODE, _detail(8 * 1024 * 1024)),
        }
    },
}
"""The OpenAPI response every operation with a request body can answer."""


def document_payload_too_large(schema: dict[str, Any]) -> None:
    """Add the ``413`` response to every operation of ``schema`` that takes a request body."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                operation.setdefault("responses", {}).setdefault("413", PAYLOAD_TOO_LARGE)
