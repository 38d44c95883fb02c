"""The parts of an order book (actors.domain.order_book): its resting orders, each side's price levels
in time priority, the id counter, the report of the best levels, and the checks of an order's fields."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter, ValidationError

from messages.base import OrderType, Price, Side, TimeInForce
from messages.venue import ExecReport

__all__ = ["BookSide", "Depth", "IdCounter", "InvalidOrder", "Level", "RestingOrder", "crosses", "invalid_reason"]

#: avg_px keeps at most this many decimal places (the wire's Price allows 8).
AVG_PX_QUANTUM = Decimal("1E-8")
_PRICE: TypeAdapter[Decimal] = TypeAdapter(Price)
_REPORTS: TypeAdapter[list[ExecReport]] = TypeAdapter(list[ExecReport])


class IdCounter:
    """An id counter whose position can be read and restored (``itertools.count`` cannot be):
    `next` gives ``last + 1``."""

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def __iter__(self) -> IdCounter:
        return self

    def __next__(self) -> int:
        self.last += 1
        return self.last


class InvalidOrder(ValueError):
    """Input that no execution report can carry (bad quantity, side or client order id): nothing happens."""


@dataclass(frozen=True)
class Level:
    """One price level: its price, the total open quantity and how many orders rest there."""

    price: Decimal
    qty: int
    orders: int


@dataclass(frozen=True)
class Depth:
    """The best levels of each side, best first."""

    bids: tuple[Level, ...]
    asks: tuple[Level, ...]


@dataclass(eq=False)
class RestingOrder:
    cl_ord_id: str
    venue_order_id: str
    side: Side
    order_qty: int
    price: Decimal | None
    order_type: OrderType
    tif: TimeInForce
    owner: str
    seq: int
    cum_qty: int = 0
    notional: Decimal = Decimal(0)
    fills: int = 0
    done: bool = False
    #: False: the book forgets the order as soon as it is done.
    remember: bool = True
    reports: list[ExecReport] = field(default_factory=list)

    @property
    def leaves_qty(self) -> int:
        return 0 if self.done else self.order_qty - self.cum_qty

    def avg_px(self) -> Decimal | None:
        if self.cum_qty == 0:
            return None
        avg = self.notional / self.cum_qty
        exponent = avg.as_tuple().exponent
        if isinstance(exponent, int) and exponent < -8:
            avg = avg.quantize(AVG_PX_QUANTUM)
        return avg

    def state(self) -> dict[str, Any]:
        return {"cl_ord_id": self.cl_ord_id, "venue_order_id": self.venue_order_id, "side": self.side.value,
                "order_qty": self.order_qty, "price": None if self.price is None else str(self.price),
                "order_type": self.order_type.value, "tif": self.tif.value, "owner": self.owner, "seq": self.seq,
                "cum_qty": self.cum_qty, "notional": str(self.notional), "fills": self.fills, "done": self.done,
                "remember": self.remember, "reports": _REPORTS.dump_python(self.reports, mode="json")}

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> RestingOrder:
        return cls(cl_ord_id=data["cl_ord_id"], venue_order_id=data["venue_order_id"], side=Side(data["side"]),
                   order_qty=data["order_qty"], price=None if data["price"] is None else Decimal(data["price"]),
                   order_type=OrderType(data["order_type"]), tif=TimeInForce(data["tif"]), owner=data["owner"],
                   seq=data["seq"], cum_qty=data["cum_qty"], notional=Decimal(data["notional"]),
                   fills=data["fills"], done=data["done"], remember=data["remember"],
                   reports=_REPORTS.validate_python(data["reports"]))


class BookSide:
    """One side of the book: price -> FIFO of resting orders (a dict keeps insertion order)."""

    def __init__(self, side: Side) -> None:
        self.side = side
        self.levels: dict[Decimal, dict[str, RestingOrder]] = {}
        self._prices: list[Decimal] = []  # ascending

    def best(self) -> Decimal | None:
        if not self._prices:
            return None
        return self._prices[-1] if self.side is Side.BUY else self._prices[0]

    def prices_best_first(self) -> list[Decimal]:
        return self._prices[::-1] if self.side is Side.BUY else list(self._prices)

    def add(self, order: RestingOrder) -> None:
        assert order.price is not None
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = {}
            bisect.insort(self._prices, order.price)
        level[order.cl_ord_id] = order

    def remove(self, order: RestingOrder) -> None:
        assert order.price is not None
        level = self.levels[order.price]
        del level[order.cl_ord_id]
        if not level:
            del self.levels[order.price]
            self._prices.remove(order.price)

    def orders(self) -> Iterator[RestingOrder]:
        for level in self.levels.values():
            yield from level.values()

    def state(self) -> list[list[Any]]:
        """The resting orders: ``[[price, [client order ids, oldest first]], ...]``."""
        return [[str(price), list(level)] for price, level in self.levels.items()]

    def load(self, state: list[list[Any]], orders: dict[str, RestingOrder]) -> None:
        self.levels = {Decimal(price): {cl_ord_id: orders[cl_ord_id] for cl_ord_id in ids} for price, ids in state}
        self._prices = sorted(self.levels)


def crosses(taker: RestingOrder, contra_price: Decimal) -> bool:
    if taker.order_type is OrderType.MARKET:
        return True
    assert taker.price is not None
    return contra_price <= taker.price if taker.side is Side.BUY else contra_price >= taker.price


def invalid_reason(order_type: OrderType, tif: TimeInForce, price: Decimal | None) -> str | None:
    """Why an order with these fields cannot be accepted, or None."""
    try:
        order_type = OrderType(order_type)
    except ValueError:
        return f"invalid order type {order_type!r}"
    try:
        TimeInForce(tif)
    except ValueError:
        return f"invalid time in force {tif!r}"
    if order_type is OrderType.MARKET:
        return None if price is None else "price must be empty for a MARKET order"
    if price is None:
        return "price is required for a LIMIT order"
    try:
        _PRICE.validate_python(price, strict=True)
    except ValidationError as exc:
        return f"invalid price {price!r}: {exc.errors()[0]['msg']}"
    return None

