"""Pure venue logic for the order-book mode: one price-time book per symbol, a seeded random-walk
reference price and a liquidity provider quoting around it.

Deterministic: the same sequence of commands (new, reject, cancel, tick, expire) gives the same
reports with the same exec ids, so a venue that journals its commands rebuilds itself exactly by
replaying them (`BookVenue.apply` takes the journaled `Command`s).

Memory stays bounded: quotes and client orders go into the books with ``remember=False`` (a book
holds only what rests), and an end of day (`ExpireCommand`, journaled, so a replay forgets the same)
forgets the client orders that finished before the previous end of day: the venue remembers every
resting order and today's and yesterday's finished ones; an id it forgot is a new order again.
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
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from actors.domain.order_book import (
    REASON_NOT_OPEN,
    REASON_UNKNOWN_ORDER,
    UNKNOWN_VENUE_ORDER_ID,
    IdCounter,
    OrderBook,
)
from actors.domain.reference_price import LiquidityProvider, RandomWalk
from actors.domain.venue_faults import rejection
from messages.base import Message, OrderId, Side
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


# --- the journaled commands ------------------------------------------------------------------------


class NewCommand(Message):
    cmd: Literal["new"] = "new"
    order: NewOrderSingle


class RejectCommand(Message):
    """A new order the venue decided to refuse (fault injection): the decision itself is journaled."""

    cmd: Literal["reject"] = "reject"
    order: NewOrderSingle
    reason: str


class CancelCommand(Message):
    cmd: Literal["cancel"] = "cancel"
    cl_ord_id: OrderId


class MassCancelCommand(Message):
    """Cancel every resting client order (of one account, if given): the kill switch at the venue."""

    cmd: Literal["mass_cancel"] = "mass_cancel"
    account: str | None = None


class TickCommand(Message):
    """Every reference price takes one random-walk step and the quotes move."""

    cmd: Literal["tick"] = "tick"


class ExpireCommand(Message):
    """End of day: every resting order expires, then the client orders finished before the previous end
    of day are forgotten. `day`: the trading day it closes (see actors.domain.venue_calendar); a day closes once.
    None (journals written before days were recorded): expire and forget, no day is recorded."""

    cmd: Literal["expire"] = "expire"
    day: int | None = None


Command = Annotated[NewCommand | RejectCommand | CancelCommand | MassCancelCommand | TickCommand | ExpireCommand,
                    Field(discriminator="cmd")]


class JournalRecord(Message):
    """One entry of the venue's input journal: the n-th command (n counts from 1)."""

    n: int = Field(ge=1)
    command: Command


_REFUSAL_ID = re.compile(r"-REJ\d+$")
_REPORTS: TypeAdapter[list[ExecReport]] = TypeAdapter(list[ExecReport])

#: The shape of `BookVenue.snapshot`; `restore` refuses any other.
SNAPSHOT_VERSION = 1


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
        #: Client orders: cl_ord_id -> the new order, and -> every report so far (tagged).
        self.orders: dict[str, NewOrderSingle] = {}
        self._history: dict[str, list[ExecReport]] = {}
        self._refusals = IdCounter()
        #: The last trading day an end of day closed (None before the first).
        self.last_day: int | None = None
        #: Ends of day so far. A client order that finishes is tagged with it, and forgotten at the end
        #: of day after the one that follows (so today's and yesterday's finished orders are known).
        self._epoch = 0
        self._finished: dict[str, int] = {}
        #: The encoded snapshot entry of each finished order (it never changes until it is forgotten).
        self._encoded: dict[str, bytes] = {}

    # --- queries -------------------------------------------------------------------------------

    def reference_prices(self) -> dict[str, Decimal]:
        return {s: p.reference for s, p in self.providers.items() if p.reference is not None}

    def knows(self, cl_ord_id: str) -> bool:
        """True when a client order with this id was received (a new order with it is a duplicate)."""
        return cl_ord_id in self.orders

    def status(self, cl_ord_id: str) -> tuple[ExecReport, ...]:
        """Every report of the client order so far, solicited and unsolicited (empty if unknown)."""
        return tuple(self._history.get(cl_ord_id, ()))

    def solicited(self, cl_ord_id: str) -> tuple[ExecReport, ...]:
        """The order's reports caused by its own new-order request: a duplicate request's answer."""
        return tuple(r for r in self._history.get(cl_ord_id, ()) if not r.unsolicited)

    def remembered(self) -> int:
        """How many client orders the venue remembers (resting, and finished today or yesterday)."""
        return len(self.orders)

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
            return Outcome(reports=(), reply=(self._refusal(cl_ord_id, order),))
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
        stale = [cl_ord_id for cl_ord_id, epoch in self._finished.items() if epoch < self._epoch]
        for cl_ord_id in stale:
            del self._finished[cl_ord_id]
            del self.orders[cl_ord_id]
            del self._history[cl_ord_id]
            self._encoded.pop(cl_ord_id, None)
        self._epoch += 1
        if day is not None:
            self.last_day = day
        return Outcome(reports=tagged, reply=())

    # --- snapshots -----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-safe data: the books with their resting orders, every counter, the
        walks' generator states and reference prices, the quotes, and the remembered client orders
        with their reports. Nothing in it is shared with the live venue."""
        return {**self._snapshot_head(),
                "orders": [[order.model_dump(mode="json"), _REPORTS.dump_python(self._history[cl_ord_id], mode="json"),
                            self._finished.get(cl_ord_id)] for cl_ord_id, order in self.orders.items()]}

    def snapshot_json(self) -> bytes:
        """`snapshot()` as compact JSON, the fast way: a finished order's entry never changes, so it is
        encoded once and reused by every later snapshot until the order is forgotten."""
        head = json.dumps({**self._snapshot_head(), "orders": []}, separators=(",", ":")).encode()
        assert head.endswith(b'"orders":[]}')
        return b"%s%s]}" % (head[:-2], b",".join(self._encoded_entry(cl_ord_id) for cl_ord_id in self.orders))

    def _snapshot_head(self) -> dict[str, Any]:
        return {
            "version": SNAPSHOT_VERSION, "venue": self.venue, "symbols": list(self.symbols), "seed": self.seed,
            "levels": self.levels, "qty": self.qty, "order_ids": self._ids.last, "refusals": self._refusals.last,
            "last_day": self.last_day, "epoch": self._epoch,
            "books": {s: book.snapshot() for s, book in self.books.items()},
            "providers": {s: provider.snapshot() for s, provider in self.providers.items()},
        }

    def _encoded_entry(self, cl_ord_id: str) -> bytes:
        entry = self._encoded.get(cl_ord_id)
        if entry is None:
            finished = self._finished.get(cl_ord_id)
            entry = b"[%s,%s,%s]" % (self.orders[cl_ord_id].model_dump_json().encode(),
                                     _REPORTS.dump_json(self._history[cl_ord_id]), json.dumps(finished).encode())
            if finished is not None:
                self._encoded[cl_ord_id] = entry
        return entry

    @classmethod
    def restore(cls, data: dict[str, Any]) -> BookVenue:
        """The venue `snapshot` described: fed the same commands, it gives the same reports (exec ids,
        prices) as the original would have. Raises ValueError for a snapshot of another shape."""
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"venue snapshot version {data.get('version')!r} is not {SNAPSHOT_VERSION}")
        venue = cls(data["venue"], tuple(data["symbols"]), seed=data["seed"], levels=data["levels"], qty=data["qty"])
        venue._ids = IdCounter(data["order_ids"])
        venue._refusals = IdCounter(data["refusals"])
        venue.last_day = data["last_day"]
        venue._epoch = data["epoch"]
        venue.books = {s: OrderBook.restore(book, order_ids=venue._ids) for s, book in data["books"].items()}
        venue.providers = {s: LiquidityProvider.restore(provider, venue.books[s])
                           for s, provider in data["providers"].items()}
        for order, history, finished in data["orders"]:
            new = NewOrderSingle.model_validate(order)
            venue.orders[new.cl_ord_id] = new
            venue._history[new.cl_ord_id] = _REPORTS.validate_python(history)
            if finished is not None:
                venue._finished[new.cl_ord_id] = finished
        return venue

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
                self._finished[report.cl_ord_id] = self._epoch
        return tuple(out)

    def _refusal(self, cl_ord_id: str, order: NewOrderSingle | None) -> ExecReport:
        n = next(self._refusals)
        if order is None:
            return ExecReport(exec_id=f"{self.venue}-REJ{n}", cl_ord_id=cl_ord_id, kind="rejected",
                              venue_order_id=UNKNOWN_VENUE_ORDER_ID, symbol=next(iter(self.books), "NONE"),
                              side=Side.BUY, order_qty=1, reason=REASON_UNKNOWN_ORDER)
        history = self._history.get(cl_ord_id) or []
        venue_order_id = history[0].venue_order_id if history else UNKNOWN_VENUE_ORDER_ID
        return ExecReport(exec_id=f"{self.venue}-REJ{n}", cl_ord_id=cl_ord_id, kind="rejected",
                          venue_order_id=venue_order_id, symbol=order.symbol, side=order.side, order_qty=order.qty,
                          reason=REASON_NOT_OPEN)


def _unknown_symbol(venue: str, order: NewOrderSingle) -> ExecReport:
    return ExecReport(exec_id=f"{venue}-{order.symbol}-{order.cl_ord_id}-R", cl_ord_id=order.cl_ord_id,
                      kind="rejected", venue_order_id=UNKNOWN_VENUE_ORDER_ID, symbol=order.symbol, side=order.side,
                      order_qty=order.qty, reason=f"symbol {order.symbol} is not traded here")
