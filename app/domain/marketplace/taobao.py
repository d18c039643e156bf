"""Taobao / Tmall (TOP) trades → snapshots (research §2: taobao.trades.sold.get and
taobao.trade.fullinfo.get; lines nested as ``orders: {order: [...]}`` or as a plain list)."""

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
    map_lines,
    memo,
    obj,
    text,
    yuan,
)

PLATFORM = "taobao"
_PENDING = frozenset(
    {"TRADE_NO_CREATE_PAY", "WAIT_BUYER_PAY", "PAY_PENDING", "WAIT_PRE_AUTH_CONFIRM"}
)
_AWAITING = frozenset({"WAIT_SELLER_SEND_GOODS", "SELLER_CONSIGNED_PART"})
_STATUSES = {
    **dict.fromkeys(_PENDING, "pending_payment"),
    **dict.fromkeys(_AWAITING, "awaiting_shipment"),
    "PAID_FORBID_CONSIGN": "group_pending",  # 拼团中: paid, must not ship
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "delivered",
    "TRADE_FINISHED": "completed",
    "TRADE_CLOSED": "cancelled",
    "TRADE_CLOSED_BY_TAOBAO": "cancelled",
}
# A line refund still open holds the order (research §2.3 refund_status).
_OPEN_REFUNDS = frozenset(
    {"WAIT_SELLER_AGREE", "WAIT_BUYER_RETURN_GOODS", "WAIT_SELLER_CONFIRM_GOODS"}
)
_KNOWN_REFUNDS = _OPEN_REFUNDS | {"SELLER_REFUSE_BUYER", "CLOSED", "SUCCESS", "NO_REFUND"}
_DEPOSIT_ONLY = frozenset({"FRONT_NOPAID_FINAL_NOPAID", "FRONT_PAID_FINAL_NOPAID"})


def external_id(trade: Any) -> str | None:
    """``tid_str``, else ``tid`` as digits (int64: never through a float)."""
    if isinstance(trade, dict):
        for key in ("tid_str", "tid"):
            value = trade.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
    return None


def unwrap(trade: Any) -> Any:
    """A ``trade_fullinfo_get_response``/``trade`` envelope → the trade object."""
    for key in ("trade_fullinfo_get_response", "trade"):
        if isinstance(trade, dict) and len(trade) == 1 and isinstance(trade.get(key), dict):
            trade = trade[key]
    return trade


def _order_list(t: dict[str, Any]) -> list[Any]:
    """The trade's lines: ``orders.order`` (TOP default JSON) or ``orders`` (flat shape)."""
    orders = t.get("orders")
    if isinstance(orders, dict):
        orders = orders.get("order")
    if not isinstance(orders, list) or not orders:
        raise MappingError("orders", "no lines")
    return orders


def _lines(orders: list[Any]) -> list[MappedLine]:
    return map_lines(
        orders,
        "orders",
        codes=("outer_sku_id", "outer_iid"),
        sku_id="sku_id",
        qty="num",
        price="price",
        money=yuan,
    )


def _shipment(t: dict[str, Any], orders: list[Any]) -> MappedShipment:
    for raw in orders:
        if isinstance(raw, dict) and text(raw.get("invoice_no"), "orders.invoice_no"):
            return MappedShipment(
                carrier_code=text(raw.get("logistics_company"), "orders.logistics_company"),
                tracking_number=str(raw["invoice_no"]),
                shipped_at=beijing(raw.get("consign_time"), "orders.consign_time")
                or beijing(t.get("consign_time"), "consign_time"),
            )
    raise MappingError("orders.invoice_no", "a shipped trade without a waybill number")


def map_order(raw: Any) -> Mapped:
    """One Taobao/Tmall trade → :class:`Mapped` (raises :class:`MappingError`)."""
    t = obj(unwrap(raw), "trade")
    tid = external_id(t)
    if tid is None:
        raise MappingError("tid", "missing")
    raw_status = text(t.get("status"), "status", required=True)
    if raw_status not in _STATUSES:
        raise MappingError("status", f"unknown value {raw_status}")
    status = _STATUSES[raw_status]
    placed_at = beijing(t.get("created"), "created", required=True)
    assert placed_at is not None
    paid_at = beijing(t.get("pay_time"), "pay_time")
    step = t.get("step_trade_status")
    if t.get("type") == "step" and step in _DEPOSIT_ONLY:
        status, paid_at = "pending_payment", None  # deposit paid, balance not yet
    elif step == "FRONT_PAID_FRONT_FORFEITED":
        status = "cancelled"
    orders = _order_list(t)
    lines = _lines(orders)
    for n, line in enumerate(orders):
        refund = line.get("refund_status") if isinstance(line, dict) else None
        if refund not in (None, "") and refund not in _KNOWN_REFUNDS:
            raise MappingError(f"orders[{n}].refund_status", f"unknown value {refund}")
        if refund in _OPEN_REFUNDS and status == "awaiting_shipment":
            status = "refund_pending"
    if status != "pending_payment" and status != "cancelled" and paid_at is None:
        raise MappingError("pay_time", f"missing for a {raw_status} trade")
    shipping_fee = yuan(t.get("post_fee"), "post_fee", default=yuan(0, "post_fee"))
    # discount = goods + postage − payment (research §2.3): our total equals `payment`.
    discount = discount_for(lines, shipping_fee, yuan(t.get("payment"), "payment"), "payment")
    group = {"group_id": tid, "formed_at": None} if raw_status == "PAID_FORBID_CONSIGN" else None
    promised = None
    if status == "pending_payment" and isinstance(t.get("send_time"), str):
        # Pre-sale promised ship time; its format is unconfirmed (§7), so read it only
        # when it is the TOP date-time format.
        try:
            promised = beijing(t.get("send_time"), "send_time")
        except MappingError:
            promised = None
    city = t.get("receiver_city") or t.get("receiver_district")  # 省直辖县 (§2.2)
    buyer: dict[str, Any] = {
        "name": buyer_name(t.get("receiver_name")),
        "phone": buyer_phone(t.get("receiver_mobile"), t.get("receiver_phone")),
        "province": buyer_name(t.get("receiver_state")),
        "city": buyer_name(city),
        "address": join_address(
            t.get("receiver_district") if t.get("receiver_city") else None,
            t.get("receiver_town"),
            t.get("receiver_address"),
        ),
    }
    open_uid = text(t.get("buyer_open_uid"), "buyer_open_uid")
    if open_uid:
        buyer["platform_buyer_id"] = open_uid
    shipment = _shipment(t, orders) if status in ("shipped", "delivered", "completed") else None
    return Mapped(
        external_id=tid,
        platform_status=status,
        placed_at=placed_at,
        paid_at=paid_at,
        buyer=buyer,
        lines=lines,
        shipping_fee=shipping_fee,
        discount=discount,
        group_buy=group,
        promised_ship_by=promised,
        buyer_memo=memo(t.get("buyer_message")) or memo(t.get("buyer_memo")),
        shipment=shipment,
        delivered_at=beijing(t.get("end_time"), "end_time") if status == "completed" else None,
    )
