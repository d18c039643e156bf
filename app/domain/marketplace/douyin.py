"""Douyin 抖店 shop orders → snapshots (research §3: /order/searchList ``shop_order_list[]``
and /order/orderDetail ``shop_order_detail``). Money is fen, times Unix seconds."""

from __future__ import annotations

from typing import Any

from app.domain.marketplace.common import (
    Mapped,
    MappedLine,
    MappedShipment,
    MappingError,
    buyer_name,
    buyer_phone,
    discount_for,
    fen,
    integer,
    join_address,
    line_list,
    map_lines,
    memo,
    obj,
    text,
    unix,
)

PLATFORM = "douyin"
_STATUSES = {
    1: "pending_payment",
    105: "awaiting_shipment",  # 已支付
    2: "awaiting_shipment",  # 备货中
    101: "awaiting_shipment",  # 部分发货: no partial state here (research §6.8)
    3: "shipped",
    4: "cancelled",
    5: "completed",
}


def external_id(order: Any) -> str | None:
    """``order_id`` (19 digits, a string)."""
    if isinstance(order, dict):
        value = order.get("order_id")
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def unwrap(order: Any) -> Any:
    """A ``data.shop_order_detail`` envelope (detail API) → the shop order."""
    if isinstance(order, dict) and len(order) == 1 and isinstance(order.get("data"), dict):
        order = order["data"]
    if (
        isinstance(order, dict)
        and len(order) == 1
        and isinstance(order.get("shop_order_detail"), dict)
    ):
        order = order["shop_order_detail"]
    return order


def _name(node: Any) -> Any:
    return node.get("name") if isinstance(node, dict) else None


def _lines(o: dict[str, Any]) -> list[MappedLine]:
    return map_lines(
        line_list(o, "sku_order_list"),
        "sku_order_list",
        codes=("code", "out_sku_id", "out_product_id"),
        sku_id="sku_id",
        qty="item_num",
        price="origin_amount",
        money=fen,
    )


def map_order(raw: Any) -> Mapped:
    """One Douyin shop order → :class:`Mapped` (raises :class:`MappingError`)."""
    o = obj(unwrap(raw), "order")
    order_id = external_id(o)
    if order_id is None:
        raise MappingError("order_id", "missing")
    code = integer(o.get("order_status"), "order_status")
    if code not in _STATUSES:
        raise MappingError("order_status", f"unknown value {code}")
    status = _STATUSES[code]
    placed_at = unix(o.get("create_time"), "create_time", required=True)
    assert placed_at is not None
    paid_at = unix(o.get("pay_time"), "pay_time")
    items = [i for i in o.get("sku_order_list") or [] if isinstance(i, dict)]
    main_status = o.get("main_status")
    # 定金预售: deposit paid (main_status 103 部分支付) is not paid (research §6.5).
    if main_status == 103 or (code == 1 and any(i.get("trade_type") == 2 for i in items)):
        status, paid_at = "pending_payment", None
    if status == "awaiting_shipment":
        for n, item in enumerate(items):
            info = item.get("after_sale_info")
            if isinstance(info, dict):
                refund = integer(info.get("refund_status", 0), f"sku_order_list[{n}].refund_status")
                if refund == 1:  # 待退款
                    status = "refund_pending"
    if status not in ("pending_payment", "cancelled") and paid_at is None:
        raise MappingError("pay_time", f"missing for order_status {code}")
    lines = _lines(o)
    shipping_fee = fen(o.get("post_amount"), "post_amount", default=0)
    discount = discount_for(
        lines, shipping_fee, fen(o.get("pay_amount"), "pay_amount"), "pay_amount"
    )
    raw_addr = o.get("post_addr")
    addr: dict[str, Any] = raw_addr if isinstance(raw_addr, dict) else {}
    buyer: dict[str, Any] = {
        "name": buyer_name(o.get("mask_post_receiver"), o.get("encrypt_post_receiver")),
        "phone": buyer_phone(o.get("mask_post_tel"), o.get("encrypt_post_tel")),
        "province": buyer_name(_name(addr.get("province"))),
        "city": buyer_name(_name(addr.get("city"))),
        "address": join_address(
            _name(addr.get("town")),
            _name(addr.get("street")),
            o.get("mask_post_addr") if isinstance(o.get("mask_post_addr"), str) else None,
            addr.get("encrypt_detail") or addr.get("detail"),
        ),
    }
    open_id = text(o.get("doudian_open_id"), "doudian_open_id")
    if open_id:
        buyer["platform_buyer_id"] = open_id
    shipment = None
    if status in ("shipped", "completed"):
        infos = o.get("logistics_info")
        info = infos[0] if isinstance(infos, list) and infos else None
        if not isinstance(info, dict):
            raise MappingError("logistics_info", "a shipped order without logistics_info")
        number = text(info.get("tracking_no"), "logistics_info[0].tracking_no", required=True)
        assert number is not None
        shipment = MappedShipment(
            carrier_code=text(info.get("company"), "logistics_info[0].company"),
            tracking_number=number,
            shipped_at=unix(info.get("ship_time"), "logistics_info[0].ship_time")
            or unix(o.get("ship_time"), "ship_time"),
        )
    promised = unix(o.get("appointment_ship_time"), "appointment_ship_time") or unix(
        o.get("exp_ship_time"), "exp_ship_time"
    )
    return Mapped(
        external_id=order_id,
        platform_status=status,
        placed_at=placed_at,
        paid_at=paid_at,
        buyer=buyer,
        lines=lines,
        shipping_fee=shipping_fee,
        discount=discount,
        promised_ship_by=promised,
        buyer_memo=memo(o.get("buyer_words")),
        shipment=shipment,
        delivered_at=unix(o.get("finish_time"), "finish_time") if status == "completed" else None,
    )
