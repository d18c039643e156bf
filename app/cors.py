"""Browsers: CORS for the origins in ``STOREOPS_CORS_ORIGINS`` (API.md, Conventions → Browsers).

The middleware is the outermost one (added last), so a preflight is answered before routing,
request ids or body limits run; without it an ``OPTIONS`` preflight would be a ``405``.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from app.errors import problem_body, problem_response

ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "If-Match")
EXPOSED_HEADERS = ("Idempotent-Replayed", "X-Request-ID", "ETag", "Retry-After", "Location")
# Browsers cache a preflight this long (Chrome caps it at 2 h, Firefox at 24 h).
MAX_AGE_SECONDS = 600


class ProblemCORSMiddleware(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered as problem+json like any error."""

    def preflight_response(self, request_headers: Headers) -> Response:
        """The preflight answer; a refusal names what was not allowed."""
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        failures = bytes(response.body).decode().removeprefix("Disallowed CORS ")
        detail = (
            f"CORS preflight refused ({failures}): allowed origins are set by "
            f"STOREOPS_CORS_ORIGINS; allowed methods {', '.join(ALLOWED_METHODS)}; "
            f"allowed headers {', '.join(ALLOWED_HEADERS)}."
        )
        headers = {
            k: v for k, v in response.headers.items() if k.lower().startswith(("access-", "vary"))
        }
        return problem_response(400, problem_body(400, "cors_refused", detail), headers)


def install_cors(app: FastAPI, origins: Sequence[str]) -> None:
    """Answer CORS for ``origins``; with none (the default) browsers get no CORS at all."""
    if not origins:
        return
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=list(origins),
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=MAX_AGE_SECONDS,
    )
