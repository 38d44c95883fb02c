"""Pure venue logic for the order-book mode: one price-time book per symbol, a seeded random-walk
reference price and a liquidity provider quoting around it.

Deterministic: the same sequence of commands (new, cancel, tick) gives the same reports with the
same exec ids, so a venue that journals its commands rebuilds itself exactly by replaying them.
"""

from __future__ import annotations

import itertools
import zlib
from decimal import Decimal

from actors.order_book import OrderBook
from actors.reference_price import LiquidityProvider, RandomWalk
from messages.venue import ExecReport, NewOrderSingle

__all__ = ["START_PRICES", "BookVenue"]

#: Reference prices the walk starts from (other symbols start at 100).
START_PRICES = {"AAPL": Decimal("187.25"), "MSFT": Decimal("411.10"), "TSLA": Decimal("243.80"),
                "AMZN": Decimal("178.45")}


class BookVenue:
    def __init__(self, venue: str, symbols: tuple[str, ...], seed: int = 7, levels: int = 3, qty: int = 500) -> None:
        self.venue = venue
        self._ids = itertools.count(1)
        self.books = {s: OrderBook(s, venue, order_ids=self._ids) for s in symbols}
        self.providers = {
            s: LiquidityProvider(self.books[s], RandomWalk(START_PRICES.get(s, Decimal(100)),
                                                           seed=seed + zlib.crc32(s.encode())), levels, qty)
            for s in symbols
        }
        self._owner: dict[str, str] = {}  # cl_ord_id -> symbol

    def reference_prices(self) -> dict[str, Decimal]:
        return {s: p.reference for s, p in self.providers.items() if p.reference is not None}

    def new(self, order: NewOrderSingle) -> list[ExecReport]:
        book = self.books.get(order.symbol)
        if book is None:
            return [_unknown_symbol(self.venue, order)]
        self._owner.setdefault(order.cl_ord_id, order.symbol)
        return book.submit(order.cl_ord_id, order.side, order.qty, order.order_type, order.tif, order.price)

    def cancel(self, cl_ord_id: str) -> list[ExecReport]:
        symbol = self._owner.get(cl_ord_id)
        book = self.books[symbol] if symbol else next(iter(self.books.values()))
        return book.cancel(cl_ord_id)

    def tick(self) -> list[ExecReport]:
        """Move every reference price one step and re-quote around it."""
        reports: list[ExecReport] = []
        for provider in self.providers.values():
            reports.extend(provider.refresh())
        return reports

    def status(self, cl_ord_id: str) -> tuple[ExecReport, ...]:
        symbol = self._owner.get(cl_ord_id)
        return self.books[symbol].status(cl_ord_id) if symbol else ()

    def knows(self, cl_ord_id: str) -> bool:
        return cl_ord_id in self._owner


def _unknown_symbol(venue: str, order: NewOrderSingle) -> ExecReport:
    return ExecReport(exec_id=f"{venue}-{order.symbol}-{order.cl_ord_id}-R", cl_ord_id=order.cl_ord_id,
                      kind="rejected", venue_order_id="NONE", symbol=order.symbol, side=order.side,
                      order_qty=order.qty, reason=f"symbol {order.symbol} is not traded here")
