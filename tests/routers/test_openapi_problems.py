"""The OpenAPI documents every problem an operation can answer; 405 lists the path's methods."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from app.config import Settings
from app.errors import PROBLEM_MEDIA_TYPE
from app.main import create_app
from app.routers import _common
from tests.helpers import ADMIN, Api, assert_problem


def _operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """Every documented ``/v1`` operation (other tests mount routes of their own)."""
    return [
        (method.upper(), path, operation)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
        if path.startswith("/v1/")
    ]


def _headers(operation: dict[str, Any]) -> set[str]:
    return {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}


def _problem_codes(operation: dict[str, Any], status: int) -> str:
    response = operation["responses"].get(str(status))
    assert response is not None, f"{status} undocumented"
    assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], response
    description: str = response["description"]
    return description


def test_every_v1_operation_documents_401_as_a_problem(app: FastAPI) -> None:
    for method, path, operation in _operations(app):
        assert "invalid_credentials" in _problem_codes(operation, 401), (method, path)


def test_idempotent_writes_document_key_reuse_and_invalid_key(app: FastAPI) -> None:
    writes = [op for op in _operations(app) if "idempotency-key" in _headers(op[2])]
    assert len(writes) >= 15
    for method, path, operation in writes:
        assert "idempotency_key_reused" in _problem_codes(operation, 409), (method, path)
        assert "invalid_idempotency_key" in _problem_codes(operation, 422), (method, path)


def test_if_match_documents_412(app: FastAPI) -> None:
    for method, path, operation in _operations(app):
        if "if-match" in _headers(operation):
            assert "version_mismatch" in _problem_codes(operation, 412), (method, path)


def test_bodies_document_400_and_422_problems(app: FastAPI) -> None:
    bodies = [op for op in _operations(app) if "requestBody" in op[2]]
    assert len(bodies) >= 15
    for _, _, operation in bodies:
        _problem_codes(operation, 400)
        _problem_codes(operation, 422)


def test_route_codes_are_kept_next_to_common_ones(app: FastAPI) -> None:
    operation = app.openapi()["paths"]["/v1/skus"]["post"]
    description = _problem_codes(operation, 409)
    assert "`duplicate_sku`" in description
    assert "`idempotency_key_reused`" in description
    example = operation["responses"]["409"]["content"][PROBLEM_MEDIA_TYPE]["example"]
    assert example["code"] == "duplicate_sku"


def test_no_fastapi_validation_schema_is_documented(app: FastAPI) -> None:
    for method, path, operation in _operations(app):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert "application/json" not in response.get("content", {}), (method, path)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/api-keys", "GET, POST"),
        ("DELETE", "/v1/stores/1", "GET, PATCH"),
        ("OPTIONS", "/v1/skus/1", "GET, PATCH"),
        # /v1/orders/{order_id} matches too, but the literal path is the resource.
        ("OPTIONS", "/v1/orders/bulk", "POST"),
        ("DELETE", "/v1/orders/ship-bulk", "POST"),
    ],
)
async def test_405_allows_every_method_of_the_path(
    api: Api, method: str, path: str, allowed: str
) -> None:
    r = await api.client.request(method, path, headers=ADMIN)
    assert_problem(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allowed


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/orders?placed_from=0", "placed_from"),
        ("/v1/orders?placed_to=1700000000.5", "placed_to"),
        ("/v1/stores/1/traffic/0", "day"),
        ("/v1/stores/1/traffic/20261111", "day"),
    ],
)
async def test_dates_are_iso_only_never_timestamps(api: Api, path: str, field: str) -> None:
    body = assert_problem(await api.client.get(path, headers=ADMIN), 422, "validation_error")
    assert body["errors"][0]["loc"][-1] == field


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/stores/1/traffic/2026-11-11", {"visitors": False, "ad_spend": "0"}),
        ("/v1/stores/1/traffic/2026-11-11", {"visitors": "12", "ad_spend": "0"}),
    ],
)
async def test_integers_are_not_read_from_booleans_or_strings(
    api: Api, path: str, body: dict[str, Any]
) -> None:
    store = await api.store()
    path = path.replace("/stores/1/", f"/stores/{store['id']}/")
    r = await api.client.put(path, json=body, headers=ADMIN)
    assert_problem(r, 422, "validation_error")


def test_a_status_added_for_all_operations_is_documented_everywhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """How another status common to every operation (or every body) gets documented."""
    monkeypatch.setitem(_common.ALL_OPERATIONS, 503, ("database_unavailable",))
    monkeypatch.setitem(_common.WITH_BODY, 413, ("payload_too_large",))
    settings = Settings(database_url="postgresql://fuzz@127.0.0.1/unused", log_level="WARNING")
    app = create_app(settings)
    operations = _operations(app)
    for method, path, operation in operations:
        assert "database_unavailable" in _problem_codes(operation, 503), (method, path)
        if "requestBody" in operation:
            assert "payload_too_large" in _problem_codes(operation, 413), (method, path)
        else:
            assert "413" not in operation["responses"], (method, path)


async def test_an_integral_number_is_an_integer(api: Api) -> None:
    store = await api.store()
    r = await api.client.put(
        f"/v1/stores/{store['id']}/traffic/2026-11-11",
        json={"visitors": 12.0, "ad_spend": "0"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    assert r.json()["visitors"] == 12


def test_optional_parameters_are_never_documented_as_null(app: FastAPI) -> None:
    for method, path, operation in _operations(app):
        for parameter in operation.get("parameters", []):
            assert "anyOf" not in parameter["schema"], (method, path, parameter["name"])


async def test_digits_are_ascii_as_documented(api: Api) -> None:
    """Python's \\d also matches other scripts' digits; the documented pattern does not."""
    store = await api.store()
    r = await api.client.get(f"/v1/stores/{store['id']}/targets/٢٠٢٦-11", headers=ADMIN)
    assert_problem(r, 422, "invalid_month")


async def test_money_digits_are_ascii(api: Api) -> None:
    store = await api.store()
    body = {"store_id": store["id"], "sku_code": "ARABIC-1", "title": "t", "price": "١٢٩.٩٠"}
    r = await api.client.post("/v1/skus", json=body, headers=ADMIN)
    assert_problem(r, 422, "validation_error")
