"""Request and response shapes of stores, targets and traffic."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.domain.store.rules import DispatchPolicy, is_valid_timezone
from app.domain.ticket.rules import parse_hhmm
from app.domain.types import Id, JsonInt, NonNegativeMoney, Text

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class Platform(StrEnum):
    """Marketplace the store sells on."""

    PDD = "pdd"
    TAOBAO = "taobao"
    TMALL = "tmall"
    JD = "jd"
    DOUYIN = "douyin"
    OTHER = "other"


Rate = Annotated[
    Decimal,
    Field(ge=0, le=1, max_digits=6, decimal_places=4, examples=["0.10"]),
]


def _rate(value: Any) -> Any:
    if isinstance(value, float | bool):
        raise ValueError("rate must be a decimal string like '0.10'")
    return value


CarrierName = Literal["SF", "ZTO", "YTO", "STO", "YD", "JT", "EMS", "JD", "DBL", "OTHER"]
SyncPlatform = Literal["pdd", "taobao", "douyin", "jd"]
CarrierCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
CarrierCodes = Annotated[
    dict[SyncPlatform, dict[CarrierName, CarrierCode]],
    Field(
        description="Marketplace sync ship-back: the platform's carrier code for each of our "
        "carriers (PDD logistics_id, Taobao/Douyin company_code, JD logiCoprId), from the "
        "platform's company-list API. A PATCH replaces the map of each platform it names.",
        examples=[{"pdd": {"ZTO": "115", "SF": "44"}, "taobao": {"ZTO": "ZTO"}}],
    ),
]


class LatePenaltyIn(BaseModel):
    """Override of the late penalty; omitted fields keep the platform default."""

    model_config = ConfigDict(extra="forbid")

    rate: Rate | None = Field(default=None, description="Share of the paid amount, 0–1.")
    min: NonNegativeMoney | None = None
    max: NonNegativeMoney | None = None

    _check_rate = field_validator("rate", mode="before")(_rate)


class DispatchPolicyIn(BaseModel):
    """Override of the platform's dispatch policy; omitted fields keep the default."""

    model_config = ConfigDict(extra="forbid")

    dispatch_hours: JsonInt | None = Field(default=None, ge=1, le=24 * 30)
    internal_target_hours: JsonInt | None = Field(default=None, ge=1, le=24 * 30)
    late_penalty: LatePenaltyIn | None = None
    pickup_grace_hours: JsonInt | None = Field(default=None, ge=1, le=24 * 30)
    auto_complete_days: JsonInt | None = Field(default=None, ge=1, le=90)

    def overrides(self) -> dict[str, Any]:
        """The fields given, as JSON-able overrides (money and rates as strings)."""
        out: dict[str, Any] = {}
        for name in ("dispatch_hours", "internal_target_hours", "pickup_grace_hours"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        if self.auto_complete_days is not None:
            out["auto_complete_days"] = self.auto_complete_days
        if self.late_penalty is not None:
            penalty = {
                k: str(v) for k, v in self.late_penalty.model_dump(exclude_none=True).items()
            }
            if penalty:
                out["late_penalty"] = penalty
        return out


class LatePenaltyOut(BaseModel):
    """Effective late penalty."""

    rate: str = Field(examples=["0.10"])
    min: str = Field(examples=["5.00"])
    max: str = Field(examples=["100.00"])


class DispatchPolicyOut(BaseModel):
    """Effective dispatch policy (platform defaults with the store's overrides)."""

    dispatch_hours: int = Field(examples=[48])
    internal_target_hours: int = Field(examples=[24])
    late_penalty: LatePenaltyOut
    pickup_grace_hours: int = Field(examples=[24])
    auto_complete_days: int = Field(examples=[10])

    @classmethod
    def of(cls, policy: DispatchPolicy) -> DispatchPolicyOut:
        """Render a policy."""
        return cls(
            dispatch_hours=policy.dispatch_hours,
            internal_target_hours=policy.internal_target_hours,
            late_penalty=LatePenaltyOut(
                rate=_rate_str(policy.late_penalty.rate),
                min=f"{policy.late_penalty.min:.2f}",
                max=f"{policy.late_penalty.max:.2f}",
            ),
            pickup_grace_hours=policy.pickup_grace_hours,
            auto_complete_days=policy.auto_complete_days,
        )


def _rate_str(rate: Decimal) -> str:
    """At least two places (``'0.10'``), more only when the rate has them."""
    exponent = rate.normalize().as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{rate:.{places}f}"


def _timezone(value: str) -> str:
    if not is_valid_timezone(value):
        raise ValueError("unknown time zone; use an IANA name like 'Asia/Shanghai'")
    return value


HhMm = Annotated[str, Field(pattern=r"^[0-9]{2}:[0-9]{2}$", examples=["08:00"])]


class ServiceHoursIn(BaseModel):
    """The customer-service day in store time (ticket SLAs count first responses only in it)."""

    model_config = ConfigDict(extra="forbid")

    start: HhMm = Field(description="Opening, HH:MM store time.")
    end: HhMm = Field(description="Closing, HH:MM store time (24:00 for midnight), after start.")

    @model_validator(mode="after")
    def _start_before_end(self) -> ServiceHoursIn:
        if self.start_minute() >= self.end_minute():
            raise ValueError("service_hours.start must be before service_hours.end")
        return self

    def start_minute(self) -> int:
        """Minutes after midnight."""
        return parse_hhmm(self.start, allow_24=False)

    def end_minute(self) -> int:
        """Minutes after midnight (1440 for 24:00)."""
        return parse_hhmm(self.end, allow_24=True)

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        parse_hhmm(value, allow_24=False)
        return value

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: str) -> str:
        parse_hhmm(value, allow_24=True)
        return value


class ServiceHoursOut(BaseModel):
    """The store's customer-service day (default 08:00–23:00)."""

    start: str = Field(examples=["08:00"])
    end: str = Field(examples=["23:00"])


class StoreCreate(BaseModel):
    """A new store."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "pdd-flagship",
                    "name": "拼多多旗舰店",
                    "platform": "pdd",
                    "timezone": "Asia/Shanghai",
                    "dispatch_policy": {"internal_target_hours": 20},
                    "service_hours": {"start": "08:00", "end": "23:00"},
                }
            ]
        },
    )

    code: str = Field(pattern=CODE_PATTERN, description="Unique short code.")
    name: Text
    platform: Platform
    timezone: str = "Asia/Shanghai"
    dispatch_policy: DispatchPolicyIn | None = None
    service_hours: ServiceHoursIn | None = None
    carrier_codes: CarrierCodes | None = None

    _check_tz = field_validator("timezone")(_timezone)


class StoreUpdate(BaseModel):
    """Changes to a store; ``dispatch_policy`` fields given replace earlier overrides."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "拼多多旗舰店 (new)", "timezone": "Asia/Shanghai"}]
        },
    )

    name: Text | None = None
    platform: Platform | None = None
    timezone: str | None = None
    dispatch_policy: DispatchPolicyIn | None = None
    service_hours: ServiceHoursIn | None = None
    carrier_codes: CarrierCodes | None = None
    reset_dispatch_policy: bool = Field(
        default=False,
        strict=True,
        description="Drop every override first (back to platform defaults).",
    )

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str | None) -> str | None:
        return None if value is None else _timezone(value)


class StorePublic(BaseModel):
    """A store with its effective dispatch policy."""

    id: Id
    code: str
    name: str
    platform: Platform
    timezone: str
    dispatch_policy: DispatchPolicyOut
    service_hours: ServiceHoursOut
    carrier_codes: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="Ship-back carrier codes per platform."
    )
    version: int
    created_at: datetime
    updated_at: datetime


MONTH_RE = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$")


class TargetIn(BaseModel):
    """Monthly sales target."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"sales_target": "1500000.00"}]}
    )

    sales_target: NonNegativeMoney


class TargetPublic(BaseModel):
    """A store's sales target for one month."""

    store_id: Id
    month: str = Field(examples=["2026-11"])
    sales_target: NonNegativeMoney
    updated_at: datetime


class TrafficIn(BaseModel):
    """Daily traffic figures from the marketplace export."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"visitors": 12840, "ad_spend": "3200.00"}]}
    )

    visitors: JsonInt = Field(ge=0, le=2_000_000_000)
    ad_spend: NonNegativeMoney = Field(default=Decimal("0.00"))


class TrafficPublic(BaseModel):
    """A store's traffic for one day."""

    store_id: Id
    date: date
    visitors: int
    ad_spend: NonNegativeMoney
    updated_at: datetime


def parse_month(text: str) -> date:
    """``'2026-11'`` → first day of that month; ValueError otherwise."""
    match = MONTH_RE.match(text)
    if not match:
        raise ValueError("month must be YYYY-MM")
    return date(int(match.group(1)), int(match.group(2)), 1)
