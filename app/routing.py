"""The request transaction: opened per request, committed before the response is sent.

:class:`TransactionalRoute` wraps every API route. Reads run in a session that is
rolled back at the end. Writes commit before returning; with an ``Idempotency-Key``
the stored response is written in the same transaction as the change, and business
errors (4xx after the work began) are stored too, while server errors never are.
"""

from __future__ import annotations

import contextlib
import email.message
import functools
import json
import logging
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any, TypeVar

import orjson
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import collector, dberrors, idempotency
from app.auth import authenticate
from app.domain import audit
from app.domain.errors import DomainError, RuleViolation
from app.errors import PROBLEM_MEDIA_TYPE, problem_body, render_domain_error
from app.routers._common import _if_match as check_if_match

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
RETRIES = 3
REPLAY_HEADER = "Idempotent-Replayed"
# Errors that mean the work never started: not stored, so a corrected retry can proceed.
_NOT_STORED = frozenset({401, 403})

logger = logging.getLogger("storeops.routing")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_EXACT_NUMBERS = "__storeops_exact_numbers__"
_BATCH = "__storeops_batch__"


def exact_numbers(endpoint: Endpoint) -> Endpoint:
    """Mark a route whose JSON body is parsed once with its numbers as ``Decimal`` (never
    through a binary float): the body model then sees Decimals where it allows any value."""
    setattr(endpoint, _EXACT_NUMBERS, True)
    return endpoint


def batch(endpoint: Endpoint) -> Endpoint:
    """Mark a route that takes batches of up to 1,000 items: the cyclic garbage collector is
    paused over the whole request, body parse included (:func:`app.collector.paused`)."""
    setattr(endpoint, _BATCH, True)
    return endpoint


ETAG_HEADER: dict[str, Any] = {
    "description": 'The resource\'s `version`, quoted (`"3"`): send it back as `If-Match` on a '
    "change (quoted or bare) to get `412` if someone changed it in between.",
    "schema": {"type": "string", "examples": ['"3"']},
}


class UnsupportedMediaType(DomainError):
    """A request body that is not sent as JSON."""

    status = 415


def _problem_doc(status: int, code: str, description: str, detail: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            PROBLEM_MEDIA_TYPE: {
                "schema": {"$ref": "#/components/schemas/Problem"},
                "example": problem_body(status, code, detail),
            }
        },
    }


_JSON_ONLY_DETAIL = "Send the body as JSON with the header 'Content-Type: application/json'."
UNSUPPORTED_MEDIA_TYPE = _problem_doc(
    415,
    "unsupported_media_type",
    "Unsupported media type (`unsupported_media_type`): the body was sent without "
    "`Content-Type: application/json`.",
    _JSON_ONLY_DETAIL,
)
UNPROCESSABLE = _problem_doc(
    422,
    "validation_error",
    "Unprocessable content: invalid fields, or a query parameter the operation does not "
    "know (`unknown_query_parameter`).",
    "The request has invalid fields; see errors.",
)


class TransactionalRoute(APIRoute):
    """An APIRoute whose handler runs inside one database transaction."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Copies: several routes may share one ``responses`` dict.
        responses = dict(self.responses)
        if self._sends_etag():
            ok = dict(responses.get(200, {}))
            ok["headers"] = {**ok.get("headers", {}), "ETag": ETAG_HEADER}
            responses[200] = ok
        # Every operation refuses unknown query parameters, and one with a body a body that
        # is not JSON: both documented, in the problem shape the service answers.
        if 422 not in responses and "422" not in responses:
            responses[422] = UNPROCESSABLE
        if self.body_field is not None:
            responses.setdefault(415, UNSUPPORTED_MEDIA_TYPE)
        self.responses = responses

    def _sends_etag(self) -> bool:
        """Single-resource reads (a GET of a model with ``version``) send ``ETag``."""
        model = self.response_model
        return (
            set(self.methods or ()) == {"GET"}
            and isinstance(model, type)
            and issubclass(model, BaseModel)
            and "version" in model.model_fields
        )

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()
        known = frozenset(_query_names(self.dependant))
        if not (set(self.methods or ()) & WRITE_METHODS):
            read = _read_handler(handler)
            return _known_query(_with_etag(read) if self._sends_etag() else read, known)
        write = _write_handler(
            handler,
            exact=getattr(self.endpoint, _EXACT_NUMBERS, False),
            batch=getattr(self.endpoint, _BATCH, False),
        )
        return _known_query(_json_only(write) if self.body_field is not None else write, known)


def _query_names(dependant: Dependant) -> set[str]:
    """Every query parameter the operation or its dependencies declare (by wire name)."""
    names: set[str] = set()
    for field in dependant.query_params:
        model = field.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            # Query parameters declared as one model: its fields are the parameters.
            names |= {f.alias or name for name, f in model.model_fields.items()}
        else:
            names.add(field.alias)
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _known_query(handler: Handler, known: frozenset[str]) -> Handler:
    """An unknown query parameter is ``422 unknown_query_parameter`` naming it, not ignored:
    a misspelt filter (``?state=``) would otherwise silently return everything."""

    async def run(request: Request) -> Response:
        unknown = [name for name in dict.fromkeys(request.query_params) if name not in known]
        if unknown:
            names = ", ".join(f"'{name}'" for name in unknown)
            valid = ", ".join(sorted(known)) or "none"
            raise RuleViolation(
                "unknown_query_parameter",
                f"Unknown query parameter {names}; this operation takes: {valid}.",
                errors=[
                    {"loc": ["query", name], "msg": "unknown query parameter", "type": "unknown"}
                    for name in unknown
                ],
            )
        return await handler(request)

    return run


@functools.lru_cache(maxsize=64)
def _is_json(content_type: str) -> bool:
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _json_only(handler: Handler) -> Handler:
    """A body sent without a JSON ``Content-Type`` is ``415`` naming the header (FastAPI
    would otherwise not parse it and report the whole body as missing or invalid)."""

    async def run(request: Request) -> Response:
        content_type = request.headers.get("content-type")
        if (content_type is None or not _is_json(content_type)) and await request.body():
            raise UnsupportedMediaType(
                "unsupported_media_type",
                _JSON_ONLY_DETAIL
                + (f" It was '{content_type[:100]}'." if content_type else " It was missing."),
                errors=[
                    {
                        "loc": ["header", "Content-Type"],
                        "msg": "must be application/json",
                        "type": "unsupported_media_type",
                    }
                ],
            )
        return await handler(request)

    return run


def _with_etag(handler: Handler) -> Handler:
    """``ETag: "<version>"`` on a successful single-resource read (API.md, Browsers)."""

    async def run(request: Request) -> Response:
        response = await handler(request)
        if response.status_code == 200:
            version = orjson.loads(response.body).get("version")
            if isinstance(version, int):
                response.headers["ETag"] = f'"{version}"'
        return response

    return run


def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    maker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    return maker


def _database_down(handler: Handler) -> Handler:
    """An OSError while the transaction runs is a database that refuses or dropped the
    connection: 503 ``database_unavailable`` (see app.dberrors)."""

    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except OSError as exc:
            typed = dberrors.translate(exc)
            if typed is None:
                raise
            raise typed from exc

    return run


def _read_handler(handler: Handler) -> Handler:
    async def run(request: Request) -> Response:
        async with _sessionmaker(request)() as session:
            request.state.session = session
            response = await handler(request)
            # A read that recorded something (an audit entry) commits it before answering.
            if session.info.get(audit.WRITTEN) and response.status_code < 400:
                await session.commit()
            return response

    return _database_down(run)


async def _parse_json_fast(request: Request, *, exact: bool) -> None:
    """Parse a JSON body with orjson (several times faster than the standard library on
    1,000-order batches), or with the standard library and Decimal numbers for an
    :func:`exact_numbers` route (``NaN``/``Infinity`` kept as their names, strings); a body
    either refuses is left to FastAPI's own parser, so errors read the same as before."""
    if "json" not in request.headers.get("content-type", ""):
        return
    body = await request.body()
    if not body:
        return
    if exact:
        # JSONDecodeError, UnicodeDecodeError, too deeply nested: FastAPI answers those.
        with contextlib.suppress(ValueError, RecursionError):
            request._json = json.loads(body, parse_float=Decimal, parse_constant=str)
    else:
        with contextlib.suppress(orjson.JSONDecodeError):
            request._json = orjson.loads(body)


def _write_handler(handler: Handler, *, exact: bool = False, batch: bool = False) -> Handler:
    async def attempt(request: Request) -> Response:
        async with _sessionmaker(request)() as session:
            request.state.session = session
            key = request.headers.get("idempotency-key")
            if key is None:
                response = await handler(request)
                await session.commit()
                return response
            # A replay answers before the route's dependencies run: a malformed If-Match must
            # be refused first (422 invalid_if_match), not answered with the stored response.
            if_match = request.headers.get("if-match")
            if if_match is not None:
                await check_if_match(if_match)
            return await _run_idempotent(request, session, handler, idempotency.validate_key(key))

    async def run(request: Request) -> Response:
        with collector.paused() if batch else contextlib.nullcontext():
            return await attempts(request)

    async def attempts(request: Request) -> Response:
        await _parse_json_fast(request, exact=exact)
        for tries_left in range(RETRIES, -1, -1):
            try:
                return await attempt(request)
            except Exception as exc:
                # Deadlock victim, serialization failure, or stock taken at commit found gone
                # (the retry runs on the exact, locking path), raised by either driver path
                # or by COMMIT: nothing was committed, so the whole request can run again
                # on a fresh transaction.
                failure = dberrors.classify(exc)
                if failure is None or not failure.retryable or not tries_left:
                    raise
                logger.warning(
                    "request.retry sqlstate=%s path=%s", failure.sqlstate, request.url.path
                )
        raise AssertionError("unreachable")

    return _database_down(run)


async def _run_idempotent(
    request: Request, session: AsyncSession, handler: Handler, key: str
) -> Response:
    principal = await authenticate(request, session)
    settings = request.app.state.settings
    stored = await idempotency.claim(
        session,
        api_key_id=principal.key_id,
        key=key,
        method=request.method,
        path=request.url.path,
        fingerprint=idempotency.fingerprint(
            request.method, request.url.path, request.url.query, await request.body()
        ),
        ttl_hours=settings.idempotency_ttl_hours,
    )
    if stored is not None:
        await session.rollback()
        return Response(
            content=stored.body,
            status_code=stored.status,
            media_type=stored.media_type,
            headers={REPLAY_HEADER: "true"},
        )
    savepoint = await session.begin_nested()
    # A route may set a body to store instead of its response's, without secrets (api keys).
    request.state.replay_body = None
    try:
        response = await handler(request)
    except DomainError as exc:
        if exc.status in _NOT_STORED:
            raise
        await savepoint.rollback()
        response = render_domain_error(exc)
    else:
        await savepoint.commit()
    if response.status_code >= 500:
        await session.rollback()
        return response
    await idempotency.save(
        session,
        api_key_id=principal.key_id,
        key=key,
        response=idempotency.StoredResponse(
            response.status_code,
            _replay_body(request, response),
            response.headers.get("content-type"),
        ),
    )
    await session.commit()
    return response


def _replay_body(request: Request, response: Response) -> bytes:
    """The body kept for replays: the route's redacted one after success, else the response's."""
    redacted: str | bytes | None = request.state.replay_body
    if redacted is None or response.status_code >= 300:
        return bytes(response.body)
    return redacted.encode() if isinstance(redacted, str) else redacted
