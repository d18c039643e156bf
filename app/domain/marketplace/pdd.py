"""Pinduoduo (PDD) orders → snapshots (research §1: pdd.order.list.get /
information.get / number.list.increment.get order objects)."""

from __future__ import annotations

from typing import Any

from app.domain.marketplace.common import (
    Mapped,
    MappedLine,
    MappedShipment,
    MappingError,
    beijing,
    buyer_name,
    buyer_phone,
    discount_for,
    integer,
    join_address,
    line_list,
    map_lines,
    memo,
    obj,
    text,
    yuan,
)

PLATFORM = "pdd"
ENVELOPES = ("order_info_get_response", "order_info")


def external_id(order: Any) -> str | None:
    """``order_sn``, if the object has one (cheap: for the no-op lookup)."""
    if isinstance(order, dict):
        value = order.get("order_sn")
        if isinstance(value, str) and value:
            return value
    return None


def unwrap(order: Any) -> Any:
    """An ``order_info_get_response`` envelope (detail API) → the order object."""
    for key in ENVELOPES:
        if isinstance(order, dict) and len(order) == 1 and isinstance(order.get(key), dict):
            order = order[key]
    return order


def _status(o: dict[str, Any], paid: bool) -> str:
    """DOMAIN statuses from order_status / refund_status / confirm_status / group_status."""
    order_status = integer(o.get("order_status"), "order_status")
    refund = integer(o.get("refund_status", 1), "refund_status")
    confirm = integer(o.get("confirm_status", 1), "confirm_status")
    group = o.get("group_status")
    if order_status not in (1, 2, 3):
        raise MappingError("order_status", f"unknown value {order_status}")
    if refund not in (1, 2, 3, 4):
        raise MappingError("refund_status", f"unknown value {refund}")
    if confirm not in (0, 1, 2):
        raise MappingError("confirm_status", f"unknown value {confirm}")
    if group is not None and group != "":
        group = integer(group, "group_status")
        if group not in (0, 1, 2):
            raise MappingError("group_status", f"unknown value {group}")
    if order_status == 1:
        if confirm == 2 or (refund == 4):
            return "cancelled"  # 已取消, or refunded in full before shipment
        if group == 2:
            return "group_failed"
        if not paid:
            return "pending_payment"
        if refund in (2, 3):
            return "refund_pending"
        if group == 0:
            return "group_pending"
        return "awaiting_shipment"
    return "shipped" if order_status == 2 else "delivered"


def _lines(o: dict[str, Any]) -> list[MappedLine]:
    return map_lines(
        line_list(o, "item_list"),
        "item_list",
        codes=("outer_id", "outer_goods_id"),
        sku_id="sku_id",
        qty="goods_count",
        price="goods_price",
        money=yuan,
    )


def map_order(raw: Any) -> Mapped:
    """One PDD order object → :class:`Mapped` (raises :class:`MappingError`)."""
    o = obj(unwrap(raw), "order")
    order_sn = text(o.get("order_sn"), "order_sn", required=True)
    assert order_sn is not None
    placed_at = beijing(o.get("created_time"), "created_time", required=True)
    assert placed_at is not None
    pay_time = beijing(o.get("pay_time"), "pay_time")
    step = o.get("step_order_info")
    deposit_only = (
        integer(o.get("trade_type", 0), "trade_type") == 1
        and isinstance(step, dict)
        and integer(step.get("step_trade_status", 0), "step_order_info.step_trade_status") != 2
    )
    # A deposit order is paid only once the balance is (research §1.2 step_order_info).
    paid_at = None if deposit_only else pay_time
    status = _status(o, paid_at is not None)
    lines = _lines(o)
    shipping_fee = yuan(o.get("postage"), "postage", default=yuan(0, "postage"))
    paid = yuan(o.get("pay_amount"), "pay_amount")
    discount = discount_for(lines, shipping_fee, paid, "pay_amount")
    group = None
    group_id = text(o.get("group_order_id"), "group_order_id")
    raw_group = o.get("group_status")
    if group_id and group_id != "0" and raw_group not in (None, ""):
        formed = None
        if integer(raw_group, "group_status") == 1:  # 成交时间 = 成团时间 (research §1.1)
            formed = beijing(o.get("confirm_time"), "confirm_time")
        group = {"group_id": group_id, "formed_at": formed}
    promised = beijing(o.get("last_ship_time"), "last_ship_time") or beijing(
        o.get("pre_sale_time"), "pre_sale_time"
    )
    shipment = None
    if status in ("shipped", "delivered"):
        number = text(o.get("tracking_number"), "tracking_number", required=True)
        assert number is not None
        logistics_id = text(o.get("logistics_id"), "logistics_id")
        shipment = MappedShipment(
            carrier_code=logistics_id,
            tracking_number=number,
            shipped_at=beijing(o.get("shipping_time"), "shipping_time"),
        )
    buyer = {
        "name": buyer_name(o.get("receiver_name_mask"), o.get("receiver_name")),
        "phone": buyer_phone(o.get("receiver_phone_mask"), o.get("receiver_phone")),
        "province": buyer_name(o.get("province")),
        "city": buyer_name(o.get("city")),
        # PDD `town` is the county; receiver_address does not repeat province/city/county.
        "address": join_address(
            o.get("town"), o.get("receiver_address_mask") or o.get("receiver_address")
        ),
    }
    return Mapped(
        external_id=order_sn,
        platform_status=status,
        placed_at=placed_at,
        paid_at=paid_at,
        buyer=buyer,
        lines=lines,
        shipping_fee=shipping_fee,
        discount=discount,
        group_buy=group,
        promised_ship_by=promised,
        buyer_memo=memo(o.get("buyer_memo")),
        urged_at=beijing(o.get("urge_shipping_time"), "urge_shipping_time"),
        shipment=shipment,
        delivered_at=beijing(o.get("receive_time"), "receive_time")
        if status == "delivered"
        else None,
    )
