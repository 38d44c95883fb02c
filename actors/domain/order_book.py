"""Pure limit order book for one symbol: price-time priority, LIMIT/MARKET orders, DAY/IOC.

No Ray or NATS here, no clock and no randomness: the same inputs in the same order always give the
same execution reports with the same ids, so a venue can be replayed from its input log.

Ids. Each accepted or rejected new order takes a venue order id ``f"{venue}-{n}"`` from a counter
(pass one `IdCounter` to every book of a venue to keep the ids unique across its symbols).
An order's own reports are ``<venue order id>-A`` (accepted), ``-F<k>`` (k-th fill), ``-C``
(canceled or expired) and ``-R`` (rejected). A refusal that changes no order (a duplicate client
order id, a cancel of an unknown or finished order) is not part of any order's history; it gets
``f"{venue}-{symbol}-REJ{n}"`` from the book's own counter.

Memory. A book remembers every order it was given (`has`, `status`, duplicate refusals) unless the
order was submitted with ``remember=False``: such an order is forgotten as soon as it is done (filled,
canceled, expired or rejected), so a book whose orders all come that way holds only what rests.
`forget` drops a finished order explicitly. `snapshot` and `restore` carry the whole state (resting
orders in price-time order, remembered orders, the refusal counter) as JSON-safe data.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, Literal

from actors.domain.book_side import (
    AVG_PX_QUANTUM,
    BookSide,
    Depth,
    IdCounter,
    InvalidOrder,
    Level,
    RestingOrder,
    crosses,
    invalid_reason,
)
from messages.base import OrderType, Side, TimeInForce
from messages.ids import ORDER_ID_PATTERN
from messages.venue import ExecReport

__all__ = [
    "AVG_PX_QUANTUM",
    "REASON_CANCELED",
    "REASON_DUPLICATE",
    "REASON_EXPIRED",
    "REASON_IOC_REMAINDER",
    "REASON_NOT_OPEN",
    "REASON_NO_LIQUIDITY",
    "REASON_NO_MORE_LIQUIDITY",
    "REASON_UNKNOWN_ORDER",
    "UNKNOWN_VENUE_ORDER_ID",
    "Depth",
    "IdCounter",
    "InvalidOrder",
    "Level",
    "OrderBook",
]

REASON_DUPLICATE = "duplicate client order id"
REASON_EXPIRED = "expired"
REASON_CANCELED = "canceled on request"
REASON_IOC_REMAINDER = "IOC: unfilled remainder canceled"
REASON_NO_LIQUIDITY = "no liquidity for a MARKET order"
REASON_NO_MORE_LIQUIDITY = "no more liquidity for the rest of a MARKET order"
REASON_UNKNOWN_ORDER = "unknown client order id"
REASON_NOT_OPEN = "order is not open"

#: The venue order id on a refusal about an order the book never saw (FIX uses "NONE" too).
UNKNOWN_VENUE_ORDER_ID = "NONE"

_ORDER_ID = re.compile(ORDER_ID_PATTERN)
_SYMBOL = re.compile(r"^[A-Z0-9.\-]{1,16}$")
_Kind = Literal["accepted", "fill", "canceled", "rejected"]


class OrderBook:
    """The book of one symbol. Every method returns the execution reports it caused, in order."""

    def __init__(self, symbol: str, venue: str = "SIM", order_ids: Iterator[int] | None = None) -> None:
        if not _SYMBOL.match(symbol):
            raise ValueError(f"invalid symbol {symbol!r}")
        self.symbol = symbol
        self.venue = venue
        self._order_ids = order_ids if order_ids is not None else IdCounter()
        self._refusals = IdCounter()
        self._orders: dict[str, RestingOrder] = {}
        self._bids = BookSide(Side.BUY)
        self._asks = BookSide(Side.SELL)

    # --- queries -------------------------------------------------------------------------------

    def has(self, cl_ord_id: str) -> bool:
        """True when the book has seen this client order id (whatever became of the order)."""
        return cl_ord_id in self._orders

    def is_open(self, cl_ord_id: str) -> bool:
        """True when the order rests in the book (it can still fill or be canceled)."""
        order = self._orders.get(cl_ord_id)
        return order is not None and not order.done

    def owner(self, cl_ord_id: str) -> str | None:
        """Who placed the order (None for an id the book does not hold)."""
        order = self._orders.get(cl_ord_id)
        return order.owner if order is not None else None

    def status(self, cl_ord_id: str) -> tuple[ExecReport, ...]:
        """Every report of the order so far (empty for an unknown id); refusals are not included."""
        order = self._orders.get(cl_ord_id)
        return tuple(order.reports) if order is not None else ()

    def open_orders(self, owner: str | None = None) -> tuple[str, ...]:
        """Client order ids of the resting orders (of one owner, if given), oldest first."""
        resting = [o for o in self._resting() if owner is None or o.owner == owner]
        return tuple(o.cl_ord_id for o in resting)

    def best_bid(self) -> Decimal | None:
        return self._bids.best()

    def best_ask(self) -> Decimal | None:
        return self._asks.best()

    @property
    def remembered(self) -> int:
        """How many orders the book holds (resting ones, and finished ones it remembers)."""
        return len(self._orders)

    def depth(self, levels: int = 5) -> Depth:
        """The best `levels` price levels of each side, best first."""
        if levels < 0:
            raise ValueError(f"levels must be >= 0, not {levels}")
        return Depth(bids=self._levels(self._bids, levels), asks=self._levels(self._asks, levels))

    # --- commands ------------------------------------------------------------------------------

    def submit(
        self,
        cl_ord_id: str,
        side: Side,
        qty: int,
        order_type: OrderType = OrderType.LIMIT,
        tif: TimeInForce = TimeInForce.DAY,
        price: Decimal | None = None,
        owner: str = "client",
        remember: bool = True,
    ) -> list[ExecReport]:
        """Accept and match a new order: "accepted", then "fill"s for it and every order it trades
        against, then "canceled" for a remainder that may not rest (IOC, MARKET). A duplicate client
        order id or an invalid order is "rejected". Raises InvalidOrder for input no report can carry.
        With ``remember=False`` the book forgets the order once it is done (a duplicate of it is then
        no longer recognised here).
        """
        side = self._check_representable(cl_ord_id, side, qty)
        existing = self._orders.get(cl_ord_id)
        if existing is not None:
            return [self._refusal(cl_ord_id, existing.venue_order_id, side, qty, REASON_DUPLICATE)]

        seq = next(self._order_ids)
        problem = invalid_reason(order_type, tif, price)
        order = RestingOrder(
            cl_ord_id=cl_ord_id, venue_order_id=f"{self.venue}-{seq}", side=side, order_qty=qty,
            price=price if problem is None else None,
            order_type=OrderType(order_type) if problem is None else OrderType.LIMIT,
            tif=TimeInForce(tif) if problem is None else TimeInForce.DAY, owner=owner, seq=seq, remember=remember,
        )
        self._orders[cl_ord_id] = order
        if problem is not None:
            self._done(order)
            return [self._report(order, "rejected", "-R", reason=problem)]

        reports = [self._report(order, "accepted", "-A")]
        reports.extend(self._match(order))
        if order.cum_qty == order.order_qty:
            return reports
        if order.order_type is OrderType.MARKET:
            reason = REASON_NO_LIQUIDITY if order.cum_qty == 0 else REASON_NO_MORE_LIQUIDITY
            reports.append(self._finish(order, reason))
        elif order.tif is TimeInForce.IOC:
            reports.append(self._finish(order, REASON_IOC_REMAINDER))
        else:
            self._side(order.side).add(order)
        return reports

    def cancel(self, cl_ord_id: str, reason: str = REASON_CANCELED) -> list[ExecReport]:
        """Cancel a resting order ("canceled", cum_qty kept). An unknown or finished order gets a
        "rejected" refusal and nothing changes (for an unknown id side and order_qty are placeholders).
        """
        order = self._orders.get(cl_ord_id)
        if order is None:
            return [self._refusal(cl_ord_id, UNKNOWN_VENUE_ORDER_ID, Side.BUY, 1, REASON_UNKNOWN_ORDER)]
        if order.done:
            return [self._refusal(cl_ord_id, order.venue_order_id, order.side, order.order_qty, REASON_NOT_OPEN)]
        self._side(order.side).remove(order)
        return [self._finish(order, reason)]

    def expire_day(self) -> list[ExecReport]:
        """End of day: every resting order is canceled with reason "expired", oldest first."""
        resting = list(self._resting())
        for order in resting:
            self._side(order.side).remove(order)
        return [self._finish(order, REASON_EXPIRED) for order in resting]

    def forget(self, cl_ord_id: str) -> bool:
        """Forget a finished order (its status, and its id as a duplicate). A resting order is kept:
        returns False for it, True once the order is forgotten (or was never known)."""
        order = self._orders.get(cl_ord_id)
        if order is not None and not order.done:
            return False
        self._orders.pop(cl_ord_id, None)
        return True

    # --- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-safe data (the venue order id counter too when the book owns an
        `IdCounter`; a shared counter is its owner's to save)."""
        last = self._order_ids.last if isinstance(self._order_ids, IdCounter) else None
        return {"symbol": self.symbol, "venue": self.venue, "order_ids": last, "refusals": self._refusals.last,
                "orders": [order.state() for order in self._orders.values()],
                "bids": self._bids.state(), "asks": self._asks.state()}

    @classmethod
    def restore(cls, data: dict[str, Any], order_ids: Iterator[int] | None = None) -> OrderBook:
        """The book `snapshot` described: fed the same inputs, it gives the same reports. `order_ids`
        is the venue's shared counter (default: the book's own, at the position the snapshot saved)."""
        if order_ids is None:
            order_ids = IdCounter(data["order_ids"] or 0)
        book = cls(data["symbol"], data["venue"], order_ids=order_ids)
        book._refusals = IdCounter(data["refusals"])
        book._orders = {o["cl_ord_id"]: RestingOrder.from_state(o) for o in data["orders"]}
        book._bids.load(data["bids"], book._orders)
        book._asks.load(data["asks"], book._orders)
        return book

    # --- internals -----------------------------------------------------------------------------

    def _done(self, order: RestingOrder) -> None:
        order.done = True
        if not order.remember:
            self._orders.pop(order.cl_ord_id, None)

    def _side(self, side: Side) -> BookSide:
        return self._bids if side is Side.BUY else self._asks

    def _resting(self) -> list[RestingOrder]:
        return sorted(itertools.chain(self._bids.orders(), self._asks.orders()), key=lambda o: o.seq)

    @staticmethod
    def _levels(book_side: BookSide, levels: int) -> tuple[Level, ...]:
        out = []
        for price in book_side.prices_best_first()[:levels]:
            level = book_side.levels[price]
            out.append(Level(price=price, qty=sum(o.leaves_qty for o in level.values()), orders=len(level)))
        return tuple(out)

    def _check_representable(self, cl_ord_id: str, side: Side, qty: int) -> Side:
        if not isinstance(cl_ord_id, str) or not _ORDER_ID.match(cl_ord_id):
            raise InvalidOrder(f"invalid client order id {cl_ord_id!r}")
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise InvalidOrder(f"quantity must be a positive int, not {qty!r}")
        try:
            return Side(side)
        except ValueError:
            raise InvalidOrder(f"invalid side {side!r}") from None

    def _match(self, taker: RestingOrder) -> list[ExecReport]:
        """Trade `taker` against the opposite side, best price first, oldest first within a price."""
        contra = self._side(Side.SELL if taker.side is Side.BUY else Side.BUY)
        reports: list[ExecReport] = []
        while taker.cum_qty < taker.order_qty:
            best = contra.best()
            if best is None or not crosses(taker, best):
                break
            maker = next(iter(contra.levels[best].values()))
            qty = min(taker.order_qty - taker.cum_qty, maker.order_qty - maker.cum_qty)
            reports.append(self._fill(taker, qty, best))
            reports.append(self._fill(maker, qty, best))
            if maker.cum_qty == maker.order_qty:
                contra.remove(maker)
        return reports

    def _fill(self, order: RestingOrder, qty: int, price: Decimal) -> ExecReport:
        order.cum_qty += qty
        order.notional += price * qty
        order.fills += 1
        if order.cum_qty == order.order_qty:
            self._done(order)
        return self._report(order, "fill", f"-F{order.fills}", last_qty=qty, last_px=price)

    def _finish(self, order: RestingOrder, reason: str) -> ExecReport:
        self._done(order)
        return self._report(order, "canceled", "-C", reason=reason)

    def _report(self, order: RestingOrder, kind: _Kind, suffix: str, last_qty: int = 0, last_px: Decimal | None = None,
                reason: str = "") -> ExecReport:
        report = ExecReport(
            exec_id=f"{order.venue_order_id}{suffix}", cl_ord_id=order.cl_ord_id, kind=kind,
            venue_order_id=order.venue_order_id, symbol=self.symbol, side=order.side, order_qty=order.order_qty,
            last_qty=last_qty, last_px=last_px, cum_qty=order.cum_qty, avg_px=order.avg_px(),
            leaves_qty=order.leaves_qty, reason=reason,
        )
        order.reports.append(report)
        return report

    def _refusal(self, cl_ord_id: str, venue_order_id: str, side: Side, qty: int, reason: str) -> ExecReport:
        return ExecReport(
            exec_id=f"{self.venue}-{self.symbol}-REJ{next(self._refusals)}", cl_ord_id=cl_ord_id, kind="rejected",
            venue_order_id=venue_order_id, symbol=self.symbol, side=side, order_qty=qty, reason=reason,
        )


