"""Errors that say what to fix: Content-Type, offsets, event types, unknown query parameters,
and one title per status."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import orjson
import pytest
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.domain.events.service import EVENT_TYPES
from app.errors import status_title
from app.routing import TransactionalRoute, _query_names
from tests.helpers import ADMIN, Api, assert_problem
from tests.routers.test_orders import order_body, stocked_sku

OFFSET_EXAMPLE = "2026-11-11T10:00:00+08:00"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_body_without_json_content_type_names_the_header(
    api: Api, content_type: str | None
) -> None:
    body = orjson.dumps({"code": "x1", "name": "店", "platform": "pdd"})
    headers = {**ADMIN, "Content-Type": content_type} if content_type else ADMIN
    r = await api.client.post("/v1/stores", content=body, headers=headers)
    if content_type is None:
        # httpx sends no Content-Type for raw bytes: the header is missing altogether.
        assert "content-type" not in r.request.headers
    problem = assert_problem(r, 415, "unsupported_media_type")
    assert "Content-Type: application/json" in problem["detail"]
    assert problem["errors"][0]["loc"] == ["header", "Content-Type"]


async def test_json_variants_and_bodiless_writes_are_accepted(api: Api) -> None:
    store = await api.store()
    r = await api.client.patch(
        f"/v1/stores/{store['id']}",
        content=orjson.dumps({"name": "新店名"}),
        headers={**ADMIN, "Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    r = await api.client.patch(
        f"/v1/stores/{store['id']}",
        content=orjson.dumps({"name": "新店名 2"}),
        headers={**ADMIN, "Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text


async def test_time_without_offset_shows_an_example(api: Api) -> None:
    store = await api.store()
    sku = await stocked_sku(api, store["id"], 1)
    body = order_body(store["id"], [{"sku_id": sku["id"], "quantity": 1, "unit_price": "1"}])
    body["placed_at"] = "2026-11-11T10:00:00"
    r = await api.client.post("/v1/orders", json=body, headers=ADMIN)
    problem = assert_problem(r, 422, "validation_error")
    [error] = problem["errors"]
    assert error["loc"] == ["body", "placed_at"]
    assert OFFSET_EXAMPLE in error["msg"]
    # Query parameters too.
    r = await api.client.get(
        "/v1/orders", params={"placed_from": "2026-11-11T10:00:00"}, headers=ADMIN
    )
    assert OFFSET_EXAMPLE in assert_problem(r, 422)["errors"][0]["msg"]


async def test_unknown_event_type_lists_the_valid_ones(api: Api) -> None:
    r = await api.client.get("/v1/events", params={"type": "order.shiped"}, headers=ADMIN)
    problem = assert_problem(r, 422, "unknown_event_type")
    assert "order.shiped" in problem["detail"]
    for name in EVENT_TYPES:
        assert name in problem["detail"]
    assert problem["errors"][0]["loc"] == ["query", "type"]


async def test_openapi_enumerates_event_types(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    [param] = [p for p in schema["paths"]["/v1/events"]["get"]["parameters"] if p["name"] == "type"]
    assert sorted(param["schema"]["items"]["enum"]) == sorted(EVENT_TYPES)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/orders", {"state": ""}),
        ("/v1/orders", {"status": "cancelled", "store": "1"}),
        ("/v1/skus", {"sku": "A"}),
        ("/v1/events", {"types": "order.created"}),
        ("/v1/stores/1", {"verbose": "1"}),
    ],
)
async def test_unknown_query_parameter_is_422_naming_it(
    client: httpx.AsyncClient, path: str, params: dict[str, str]
) -> None:
    r = await client.get(path, params=params, headers=ADMIN)
    problem = assert_problem(r, 422, "unknown_query_parameter")
    unknown = [k for k in params if k not in ("status",)]
    assert [e["loc"] for e in problem["errors"]] == [["query", k] for k in unknown]
    for name in unknown:
        assert f"'{name}'" in problem["detail"]


async def test_known_query_parameters_still_work(api: Api) -> None:
    store = await api.store()
    r = await api.client.get(
        "/v1/orders", params={"store_id": store["id"], "status": "cancelled"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


async def test_unknown_query_parameter_on_writes_too(api: Api) -> None:
    r = await api.client.post(
        "/v1/stores",
        params={"dry_run": "1"},
        json={"code": "x2", "name": "店", "platform": "pdd"},
        headers=ADMIN,
    )
    assert_problem(r, 422, "unknown_query_parameter")


async def _problems(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    """One error of each kind the service makes: domain, validation, routing, auth."""
    responses = [
        await client.get("/v1/orders/999999999", headers=ADMIN),  # domain 404
        await client.get("/v1/no-such-route", headers=ADMIN),  # routing 404
        await client.delete("/v1/stores", headers=ADMIN),  # 405
        await client.post("/v1/stores", json={"code": ""}, headers=ADMIN),  # validation 422
        await client.get("/v1/orders", params={"x": "1"}, headers=ADMIN),  # 422
        await client.get(
            "/v1/events", params={"after": "abc"}, headers=ADMIN
        ),  # domain 422 (RuleViolation)
        await client.get("/v1/orders"),  # 401
        await client.post(
            "/v1/stores", content=b"{", headers={**ADMIN, "Content-Type": "application/json"}
        ),  # malformed JSON 422
    ]
    return [r.json() for r in responses]


async def test_one_title_per_status_everywhere(client: httpx.AsyncClient) -> None:
    seen: dict[int, set[str]] = {}
    for problem in await _problems(client):
        seen.setdefault(problem["status"], set()).add(problem["title"])
    assert {404, 405, 422, 401} <= seen.keys()
    for status, titles in seen.items():
        assert titles == {status_title(status)}, status
    # The OpenAPI examples use the same titles.
    schema = (await client.get("/openapi.json")).json()
    for path_item in schema["paths"].values():
        for operation in path_item.values():
            for code, response in operation.get("responses", {}).items():
                for media in response.get("content", {}).values():
                    example = media.get("example")
                    if isinstance(example, dict) and "title" in example and code.isdigit():
                        assert example["title"] == status_title(int(code)), (code, example)


async def test_new_statuses_are_documented(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for path_item in paths.values():
        for method, operation in path_item.items():
            responses = operation["responses"]
            # Unknown query parameters: every operation can answer 422 (as problem+json).
            assert responses["422"]["content"]["application/problem+json"]["schema"] == (
                problem_ref
            ), (method, operation["operationId"])
            if "requestBody" in operation:
                assert "415" in responses, operation["operationId"]


class _Filters(BaseModel):
    status: str | None = None
    from_: str | None = Field(default=None, alias="from")


def test_query_parameters_declared_as_a_model_are_known() -> None:
    router = APIRouter(route_class=TransactionalRoute)

    @router.get("/x")
    async def endpoint(filters: Annotated[_Filters, Query()], limit: int = 1) -> None:
        """A route with a query model."""

    assert _query_names(router.routes[0].dependant) == {"status", "from", "limit"}  # type: ignore[attr-defined]
