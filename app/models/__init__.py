"""Table classes only: shape, constraints and indexes (one metadata for Alembic)."""

from app.models.api_key import ApiKey
from app.models.audit import AuditEntry
from app.models.event import Event
from app.models.idempotency import IdempotencyRecord
from app.models.inventory import Reservation, StockMovement, Stocktake, StocktakeLine
from app.models.marketplace import MarketplaceUnmapped, OrderSnapshot, SkuPlatformRef
from app.models.order import DispatchBoardCount, Order, OrderLine, TrackingEvent
from app.models.promotion import (
    OrderPromotion,
    Promotion,
    PromotionBuyer,
    PromotionCounter,
    PromotionSpend,
)
from app.models.report import ReportDay, ReportDayBuyer, report_day_deltas
from app.models.sku import Sku, StockLevel
from app.models.store import Store, StoreTarget, StoreTraffic
from app.models.ticket import Ticket, TicketMessage
from app.models.webhook import Webhook, WebhookDelivery

__all__ = [
    "ApiKey",
    "AuditEntry",
    "DispatchBoardCount",
    "Event",
    "IdempotencyRecord",
    "MarketplaceUnmapped",
    "Order",
    "OrderLine",
    "OrderPromotion",
    "OrderSnapshot",
    "Promotion",
    "PromotionBuyer",
    "PromotionCounter",
    "PromotionSpend",
    "ReportDay",
    "ReportDayBuyer",
    "Reservation",
    "Sku",
    "SkuPlatformRef",
    "StockLevel",
    "StockMovement",
    "Stocktake",
    "StocktakeLine",
    "Store",
    "StoreTarget",
    "StoreTraffic",
    "Ticket",
    "TicketMessage",
    "TrackingEvent",
    "Webhook",
    "WebhookDelivery",
    "report_day_deltas",
]
