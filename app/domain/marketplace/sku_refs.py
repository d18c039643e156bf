"""SKU ``platform_refs``: the platforms' own SKU ids, unique per store + platform + id."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.domain.errors import Conflict


async def set_refs(
    session: AsyncSession, store_id: int, sku_id: int, refs: list[dict[str, str]]
) -> None:
    """Replace the SKU's refs; ``409 duplicate_platform_ref`` if another SKU has one."""
    await session.execute(
        sa.text("DELETE FROM sku_platform_refs WHERE sku_id = :sku"), {"sku": sku_id}
    )
    wanted = sorted({(r["platform"], r["sku_id"]) for r in refs})
    if not wanted:
        return
    rows = await session.execute(
        sa.text(
            "INSERT INTO sku_platform_refs (store_id, sku_id, platform, platform_sku_id) "
            "SELECT :store, :sku, p, i FROM unnest(CAST(:p AS text[]), CAST(:i AS text[])) "
            "AS v(p, i) ON CONFLICT (store_id, platform, platform_sku_id) DO NOTHING "
            "RETURNING platform, platform_sku_id"
        ),
        {
            "store": store_id,
            "sku": sku_id,
            "p": [w[0] for w in wanted],
            "i": [w[1] for w in wanted],
        },
    )
    taken = set(wanted) - {(r.platform, r.platform_sku_id) for r in rows}
    if taken:
        platform, ident = sorted(taken)[0]
        raise Conflict(
            "duplicate_platform_ref",
            f"Another SKU of the store already maps {platform} sku_id {ident}.",
            errors=[{"loc": ["body", "platform_refs"], "msg": "taken", "type": "duplicate"}],
        )


async def refs_of(session: AsyncSession, sku_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """The refs of each SKU, set-based."""
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not sku_ids:
        return out
    for r in await session.execute(
        sa.text(
            "SELECT sku_id, platform, platform_sku_id FROM sku_platform_refs "
            "WHERE sku_id = ANY(:ids) ORDER BY sku_id, platform, platform_sku_id"
        ),
        {"ids": sku_ids},
    ):
        out[r.sku_id].append({"platform": r.platform, "sku_id": r.platform_sku_id})
    return out
