"""Base classes and field types shared by commands and events."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from messages.ids import ORDER_ID_PATTERN

__all__ = [
    "AccountId",
    "Event",
    "Message",
    "OrderId",
    "OrderType",
    "Price",
    "Quantity",
    "Side",
    "Symbol",
    "TimeInForce",
    "VenueId",
]

OrderId = Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
AccountId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,32}$")]
Symbol = Annotated[str, StringConstraints(pattern=r"^[A-Z0-9.\-]{1,16}$")]
VenueId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,16}$")]
#: Strictly positive whole number of shares; floats such as 5.5 and strings are refused.
Quantity = Annotated[int, Field(strict=True, gt=0)]
#: Prices and money are Decimal, never float; at most 8 decimal places.
Price = Annotated[Decimal, Field(gt=0, max_digits=20, decimal_places=8, allow_inf_nan=False)]


class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


class OrderType(StrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"


class TimeInForce(StrEnum):
    DAY = "DAY"
    IOC = "IOC"


class Message(BaseModel):
    """Frozen, strict-shape base: unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Event(Message):
    """An event: something that happened. `TYPE` names it on the wire, `VERSION` its schema."""

    TYPE: ClassVar[str] = ""
    VERSION: ClassVar[int] = 1
    order_id: OrderId
