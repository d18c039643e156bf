"""Stores: creation with platform defaults, policy overrides, reads, patch, targets, traffic."""

from __future__ import annotations

import pytest

from tests.helpers import ADMIN, Api, assert_problem, unique


@pytest.mark.parametrize(
    ("platform", "rate", "minimum", "maximum"),
    [
        ("pdd", "0.00", "3.00", "3.00"),
        ("taobao", "0.10", "5.00", "100.00"),
        ("tmall", "0.10", "5.00", "100.00"),
        ("douyin", "0.00", "10.00", "10.00"),
        ("jd", "0.00", "0.00", "0.00"),
        ("other", "0.00", "0.00", "0.00"),
    ],
)
async def test_platform_default_policy(
    api: Api, platform: str, rate: str, minimum: str, maximum: str
) -> None:
    store = await api.store(platform)
    policy = store["dispatch_policy"]
    assert policy["dispatch_hours"] == 48
    assert policy["internal_target_hours"] == 24
    assert policy["pickup_grace_hours"] == 24
    assert policy["late_penalty"] == {"rate": rate, "min": minimum, "max": maximum}
    assert store["timezone"] == "Asia/Shanghai"
    assert store["version"] == 1
    assert isinstance(store["id"], str)


async def test_overrides_merge_with_defaults(api: Api) -> None:
    store = await api.store(
        "taobao", dispatch_policy={"dispatch_hours": 72, "late_penalty": {"max": "50.00"}}
    )
    policy = store["dispatch_policy"]
    assert policy["dispatch_hours"] == 72
    assert policy["internal_target_hours"] == 24
    assert policy["late_penalty"] == {"rate": "0.10", "min": "5.00", "max": "50.00"}


async def test_create_rejects_bad_input(api: Api) -> None:
    bad = [
        {"code": "x y", "name": "n", "platform": "pdd"},
        {"code": unique("s"), "name": "n", "platform": "amazon"},
        {"code": unique("s"), "name": "n", "platform": "pdd", "timezone": "Mars/Base"},
        {"code": unique("s"), "name": "", "platform": "pdd"},
        {"code": unique("s"), "name": "n", "platform": "pdd", "extra": 1},
        {
            "code": unique("s"),
            "name": "n",
            "platform": "pdd",
            "dispatch_policy": {"dispatch_hours": 0},
        },
    ]
    for body in bad:
        r = await api.client.post("/v1/stores", json=body, headers=ADMIN)
        problem = assert_problem(r, 422, "validation_error")
        assert problem["errors"], problem
    r = await api.client.post(
        "/v1/stores",
        json={
            "code": unique("s"),
            "name": "n",
            "platform": "pdd",
            "dispatch_policy": {"dispatch_hours": 12, "internal_target_hours": 24},
        },
        headers=ADMIN,
    )
    assert_problem(r, 422, "invalid_dispatch_policy")


async def test_duplicate_code_is_409(api: Api) -> None:
    store = await api.store()
    r = await api.client.post(
        "/v1/stores", json={"code": store["code"], "name": "again", "platform": "jd"}, headers=ADMIN
    )
    assert_problem(r, 409, "duplicate_store_code")


async def test_get_patch_with_if_match(api: Api) -> None:
    store = await api.store("pdd")
    sid = store["id"]
    r = await api.client.get(f"/v1/stores/{sid}", headers=ADMIN)
    assert r.status_code == 200
    assert r.json()["name"] == "测试店铺"
    assert "\\u" not in r.text
    assert "测试店铺" in r.text

    r = await api.client.patch(
        f"/v1/stores/{sid}",
        json={"name": "新名字", "dispatch_policy": {"internal_target_hours": 12}},
        headers={**ADMIN, "If-Match": "1"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2
    assert r.json()["dispatch_policy"]["internal_target_hours"] == 12

    r = await api.client.patch(
        f"/v1/stores/{sid}", json={"name": "stale"}, headers={**ADMIN, "If-Match": "1"}
    )
    assert_problem(r, 412, "version_mismatch")

    r = await api.client.patch(f"/v1/stores/{sid}", json={"platform": "taobao"}, headers=ADMIN)
    assert r.json()["dispatch_policy"]["late_penalty"]["rate"] == "0.10"
    assert r.json()["dispatch_policy"]["internal_target_hours"] == 12
    r = await api.client.patch(
        f"/v1/stores/{sid}", json={"reset_dispatch_policy": True}, headers=ADMIN
    )
    assert r.json()["dispatch_policy"]["internal_target_hours"] == 24


async def test_unknown_store_is_404(api: Api) -> None:
    for sid in ("999999999", "abc", "0", "-1"):
        r = await api.client.get(f"/v1/stores/{sid}", headers=ADMIN)
        assert_problem(r, 404, "store_not_found")


async def test_targets_and_traffic(api: Api) -> None:
    sid = (await api.store())["id"]
    r = await api.client.put(
        f"/v1/stores/{sid}/targets/2026-11", json={"sales_target": "1500000"}, headers=ADMIN
    )
    assert r.status_code == 200, r.text
    assert r.json()["sales_target"] == "1500000.00"
    assert r.json()["month"] == "2026-11"
    r = await api.client.put(
        f"/v1/stores/{sid}/targets/2026-11", json={"sales_target": "1600000.50"}, headers=ADMIN
    )
    r = await api.client.get(f"/v1/stores/{sid}/targets/2026-11", headers=ADMIN)
    assert r.json()["sales_target"] == "1600000.50"
    for month in ("2026-13", "2026-1", "26-11", "x"):
        r = await api.client.put(
            f"/v1/stores/{sid}/targets/{month}", json={"sales_target": "1"}, headers=ADMIN
        )
        assert_problem(r, 422, "invalid_month")

    r = await api.client.put(
        f"/v1/stores/{sid}/traffic/2026-11-11",
        json={"visitors": 12840, "ad_spend": "3200.50"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    assert r.json() | {"updated_at": None} == {
        "store_id": sid,
        "date": "2026-11-11",
        "visitors": 12840,
        "ad_spend": "3200.50",
        "updated_at": None,
    }
    r = await api.client.put(
        f"/v1/stores/{sid}/traffic/2026-02-30", json={"visitors": 1}, headers=ADMIN
    )
    assert_problem(r, 422)
    r = await api.client.put(
        f"/v1/stores/{sid}/traffic/2026-11-12", json={"visitors": -1}, headers=ADMIN
    )
    assert_problem(r, 422)
    r = await api.client.get(f"/v1/stores/{sid}/traffic/2026-11-12", headers=ADMIN)
    assert_problem(r, 404, "traffic_not_found")
