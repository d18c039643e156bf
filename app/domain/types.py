"""Value types shared by the schemas: money as exact two-place decimals, opaque string ids."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    WithJsonSchema,
)

_MONEY_RE = re.compile(r"^-?[0-9]{1,12}(\.[0-9]{1,2})?$")
CENT = Decimal("0.01")
MAX_ID = 2**63 - 1


@lru_cache(maxsize=8192)
def _money_from_text(text: str) -> Decimal:
    # Prices repeat across orders; Decimals are immutable, so parsed ones can be shared.
    if not _MONEY_RE.match(text):
        raise ValueError("money must be a decimal string with at most two decimal places")
    return Decimal(text).quantize(CENT)


def parse_money(value: Any) -> Decimal:
    """Accept ``"129.90"``, ``"129.9"``, ``"129"`` or an integer; never a float or 3 decimals."""
    if type(value) is str:
        return _money_from_text(value.strip())
    if isinstance(value, bool):
        raise ValueError("money must be a decimal string like '129.90'")
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError("money must be a decimal string like '129.90' (floats are not accepted)")
    return _money_from_text(text)


def _not_negative(value: Decimal) -> Decimal:
    if value < 0:
        raise ValueError("amount must not be negative")
    return value


def format_money(value: Decimal) -> str:
    """``Decimal('3')`` → ``'3.00'``."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


_MONEY_SCHEMA = WithJsonSchema(
    {
        "type": "string",
        "pattern": r"^-?\d+\.\d{2}$",
        "examples": ["129.90"],
        "description": "Yuan (CNY) as a decimal string with two places.",
    }
)
_MONEY_INPUT_SCHEMA = WithJsonSchema(
    {
        "anyOf": [{"type": "string", "pattern": r"^\d+(\.\d{1,2})?$"}, {"type": "integer"}],
        "examples": ["129.90"],
        "description": "Yuan (CNY): a decimal string with at most two places, or an integer.",
    },
    mode="validation",
)
_SERIALIZE_MONEY = PlainSerializer(format_money, return_type=str, when_used="json")

Money = Annotated[Decimal, BeforeValidator(parse_money), _SERIALIZE_MONEY, _MONEY_SCHEMA]
"""Any amount, signed."""

NonNegativeMoney = Annotated[
    Decimal,
    BeforeValidator(parse_money),
    AfterValidator(_not_negative),
    _SERIALIZE_MONEY,
    _MONEY_INPUT_SCHEMA,
    WithJsonSchema(_MONEY_SCHEMA.json_schema, mode="serialization"),
]
"""An amount that cannot be negative (prices, fees, targets)."""


def parse_id(value: Any) -> int:
    """Ids are opaque strings on the wire and bigints inside."""
    if isinstance(value, bool):
        raise ValueError("not a valid id")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
        number = int(value)
    else:
        raise ValueError("not a valid id")
    if not 0 < number <= MAX_ID:
        raise ValueError("not a valid id")
    return number


Id = Annotated[
    int,
    BeforeValidator(parse_id),
    PlainSerializer(str, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "examples": ["1042"]}),
]
"""A server-assigned id (string on the wire)."""

NO_CONTROL_CHARS = r"^[^\x00-\x1f\x7f]*$"
NO_NUL = r"^[^\x00]*$"

Text = Annotated[str, Field(min_length=1, max_length=200, pattern=NO_CONTROL_CHARS)]
"""Short non-empty text on one line (names, titles)."""

Note = Annotated[str, Field(max_length=2000, pattern=NO_NUL)]
"""Free text (reasons, notes); anything PostgreSQL can store."""


# Instants the service can compute with: deadlines and windows add days to them, and
# store-local dates shift them by up to 14 hours, so the ends of Python's range are kept
# clear (year 1 with +14:00 or year 9999 with -10:00 cannot even be converted to UTC).
MIN_INSTANT = datetime(1, 1, 2, tzinfo=UTC)
MAX_INSTANT = datetime(9999, 1, 1, tzinfo=UTC)


def _to_utc(value: datetime) -> datetime:
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        # pydantic only turns ValueError into a validation error (PITFALLS.md).
        raise ValueError("instant out of range (0001-01-02 to 9998-12-31 UTC)") from None
    if not MIN_INSTANT <= utc < MAX_INSTANT:
        raise ValueError("instant out of range (0001-01-02 to 9998-12-31 UTC)")
    return utc


Instant = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A moment with an offset (required), kept in UTC: the same instant compares equal."""

MAX_AMOUNT = Decimal("999999999999.99")
"""The largest amount a ``numeric(14,2)`` column holds (it overflows at 10^12)."""


def check_amount(value: Decimal, what: str) -> Decimal:
    """``value`` if it fits the stored precision; ``ValueError`` naming ``what`` otherwise."""
    if abs(value) > MAX_AMOUNT:
        raise ValueError(f"{what} exceeds {MAX_AMOUNT}, the largest amount that can be stored")
    return value


BULK_MAX = 1000
"""Items a bulk request may carry."""


def _unchanged(value: Any) -> Any:
    return value


def bulk_items(item: type[Any]) -> BeforeValidator:
    """Annotated metadata of a bulk list of raw objects, documented as a list of ``item``.

    The request keeps each item a plain object so that the bulk service validates it alone
    (a bad item gets its own 422 result and the others go on); only the OpenAPI schema
    shows the item's model.
    """
    documented: Any = list[item]  # type: ignore[valid-type]
    return BeforeValidator(
        _unchanged,
        json_schema_input_type=Annotated[documented, Field(min_length=1, max_length=BULK_MAX)],
    )


def _json_integer(value: Any) -> Any:
    # pydantic's lax int also reads `true` and `"12"`, which JSON Schema's integer is not;
    # `12.0` stays accepted (it is a JSON Schema integer).
    if isinstance(value, bool | str):
        raise ValueError("must be a JSON integer")
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]
"""An integer in a request body: a JSON number with no fraction, never a boolean or a string."""
