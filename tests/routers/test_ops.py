"""Errors as problem+json, probes, metrics, offline docs, OpenAPI completeness."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tests.helpers import ADMIN, Api, assert_problem


async def test_unknown_route_and_wrong_method(api: Api) -> None:
    assert_problem(await api.client.get("/v1/nope", headers=ADMIN), 404, "not_found")
    assert_problem(await api.client.delete("/v1/stores", headers=ADMIN), 405, "method_not_allowed")


async def test_malformed_json(api: Api) -> None:
    r = await api.client.post(
        "/v1/stores",
        content=b'{"code": "x", ',
        headers={**ADMIN, "Content-Type": "application/json"},
    )
    body = assert_problem(r, 422, "malformed_json")
    assert body["errors"]


async def test_wrong_body_type(api: Api) -> None:
    r = await api.client.post("/v1/stores", json=[1, 2], headers=ADMIN)
    assert_problem(r, 422, "validation_error")


async def test_unexpected_error_is_opaque_500(api: Api, app: FastAPI) -> None:
    async def boom() -> dict[str, Any]:
        raise RuntimeError("secret internals")

    app.add_api_route("/__test/boom", boom)
    r = await api.client.get("/__test/boom")
    body = assert_problem(r, 500, "internal_error")
    assert "secret" not in r.text
    assert "Traceback" not in r.text
    assert body["request_id"] == r.headers["x-request-id"]


async def test_probes(api: Api) -> None:
    r = await api.client.get("/healthz")
    assert r.json() == {"status": "ok"}
    r = await api.client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ready"


async def test_metrics_count_routes(api: Api) -> None:
    await api.client.get("/v1/stores", headers=ADMIN)
    r = await api.client.get("/metrics")
    assert r.status_code == 200
    assert 'storeops_http_requests_total{method="GET",route="/v1/stores",status="200"}' in r.text
    assert "storeops_http_request_duration_seconds_bucket" in r.text


async def test_docs_work_offline(api: Api) -> None:
    r = await api.client.get("/docs")
    assert r.status_code == 200
    html = r.text
    for cdn in ("cdn.", "jsdelivr", "unpkg", "googleapis", "http://", "https://"):
        assert cdn not in html, cdn
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs-assets/{asset}" in html
        served = await api.client.get(f"/docs-assets/{asset}")
        assert served.status_code == 200
        assert len(served.content) > 1000
    assert (await api.client.get("/docs-assets/../app/main.py")).status_code == 404


async def test_openapi_documents_every_operation(app: FastAPI) -> None:
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    assert "Problem" in schemas
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("description") or op.get("summary"), (method, path)
            body = op.get("requestBody")
            if body:
                ref = body["content"]["application/json"]["schema"].get("$ref", "")
                target = schemas[ref.rsplit("/", 1)[-1]] if ref else {}
                assert target.get("examples"), f"no request example for {method} {path}"
            if path.startswith("/v1/"):
                assert any(code.startswith("4") for code in op["responses"]), (method, path)


async def test_request_id_is_echoed(api: Api) -> None:
    r = await api.client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
