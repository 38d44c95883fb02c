"""Pure venue logic for the order-book mode: one price-time book per symbol, a seeded random-walk
reference price and a liquidity provider quoting around it.

Deterministic: the same sequence of commands (new, reject, cancel, tick, expire) gives the same
reports with the same exec ids, so a venue that journals its commands rebuilds itself exactly by
replaying them (`BookVenue.apply` takes the journaled `Command`s).

Memory stays bounded: quotes and client orders go into the books with ``remember=False`` (a book
holds only what rests), and an end of day (`ExpireCommand`, journaled, so a replay forgets the same)
forgets the client orders that finished before the previous end of day: the venue remembers every
resting order and today's and yesterday's finished ones; an id it forgot is a new order again. A
finished order is kept encoded (actors.domain.finished_orders) and decoded only when asked about.
`snapshot` is the whole state as JSON-safe data; `restore` rebuilds a venue that answers the next
commands exactly as the original.

Only client orders are reported: the liquidity provider's quotes (owner LIQUIDITY_OWNER) trade in
the book but their reports are dropped. Each client report is tagged: ``unsolicited=False`` when
it is an order's own report caused by its own new-order request (the requester gets it in its
reply), ``unsolicited=True`` otherwise (a resting order filled by another order or a quote move,
a cancel, an expiry).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from actors.domain.finished_orders import FinishedOrders
from actors.domain.order_book import (
    REASON_NOT_OPEN,
    REASON_UNKNOWN_ORDER,
    UNKNOWN_VENUE_ORDER_ID,
    IdCounter,
    OrderBook,
)
from actors.domain.reference_price import LiquidityProvider, RandomWalk
from actors.domain.venue_commands import (
    CancelCommand,
    Command,
    ExpireCommand,
    JournalRecord,
    MassCancelCommand,
    NewCommand,
    RejectCommand,
    TickCommand,
)
from actors.domain.venue_faults import rejection
from messages.base import Side
from messages.venue import ExecReport, NewOrderSingle

__all__ = [
    "SNAPSHOT_VERSION",
    "START_PRICES",
    "BookVenue",
    "CancelCommand",
    "Command",
    "DayAlreadyClosed",
    "ExpireCommand",
    "JournalRecord",
    "MassCancelCommand",
    "NewCommand",
    "Outcome",
    "RejectCommand",
    "TickCommand",
    "is_refusal",
]

#: Reference prices the walk starts from (other symbols start at 100).
START_PRICES = {"AAPL": Decimal("187.25"), "MSFT": Decimal("411.10"), "TSLA": Decimal("243.80"),
                "AMZN": Decimal("178.45")}


_REFUSAL_ID = re.compile(r"-REJ\d+$")
_REPORTS: TypeAdapter[list[ExecReport]] = TypeAdapter(list[ExecReport])

#: The shape of `BookVenue.snapshot` (2: finished orders apart, encoded); `restore` reads 1 and 2.
SNAPSHOT_VERSION = 2


class DayAlreadyClosed(ValueError):
    """An end of day for a trading day the venue already closed: nothing happens."""


@dataclass(frozen=True)
class Outcome:
    """What one command did.

    `reports`: every client-order report it caused, in execution order, tagged solicited or
    unsolicited (the drop copy's entries). `reply`: what the requester is answered. `duplicate`:
    a new order whose client order id was already known (nothing happened; the reply is the
    order's own recorded reports). Refusals (exec id with "-REJ") are in `reply` only."""

    reports: tuple[ExecReport, ...]
    reply: tuple[ExecReport, ...]
    duplicate: bool = False


def is_refusal(report: ExecReport) -> bool:
    """A refusal changes no order (duplicate id, cancel of an unknown or finished order); its exec id
    ends with ``-REJ<n>``."""
    return _REFUSAL_ID.search(report.exec_id) is not None


class BookVenue:
    def __init__(self, venue: str, symbols: tuple[str, ...], seed: int = 7, levels: int = 3, qty: int = 500) -> None:
        self.venue = venue
        self.symbols = tuple(symbols)
        self.seed = seed
        self.levels = levels
        self.qty = qty
        self._ids = IdCounter()
        self.books = {s: OrderBook(s, venue, order_ids=self._ids) for s in symbols}
        self.providers = {
            s: LiquidityProvider(self.books[s], RandomWalk(START_PRICES.get(s, Decimal(100)),
                                                           seed=seed + zlib.crc32(s.encode())), levels, qty)
            for s in symbols
        }
        #: Client orders not finished: cl_ord_id -> the new order, and -> every report so far (tagged).
        self.orders: dict[str, NewOrderSingle] = {}
        self._history: dict[str, list[ExecReport]] = {}
        #: Finished client orders, encoded.
        self._done = FinishedOrders()
        self._refusals = IdCounter()
        #: The last trading day an end of day closed (None before the first).
        self.last_day: int | None = None
        #: Ends of day so far. A client order that finishes is tagged with it, and forgotten at the end
        #: of day after the one that follows (so today's and yesterday's finished orders are known).
        self._epoch = 0

    # --- queries -------------------------------------------------------------------------------

    def reference_prices(self) -> dict[str, Decimal]:
        return {s: p.reference for s, p in self.providers.items() if p.reference is not None}

    def knows(self, cl_ord_id: str) -> bool:
        """True when a client order with this id was received (a new order with it is a duplicate)."""
        return cl_ord_id in self.orders or cl_ord_id in self._done

    def status(self, cl_ord_id: str) -> tuple[ExecReport, ...]:
        """Every report of the client order so far, solicited and unsolicited (empty if unknown)."""
        history = self._history.get(cl_ord_id)
        if history is not None:
            return tuple(history)
        done = self._done.get(cl_ord_id)
        return done[1] if done is not None else ()

    def solicited(self, cl_ord_id: str) -> tuple[ExecReport, ...]:
        """The order's reports caused by its own new-order request: a duplicate request's answer."""
        return tuple(r for r in self.status(cl_ord_id) if not r.unsolicited)

    def remembered(self) -> int:
        """How many client orders the venue remembers (resting, and finished today or yesterday)."""
        return len(self.orders) + len(self._done)

    def remembered_ids(self) -> set[str]:
        return {*self.orders, *self._done.ids()}

    # --- commands ------------------------------------------------------------------------------

    def apply(self, command: NewCommand | RejectCommand | CancelCommand | MassCancelCommand | TickCommand
              | ExpireCommand) -> Outcome:
        """Execute one journaled command (raises, changing nothing, for input no report can carry)."""
        if isinstance(command, NewCommand):
            return self.new(command.order)
        if isinstance(command, RejectCommand):
            return self.reject(command.order, command.reason)
        if isinstance(command, CancelCommand):
            return self.cancel(command.cl_ord_id)
        if isinstance(command, MassCancelCommand):
            return self.mass_cancel(command.account)
        if isinstance(command, TickCommand):
            return self.tick()
        return self.expire_day(command.day)

    def new(self, order: NewOrderSingle) -> Outcome:
        """Accept and match a new client order (a known client order id is a duplicate: nothing happens)."""
        if self.knows(order.cl_ord_id):
            return self._duplicate(order.cl_ord_id)
        book = self.books.get(order.symbol)
        if book is None:
            return self._record_new(order, [_unknown_symbol(self.venue, order)])
        if book.has(order.cl_ord_id):  # the id is taken by a liquidity provider's quote: a recorded rejection
            return self._record_new(order, [rejection(order, f"{self.venue}-{next(self._ids)}",
                                                      "client order id already in use at the venue")])
        reports = book.submit(order.cl_ord_id, order.side, order.qty, order.order_type, order.tif, order.price,
                              remember=False)  # the venue remembers client orders itself (see expire_day)
        return self._record_new(order, reports)

    def reject(self, order: NewOrderSingle, reason: str) -> Outcome:
        """Refuse a new client order without booking it (it takes a venue order id all the same)."""
        if self.knows(order.cl_ord_id):
            return self._duplicate(order.cl_ord_id)
        return self._record_new(order, [rejection(order, f"{self.venue}-{next(self._ids)}", reason)])

    def cancel(self, cl_ord_id: str) -> Outcome:
        """Cancel a resting client order: its "canceled" report (unsolicited), or a refusal."""
        order = self.orders.get(cl_ord_id)
        book = self.books.get(order.symbol) if order is not None else None
        if order is None or book is None or not book.is_open(cl_ord_id):
            return Outcome(reports=(), reply=(self._refusal(cl_ord_id),))
        tagged = self._record(book.cancel(cl_ord_id), solicited_by=None)
        return Outcome(reports=tagged, reply=tagged)

    def open_client_orders(self, account: str | None = None) -> tuple[str, ...]:
        """Client order ids resting in the books (of one account, if given), oldest first per symbol."""
        out: list[str] = []
        for book in self.books.values():
            for cl_ord_id in book.open_orders():
                order = self.orders.get(cl_ord_id)
                if order is not None and (account is None or order.account == account):
                    out.append(cl_ord_id)
        return tuple(out)

    def mass_cancel(self, account: str | None = None) -> Outcome:
        """Cancel every resting client order (of `account`, if given); each "canceled" is unsolicited."""
        reports: list[ExecReport] = []
        for cl_ord_id in self.open_client_orders(account):
            reports.extend(self.books[self.orders[cl_ord_id].symbol].cancel(cl_ord_id))
        tagged = self._record(reports, solicited_by=None)
        return Outcome(reports=tagged, reply=tagged)

    def tick(self) -> Outcome:
        """Move every reference price one step and re-quote around it."""
        reports: list[ExecReport] = []
        for provider in self.providers.values():
            reports.extend(provider.refresh())
        return Outcome(reports=self._record(reports, solicited_by=None), reply=())

    def expire_day(self, day: int | None = None) -> Outcome:
        """End of trading day `day`: every resting order expires (the liquidity provider's quotes too,
        until the next tick), then the client orders that finished before the previous end of day are
        forgotten. Raises DayAlreadyClosed (and changes nothing) for a day already closed."""
        if day is not None and self.last_day is not None and day <= self.last_day:
            raise DayAlreadyClosed(f"venue {self.venue}: trading day {day} is already closed (the last closed is "
                                   f"{self.last_day})")
        reports: list[ExecReport] = []
        for book in self.books.values():
            reports.extend(book.expire_day())
        tagged = self._record(reports, solicited_by=None)
        self._done.forget_before(self._epoch)
        self._epoch += 1
        if day is not None:
            self.last_day = day
        return Outcome(reports=tagged, reply=())

    # --- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-safe data: the books with their resting orders, every counter, the
        walks' generator states and reference prices, the quotes, the client orders not finished with
        their reports, and the finished ones encoded. Nothing in it is shared with the live venue."""
        return {**self._snapshot_head(),
                "orders": [[order.model_dump(mode="json"), _REPORTS.dump_python(self._history[cl_ord_id], mode="json")]
                           for cl_ord_id, order in self.orders.items()],
                "done": self._done.to_json()}

    def snapshot_json(self) -> bytes:
        """`snapshot()` as compact JSON, the fast way: the finished orders are joined as they are kept."""
        head = json.dumps(self._snapshot_head(), separators=(",", ":")).encode()
        live = b",".join(b"[%s,%s]" % (order.model_dump_json().encode(), _REPORTS.dump_json(self._history[cl_ord_id]))
                         for cl_ord_id, order in self.orders.items())
        return b'%s,"orders":[%s],"done":%s}' % (head[:-1], live, self._done.encoded())

    def _snapshot_head(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION, "venue": self.venue, "symbols": list(self.symbols), "seed": self.seed,
            "levels": self.levels, "qty": self.qty, "order_ids": self._ids.last, "refusals": self._refusals.last,
            "last_day": self.last_day, "epoch": self._epoch,
            "books": {s: book.snapshot() for s, book in self.books.items()},
            "providers": {s: provider.snapshot() for s, provider in self.providers.items()},
        }

    @classmethod
    def restore(cls, data: dict[str, Any]) -> BookVenue:
        """The venue `snapshot` described: fed the same commands, it gives the same reports (exec ids,
        prices) as the original would have. Reads snapshots of version 1 too. Raises ValueError for a
        snapshot of another shape."""
        version = data.get("version")
        if version not in (1, SNAPSHOT_VERSION):
            raise ValueError(f"venue snapshot version {version!r} is not {SNAPSHOT_VERSION} (or 1)")
        venue = cls(data["venue"], tuple(data["symbols"]), seed=data["seed"], levels=data["levels"], qty=data["qty"])
        venue._ids = IdCounter(data["order_ids"])
        venue._refusals = IdCounter(data["refusals"])
        venue.last_day = data["last_day"]
        venue._epoch = data["epoch"]
        venue.books = {s: OrderBook.restore(book, order_ids=venue._ids) for s, book in data["books"].items()}
        venue.providers = {s: LiquidityProvider.restore(provider, venue.books[s])
                           for s, provider in data["providers"].items()}
        if version == 1:  # every remembered order in one list, a finished one tagged with its epoch
            venue._done = FinishedOrders()
            for order, history, finished in data["orders"]:
                if finished is None:
                    venue._restore_live(order, history)
                else:
                    venue._done.add_decoded(order, history, finished)
            return venue
        for order, history in data["orders"]:
            venue._restore_live(order, history)
        venue._done = FinishedOrders.from_json(data["done"])
        return venue

    def _restore_live(self, order: dict[str, Any], history: list[Any]) -> None:
        new = NewOrderSingle.model_validate(order)
        self.orders[new.cl_ord_id] = new
        self._history[new.cl_ord_id] = _REPORTS.validate_python(history)

    # --- internals -----------------------------------------------------------------------------

    def _duplicate(self, cl_ord_id: str) -> Outcome:
        return Outcome(reports=(), reply=self.solicited(cl_ord_id), duplicate=True)

    def _record_new(self, order: NewOrderSingle, reports: Iterable[ExecReport]) -> Outcome:
        self.orders[order.cl_ord_id] = order
        self._history[order.cl_ord_id] = []
        tagged = self._record(reports, solicited_by=order.cl_ord_id)
        return Outcome(reports=tagged, reply=tuple(r for r in tagged if r.cl_ord_id == order.cl_ord_id))

    def _record(self, reports: Iterable[ExecReport], solicited_by: str | None) -> tuple[ExecReport, ...]:
        """Keep the client orders' reports (not the liquidity provider's, not refusals), tagged
        solicited or not, with the order's price and client fields echoed."""
        out = []
        finished = []
        for report in reports:
            history = self._history.get(report.cl_ord_id)
            if history is None or is_refusal(report):
                continue
            if history and history[0].venue_order_id != report.venue_order_id:
                continue  # a quote that reuses the id of a client order the book forgot
            order = self.orders[report.cl_ord_id]
            report = report.model_copy(update={"unsolicited": report.cl_ord_id != solicited_by, "price": order.price,
                                               "account": order.account,
                                               "allocation_profile": order.allocation_profile})
            history.append(report)
            out.append(report)
            if report.kind in ("canceled", "rejected") or report.leaves_qty == 0:
                finished.append(report.cl_ord_id)
        for cl_ord_id in dict.fromkeys(finished):  # a finished order changes no more: it is kept encoded
            self._done.add(self.orders.pop(cl_ord_id), self._history.pop(cl_ord_id), self._epoch)
        return tuple(out)

    def _refusal(self, cl_ord_id: str) -> ExecReport:
        """A cancel refused: the order is unknown, finished, or not in a book."""
        n = next(self._refusals)
        order: NewOrderSingle | None = self.orders.get(cl_ord_id)
        history: Sequence[ExecReport] = self._history.get(cl_ord_id) or []
        if order is None and (done := self._done.get(cl_ord_id)) is not None:
            order, history = done
        if order is None:
            return ExecReport(exec_id=f"{self.venue}-REJ{n}", cl_ord_id=cl_ord_id, kind="rejected",
                              venue_order_id=UNKNOWN_VENUE_ORDER_ID, symbol=next(iter(self.books), "NONE"),
                              side=Side.BUY, order_qty=1, reason=REASON_UNKNOWN_ORDER)
        venue_order_id = history[0].venue_order_id if history else UNKNOWN_VENUE_ORDER_ID
        return ExecReport(exec_id=f"{self.venue}-REJ{n}", cl_ord_id=cl_ord_id, kind="rejected",
                          venue_order_id=venue_order_id, symbol=order.symbol, side=order.side, order_qty=order.qty,
                          reason=REASON_NOT_OPEN)


def _unknown_symbol(venue: str, order: NewOrderSingle) -> ExecReport:
    return ExecReport(exec_id=f"{venue}-{order.symbol}-{order.cl_ord_id}-R", cl_ord_id=order.cl_ord_id,
                      kind="rejected", venue_order_id=UNKNOWN_VENUE_ORDER_ID, symbol=order.symbol, side=order.side,
                      order_qty=order.qty, reason=f"symbol {order.symbol} is not traded here")
