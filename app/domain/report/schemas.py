"""Shapes of the daily and range reports (API.md "Reports"; docs/reports.md)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from app.domain.report.rules import Figures, money
from app.domain.types import Id, Money


def _rate_number(value: Decimal) -> float:
    # Four places already (rules.rate); the shortest float that reads back as that decimal.
    return float(value)


Rate = Annotated[
    Decimal,
    PlainSerializer(_rate_number, return_type=float, when_used="json"),
    WithJsonSchema({"type": "number", "examples": [0.9731]}),
]
"""A ratio as a JSON number with at most four decimal places."""


def _rate(description: str) -> Any:
    return Field(description=description + " Four places; null when the divisor is 0.")


class DayFigures(BaseModel):
    """Every figure of DOMAIN.md §6 for a day (or, as totals, for the days of a range)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "date": "2026-11-11",
                    "orders_placed": 1200,
                    "orders_paid": 1130,
                    "payment_rate": 0.9417,
                    "gmv": "146900.00",
                    "aov": "130.00",
                    "buyers": 1090,
                    "visitors": 25000,
                    "conversion_rate": 0.0436,
                    "shipped": 1010,
                    "shipped_on_time": 983,
                    "on_time_dispatch_rate": 0.9733,
                    "overdue": 27,
                    "penalties": "81.00",
                    "refunds": 12,
                    "refund_amount": "1480.50",
                    "refund_rate": 0.0106,
                    "tickets_opened": 40,
                    "tickets_resolved": 36,
                    "tickets_resolved_within_sla": 35,
                    "ticket_sla_rate": 0.9722,
                    "target": "50000.00",
                    "target_progress": 2.938,
                    "ad_spend": "3200.00",
                }
            ]
        }
    )

    date: str = Field(
        description="The store's local day (YYYY-MM-DD); `total` on a range's totals.",
        examples=["2026-11-11"],
    )
    orders_placed: int = Field(description="Orders placed that day (by `placed_at`).")
    orders_paid: int = Field(description="Orders paid that day (by `paid_at`).")
    payment_rate: Rate | None = _rate(
        "orders_paid ÷ orders_placed (can pass 1 when earlier orders are paid that day)."
    )
    gmv: Money = Field(description="Sum of the totals of the orders paid that day.")
    aov: Money | None = Field(description="客单价: gmv ÷ orders_paid; null without paid orders.")
    buyers: int = Field(
        description="Distinct buyers (by phone) who paid that day; on totals, the sum of the "
        "days (buyer-days)."
    )
    visitors: int = Field(description="Visitors pushed by the ERP for the day (0 if none).")
    conversion_rate: Rate | None = _rate("buyers ÷ visitors.")
    shipped: int = Field(description="Orders shipped that day (by `shipped_at`).")
    shipped_on_time: int = Field(description="Of those, shipped by their dispatch deadline.")
    on_time_dispatch_rate: Rate | None = _rate("shipped_on_time ÷ shipped.")
    overdue: int = Field(
        description="Orders whose dispatch deadline passed that day unshipped (shipped late, "
        "cancelled after it, or still awaiting shipment)."
    )
    penalties: Money = Field(
        description="Late-shipment penalties of those orders (recorded, or estimated by the "
        "store's policy while the sweep has not recorded them yet)."
    )
    refunds: int = Field(description="Refunds made that day (by refund time).")
    refund_amount: Money = Field(description="Amount refunded that day.")
    refund_rate: Rate | None = _rate("refunds ÷ orders_paid.")
    tickets_opened: int = Field(description="Tickets opened that day (by `opened_at`).")
    tickets_resolved: int = Field(description="Tickets resolved that day.")
    tickets_resolved_within_sla: int = Field(
        description="Of those, resolved by their resolution due time."
    )
    ticket_sla_rate: Rate | None = _rate("tickets_resolved_within_sla ÷ tickets_resolved.")
    target: Money | None = Field(
        description="The day's share of the monthly sales target (target ÷ days of the month); "
        "on totals the sum of the shares; null when no target is set."
    )
    target_progress: Rate | None = _rate("gmv ÷ target.")
    ad_spend: Money = Field(description="Ad spend pushed by the ERP for the day (0.00 if none).")

    @classmethod
    def of(cls, label: str, f: Figures) -> DayFigures:
        """The figures as the API shows them (already exact: built without validation)."""
        c = f.counts
        return cls.model_construct(
            date=label,
            orders_placed=c.placed,
            orders_paid=c.paid,
            payment_rate=f.payment_rate,
            gmv=money(c.gmv),
            aov=f.aov,
            buyers=c.buyers,
            visitors=c.visitors,
            conversion_rate=f.conversion_rate,
            shipped=c.shipped,
            shipped_on_time=c.shipped_on_time,
            on_time_dispatch_rate=f.on_time_dispatch_rate,
            overdue=c.overdue,
            penalties=c.penalties,
            refunds=c.refunds,
            refund_amount=c.refund_amount,
            refund_rate=f.refund_rate,
            tickets_opened=c.tickets_opened,
            tickets_resolved=c.tickets_resolved,
            tickets_resolved_within_sla=c.tickets_resolved_in_sla,
            ticket_sla_rate=f.ticket_sla_rate,
            target=f.target,
            target_progress=f.target_progress,
            ad_spend=c.ad_spend,
        )


CSV_FIELDS = tuple(DayFigures.model_fields)
"""CSV columns, in order: the JSON field names."""


class DailyReport(DayFigures):
    """One local day of a store (`GET /v1/reports/daily`)."""

    store_id: Id
    timezone: str = Field(description="The store's time zone its days are counted in.")


class RangeReport(BaseModel):
    """One row per local day plus totals (`GET /v1/reports/range`)."""

    model_config = ConfigDict(populate_by_name=True)

    store_id: Id
    timezone: str = Field(description="The store's time zone its days are counted in.")
    from_: date = Field(alias="from", examples=["2026-11-01"])
    to: date = Field(examples=["2026-11-30"])
    days: list[DayFigures] = Field(description="Every day of the range, oldest first.")
    totals: DayFigures = Field(
        description="The range: counts and amounts summed, rates recomputed from the sums "
        "(never averaged), `buyers` as buyer-days, `target` the sum of the days' shares."
    )
