"""JD (JOS POP) orders → snapshots (research §4: jingdong.pop.order.search
``orderInfoList[]``; camelCase, yuan strings, ``0001-01-01 00:00:00`` = not set)."""

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
    join_address,
    line_list,
    map_lines,
    memo,
    obj,
    text,
    yuan,
)

PLATFORM = "jd"
_STATUSES = {
    "WAIT_SELLER_STOCK_OUT": "awaiting_shipment",
    "WAIT_SELLER_DELIVERY": "awaiting_shipment",
    # Paused / locked (after-sales in progress, meaning disputed §4.4): held, never shipped.
    "POP_ORDER_PAUSE": "refund_pending",
    "LOCKED": "refund_pending",
    "WAIT_GOODS_RECEIVE_CONFIRM": "shipped",
    "FINISHED_L": "completed",
    "TRADE_CANCELED": "cancelled",
}
_SELF_DELIVERY = "1274"  # 厂家自送: no waybill (research §4.6)


def external_id(order: Any) -> str | None:
    """``orderId`` as a string."""
    if isinstance(order, dict):
        value = order.get("orderId")
        if isinstance(value, str) and value:
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return None


def unwrap(order: Any) -> Any:
    """JD orders come bare from ``orderInfoList[]``."""
    return order


def _lines(o: dict[str, Any]) -> list[MappedLine]:
    # outerSkuId is "not guaranteed" (research §4.3): the JD skuId matches then.
    return map_lines(
        line_list(o, "itemInfoList"),
        "itemInfoList",
        codes=("outerSkuId",),
        sku_id="skuId",
        qty="itemTotal",
        price="jdPrice",
        money=yuan,
    )


def map_order(raw: Any) -> Mapped:
    """One JD POP order → :class:`Mapped` (raises :class:`MappingError`)."""
    o = obj(unwrap(raw), "order")
    order_id = external_id(o)
    if order_id is None:
        raise MappingError("orderId", "missing")
    state = text(o.get("orderState"), "orderState", required=True)
    if state not in _STATUSES:
        raise MappingError("orderState", f"unknown value {state}")
    status = _STATUSES[state]
    placed_at = beijing(o.get("orderStartTime"), "orderStartTime", required=True)
    assert placed_at is not None
    paid_at = beijing(o.get("paymentConfirmTime"), "paymentConfirmTime")
    if status != "cancelled" and paid_at is None:
        raise MappingError("paymentConfirmTime", f"missing for {state}")
    lines = _lines(o)
    shipping_fee = yuan(o.get("freightPrice"), "freightPrice", default=yuan(0, "freightPrice"))
    # orderPayment excludes the balance used, which is money paid, not a discount (§4.2).
    paid = yuan(o.get("orderPayment"), "orderPayment") + yuan(
        o.get("balanceUsed"), "balanceUsed", default=yuan(0, "balanceUsed")
    )
    discount = discount_for(lines, shipping_fee, paid, "orderPayment")
    raw_c = o.get("consigneeInfo")
    c: dict[str, Any] = raw_c if isinstance(raw_c, dict) else {}
    buyer: dict[str, Any] = {
        "name": buyer_name(c.get("fullname")),
        "phone": buyer_phone(c.get("mobile"), c.get("telephone")),
        "province": buyer_name(c.get("province")),
        "city": buyer_name(c.get("city")),
        "address": join_address(c.get("county"), c.get("town"), c.get("fullAddress")),
    }
    buyer_id = text(o.get("openIdBuyer"), "openIdBuyer") or text(o.get("pin"), "pin")
    if buyer_id:
        buyer["platform_buyer_id"] = buyer_id
    shipment = None
    if status in ("shipped", "completed"):
        carrier = text(o.get("logisticsId"), "logisticsId")
        waybill = text(o.get("waybill"), "waybill")
        if carrier == _SELF_DELIVERY or not waybill:
            raise MappingError("waybill", "a shipped order without a waybill number (厂家自送?)")
        # Several waybills: `|` between carriers, `,` within one (§4.6); the first is kept.
        first = waybill.split("|")[0].split(",")[0].strip()
        shipment = MappedShipment(
            carrier_code=(carrier or "").split("|")[0] or None,
            tracking_number=first,
            shipped_at=None,
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
        buyer_memo=memo(o.get("orderRemark")),
        shipment=shipment,
        delivered_at=beijing(o.get("orderEndTime"), "orderEndTime")
        if status == "completed"
        else None,
    )
