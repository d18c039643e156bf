"""Browsers (API.md, Conventions → Browsers): CORS, a correct ``Allow`` on 405, ETag/If-Match."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings
from app.main import create_app
from tests.helpers import ADMIN, ADMIN_SECRET, Api, SettableClock, assert_problem
from tests.routers.test_orders import order_body, stocked_sku

ORIGIN = "https://ops.example"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, idempotency-key, if-match",
}


@pytest.fixture(scope="module")
async def browser(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app that allows ``ORIGIN`` (set as the environment would set it)."""
    settings = Settings(
        database_url=database_url,
        admin_key=ADMIN_SECRET,
        access_log=False,
        log_level="WARNING",
        sweep_enabled=False,
        max_body_bytes=4096,
        cors_origins=f"{ORIGIN}, https://other.example/",  # type: ignore[arg-type]
    )
    application = create_app(settings, clock=SettableClock())
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://storeops.test") as c:
            yield c


def test_origins_setting_is_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOREOPS_CORS_ORIGINS", "https://a.example, https://b.example/,")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]
    monkeypatch.delenv("STOREOPS_CORS_ORIGINS")
    assert Settings().cors_origins == []
    # An origin without its scheme would never match: the service refuses to start.
    monkeypatch.setenv("STOREOPS_CORS_ORIGINS", "https://a.example,ops.example.com")
    with pytest.raises(ValidationError, match=r"ops\.example\.com"):
        Settings()


async def test_preflight_answered_for_allowed_origin(browser: httpx.AsyncClient) -> None:
    r = await browser.options("/v1/orders", headers=PREFLIGHT)
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key", "if-match"} <= allowed
    assert "PATCH" in r.headers["access-control-allow-methods"]
    # The second origin was given with a trailing slash; browsers send none.
    other = await browser.options(
        "/v1/orders", headers={**PREFLIGHT, "Origin": "https://other.example"}
    )
    assert other.headers["access-control-allow-origin"] == "https://other.example"


async def test_preflight_refused_for_other_origins(browser: httpx.AsyncClient) -> None:
    r = await browser.options("/v1/orders", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    body = assert_problem(r, 400, "cors_refused")
    assert "origin" in body["detail"]
    assert "access-control-allow-origin" not in r.headers
    r = await browser.options(
        "/v1/orders",
        headers={**PREFLIGHT, "Access-Control-Request-Headers": "x-secret-header"},
    )
    assert_problem(r, 400, "cors_refused")


async def test_no_origins_means_no_cors(client: httpx.AsyncClient) -> None:
    r = await client.options("/v1/orders", headers=PREFLIGHT)
    assert_problem(r, 405, "method_not_allowed")
    assert "access-control-allow-origin" not in r.headers


async def test_responses_expose_headers_to_the_allowed_origin(
    browser: httpx.AsyncClient, api: Api
) -> None:
    store = await api.store()
    r = await browser.get(f"/v1/stores/{store['id']}", headers={**ADMIN, "Origin": ORIGIN})
    assert r.status_code == 200, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    exposed = {h.strip() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"Idempotent-Replayed", "X-Request-ID", "ETag"} <= exposed
    assert r.headers["x-request-id"]
    assert r.headers["etag"] == f'"{store["version"]}"'


async def test_errors_from_inner_middlewares_carry_cors(browser: httpx.AsyncClient) -> None:
    # The body limit and request ids run inside CORS: a browser can read their answers.
    r = await browser.post("/v1/stores", content=b"x" * 5000, headers={**ADMIN, "Origin": ORIGIN})
    assert_problem(r, 413, "payload_too_large")
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["x-request-id"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/v1/stores", "GET, POST"),
        ("PUT", "/v1/stores/1", "GET, PATCH"),
        ("DELETE", "/v1/orders/1", "GET"),
        ("PATCH", "/v1/skus", "GET, POST"),
    ],
)
async def test_405_allow_lists_every_method_of_the_path(
    client: httpx.AsyncClient, method: str, path: str, allow: str
) -> None:
    r = await client.request(method, path, headers=ADMIN)
    body = assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allow
    assert allow in body["detail"]


async def test_single_reads_send_etag_and_if_match_takes_it(api: Api, clock: SettableClock) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 5)
    created = await api.client.post(
        "/v1/orders",
        json=order_body(store["id"], [{"sku_id": sku["id"], "quantity": 1, "unit_price": "1"}]),
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    order = created.json()
    r = await api.client.get(f"/v1/orders/{order['id']}", headers=ADMIN)
    assert r.headers["etag"] == f'"{order["version"]}"'
    listed = await api.client.get("/v1/orders", params={"store_id": store["id"]}, headers=ADMIN)
    assert "etag" not in listed.headers

    url = f"/v1/skus/{sku['id']}"
    etag = (await api.client.get(url, headers=ADMIN)).headers["etag"]
    assert etag == f'"{sku["version"]}"'
    # The ETag as sent, quoted: accepted; the next read carries the new version.
    r = await api.client.patch(url, json={"title": "新标题"}, headers={**ADMIN, "If-Match": etag})
    assert r.status_code == 200, r.text
    etag2 = (await api.client.get(url, headers=ADMIN)).headers["etag"]
    assert etag2 == f'"{r.json()["version"]}"' != etag
    # Stale, in either form: 412.
    r = await api.client.patch(url, json={"title": "x"}, headers={**ADMIN, "If-Match": etag})
    assert_problem(r, 412, "version_mismatch")
    # Weak (a compressing proxy's) and bare forms name the same version.
    r = await api.client.patch(
        url, json={"title": "y"}, headers={**ADMIN, "If-Match": f"W/{etag2}"}
    )
    assert r.status_code == 200, r.text
    bare = str(r.json()["version"])
    r = await api.client.patch(url, json={"title": "z"}, headers={**ADMIN, "If-Match": bare})
    assert r.status_code == 200, r.text


async def test_openapi_documents_etag(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    for path in ("/v1/orders/{order_id}", "/v1/skus/{sku_id}", "/v1/stores/{store_id}"):
        assert "ETag" in schema["paths"][path]["get"]["responses"]["200"]["headers"], path
    assert "headers" not in schema["paths"]["/v1/orders"]["get"]["responses"]["200"]
