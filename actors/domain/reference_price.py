"""A seeded random-walk reference price and a liquidity provider that quotes around it.

No Ray or NATS here, no clock: the walk's randomness comes only from its seed, so the same seed
always gives the same path, and the same path gives the same quotes and ids. Both carry their whole
state (the generator's state included) in `snapshot`, and `restore` continues the same path.

The provider's quotes go into the book with ``remember=False``: the book forgets each quote once it
is filled or canceled, so quoting on every tick does not grow the book's memory.
"""

from __future__ import annotations

import random
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from actors.domain.order_book import OrderBook
from messages.base import OrderType, Side, TimeInForce
from messages.venue import ExecReport

__all__ = ["LIQUIDITY_OWNER", "REASON_QUOTE_REPLACED", "LiquidityProvider", "RandomWalk"]

LIQUIDITY_OWNER = "liquidity"
REASON_QUOTE_REPLACED = "quote replaced"

_BPS = Decimal(10000)
# A fixed context: the path must not depend on whatever the caller's thread set as decimal context.
_CTX = Context(prec=28, rounding=ROUND_HALF_EVEN)


class RandomWalk:
    """A multiplicative random walk: each step moves by a whole number of basis points drawn uniformly
    from -step_bps..+step_bps. Prices are rounded to the tick and never below one tick."""

    def __init__(self, start: Decimal, seed: int, step_bps: int = 5, tick: Decimal = Decimal("0.01")) -> None:
        if not isinstance(start, Decimal) or not start.is_finite() or start <= 0:
            raise ValueError(f"start must be a positive Decimal, not {start!r}")
        if not isinstance(tick, Decimal) or not tick.is_finite() or tick <= 0:
            raise ValueError(f"tick must be a positive Decimal, not {tick!r}")
        if not 0 <= step_bps < 10000:
            raise ValueError(f"step_bps must be within 0..9999, not {step_bps}")
        self.tick = tick
        self.step_bps = step_bps
        self._rng = random.Random(seed)
        self._level = start  # unrounded, so steps smaller than a tick still accumulate
        self.price = self._on_tick(start)

    def next(self) -> Decimal:
        """Take one step and return the new price (on the tick, > 0)."""
        bps = self._rng.randint(-self.step_bps, self.step_bps)
        self._level = _CTX.divide(_CTX.multiply(self._level, _BPS + bps), _BPS)
        self.price = self._on_tick(self._level)
        return self.price

    def snapshot(self) -> dict[str, Any]:
        """The walk's whole state as JSON-safe data (the generator's state is a list of ints)."""
        version, internal, gauss = self._rng.getstate()
        return {"step_bps": self.step_bps, "tick": str(self.tick), "level": str(self._level), "price": str(self.price),
                "rng": [version, list(internal), gauss]}

    @classmethod
    def restore(cls, data: dict[str, Any]) -> RandomWalk:
        """The walk `snapshot` described: its next steps are the ones the original would have taken."""
        walk = cls(Decimal(data["price"]), seed=0, step_bps=data["step_bps"], tick=Decimal(data["tick"]))
        version, internal, gauss = data["rng"]
        walk._rng.setstate((version, tuple(internal), gauss))
        walk._level = Decimal(data["level"])
        walk.price = Decimal(data["price"])
        return walk

    def _on_tick(self, level: Decimal) -> Decimal:
        ticks = _CTX.divide(level, self.tick).to_integral_value(rounding=ROUND_HALF_EVEN, context=_CTX)
        return _CTX.multiply(max(ticks, Decimal(1)), self.tick)


class LiquidityProvider:
    """Quotes `levels` bids and asks of `qty` each around the walk's reference price: the best bid
    `spread_ticks` ticks below it, the best ask `spread_ticks` above, then one tick apart."""

    def __init__(self, book: OrderBook, walk: RandomWalk, levels: int = 3, qty: int = 500,
                 spread_ticks: int = 1) -> None:
        if levels < 1:
            raise ValueError(f"levels must be >= 1, not {levels}")
        if qty < 1:
            raise ValueError(f"qty must be >= 1, not {qty}")
        if spread_ticks < 1:
            raise ValueError(f"spread_ticks must be >= 1, not {spread_ticks}")
        self.book = book
        self.walk = walk
        self.levels = levels
        self.qty = qty
        self.spread_ticks = spread_ticks
        self.reference: Decimal | None = None
        self._last_id = 0
        self._quotes: list[str] = []

    @property
    def quotes(self) -> tuple[str, ...]:
        """Client order ids of this provider's quotes still resting in the book (a done quote is
        forgotten by the book, and its id may then be someone else's)."""
        return tuple(cl_ord_id for cl_ord_id in self._quotes
                     if self.book.is_open(cl_ord_id) and self.book.owner(cl_ord_id) == LIQUIDITY_OWNER)

    def refresh(self) -> list[ExecReport]:
        """Cancel the previous quotes, step the walk and quote around the new reference price.
        Returns every report this caused, fills against crossing client orders included."""
        reports: list[ExecReport] = []
        for cl_ord_id in self.quotes:
            reports.extend(self.book.cancel(cl_ord_id, reason=REASON_QUOTE_REPLACED))
        self._quotes = []
        reference = self.reference = self.walk.next()
        tick = self.walk.tick
        for side, sign in ((Side.BUY, -1), (Side.SELL, 1)):
            for level in range(self.levels):
                price = reference + sign * (self.spread_ticks + level) * tick
                if price <= 0:
                    continue
                reports.extend(self._quote(side, price))
        return reports

    def snapshot(self) -> dict[str, Any]:
        """The provider's state as JSON-safe data, its walk's included (the book is saved by its owner)."""
        return {"levels": self.levels, "qty": self.qty, "spread_ticks": self.spread_ticks,
                "reference": None if self.reference is None else str(self.reference), "last_id": self._last_id,
                "quotes": list(self._quotes), "walk": self.walk.snapshot()}

    @classmethod
    def restore(cls, data: dict[str, Any], book: OrderBook) -> LiquidityProvider:
        """The provider `snapshot` described, quoting into `book` (restored from the same snapshot)."""
        provider = cls(book, RandomWalk.restore(data["walk"]), data["levels"], data["qty"], data["spread_ticks"])
        provider.reference = None if data["reference"] is None else Decimal(data["reference"])
        provider._last_id = data["last_id"]
        provider._quotes = list(data["quotes"])
        return provider

    def _quote(self, side: Side, price: Decimal) -> list[ExecReport]:
        self._last_id += 1
        cl_ord_id = f"LP-{self.book.symbol}-{self._last_id}"
        reports = self.book.submit(cl_ord_id, side, self.qty, OrderType.LIMIT, TimeInForce.DAY, price,
                                   owner=LIQUIDITY_OWNER, remember=False)
        if reports and reports[0].kind == "accepted":
            self._quotes.append(cl_ord_id)
        return reports
