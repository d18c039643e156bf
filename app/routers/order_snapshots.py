"""``/v1/orders/by-external``: the order as the platform sees it now (marketplace sync)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Response
from pydantic import ValidationError

from app.auth import Principal, Role, require
from app.domain.errors import RuleViolation
from app.domain.marketplace import sync
from app.domain.marketplace.schemas import SnapshotBulkIn, SnapshotBulkItem, SnapshotIn, SyncResults
from app.domain.order import queries, read
from app.domain.order.schemas import OrderPublic
from app.errors import item_problem
from app.routers._common import ClockDep, IdempotencyKeyHeader, Session, path_id, problems
from app.routing import TransactionalRoute, batch

router = APIRouter(prefix="/v1/orders", tags=["marketplace"], route_class=TransactionalRoute)

Syncer = Annotated[Principal, Depends(require(Role.ADMIN, Role.OPERATOR, Role.INTEGRATION))]
StoreIdPath = Annotated[str, Path(description="Store id.", examples=["1"])]
ExternalIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="The marketplace order number.",
        examples=["241111-538204917730512"],
    ),
]


def _as_domain(error: Any) -> Exception:
    if isinstance(error, ValidationError):
        return RuleViolation(
            "validation_error",
            "The order has invalid fields; see errors.",
            errors=[
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in error.errors(include_url=False, include_context=False)
            ],
        )
    assert isinstance(error, Exception)
    return error


@router.put(
    "/by-external/{store_id}/{external_id}",
    status_code=201,
    response_model=OrderPublic,
    responses={
        200: {"description": "Known order: the transitions to the snapshot applied (or none)."},
        **problems(401, 403, 404, 409, 422, codes={409: "sync_conflict", 422: "unknown_sku"}),
    },
)
async def put_snapshot(
    store_id: StoreIdPath,
    external_id: ExternalIdPath,
    body: SnapshotIn,
    principal: Syncer,
    session: Session,
    clock: ClockDep,
    response: Response,
    _: IdempotencyKeyHeader = None,
) -> OrderPublic:
    """Create the order (201) or apply the transitions that lead to the platform's state
    (200; the same snapshot again writes nothing). A snapshot behind the order or
    contradicting it is `409 sync_conflict` with both states, and changes nothing."""
    now = clock.now()
    item = sync.SnapItem(
        0, path_id(store_id, "store"), external_id, body, sync.snapshot_digest(body)
    )
    outcome = (await sync.apply(session, principal, [item], now))[0]
    if outcome.error is not None:
        raise _as_domain(outcome.error)
    assert outcome.order_id is not None
    response.status_code = outcome.status
    order = await queries.get_visible(session, principal, outcome.order_id)
    return (await read.read_models(session, [order], now))[0]


@router.put(
    "/by-external",
    response_model=SyncResults,
    response_model_exclude_none=True,
    responses=problems(401, 403, 422),
)
@batch
async def put_snapshots(
    body: SnapshotBulkIn,
    principal: Syncer,
    session: Session,
    clock: ClockDep,
    _: IdempotencyKeyHeader = None,
) -> Response:
    """Up to 1,000 snapshots `{store_id, external_id, ...}`: one result per item, in input
    order (201 created, 200 applied or unchanged, 409 `sync_conflict`, 422 …)."""
    now = clock.now()
    results: dict[int, dict[str, Any]] = {}
    items: list[sync.SnapItem] = []
    for n, raw in enumerate(body.orders):
        try:
            snap = SnapshotBulkItem.model_validate(raw)
        except ValidationError as exc:
            results[n] = {"index": n, "status": 422, "error": item_problem(exc)}
            continue
        items.append(
            sync.SnapItem(n, snap.store_id, snap.external_id, snap, sync.snapshot_digest(snap))
        )
    for o in await sync.apply(session, principal, items, now):
        if o.error is None:
            results[o.index] = {"index": o.index, "status": o.status, "id": str(o.order_id)}
        else:
            results[o.index] = {
                "index": o.index,
                "status": o.status,
                "error": item_problem(o.error),
            }
            if o.order_id is not None:
                results[o.index]["id"] = str(o.order_id)
    ordered = [results[n] for n in range(len(body.orders))]
    return Response(orjson.dumps({"results": ordered}), media_type="application/json")
