"""Pure venue logic for the fill-everything mode: every order fills in full at its limit price.

Its memory is client order id -> reports (a duplicate id is answered from it). An end of day forgets
the orders executed before the previous end of day (every order here finishes at once), so the
venue remembers today's and yesterday's. `snapshot` and `from_snapshot` carry that memory as
JSON-safe data; `restore` folds one drop-copy record back in (a record it already has is ignored).
"""

from __future__ import annotations

import json
from collections.abc import Container
from decimal import Decimal
from typing import Any

from pydantic import TypeAdapter

from actors.domain.book_venue import DayAlreadyClosed
from actors.domain.venue_faults import rejection
from messages.base import OrderType
from messages.venue import ExecReport, NewOrderSingle

__all__ = ["DEFAULT_REFERENCE_PRICE", "SNAPSHOT_VERSION", "FillAllVenue"]

DEFAULT_REFERENCE_PRICE = Decimal(100)

#: The shape of `FillAllVenue.snapshot`; `from_snapshot` refuses any other.
SNAPSHOT_VERSION = 1

_REPORTS: TypeAdapter[list[ExecReport]] = TypeAdapter(list[ExecReport])


class FillAllVenue:
    """Client order id -> its execution reports. A duplicate client order id is not executed again."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.orders: dict[str, tuple[ExecReport, ...]] = {}
        self._seq = 0
        #: The last trading day an end of day closed (None before the first).
        self.last_day: int | None = None
        #: Ends of day so far; each order is tagged with the one it was executed in.
        self._epoch = 0
        self._executed: dict[str, int] = {}
        #: Each order's encoded snapshot entry (an order's reports do not change once executed).
        self._encoded: dict[str, bytes] = {}

    def restore(self, report: ExecReport) -> None:
        """Fold a drop-copy record back into the venue's memory after a restart (again: no change)."""
        known = self.orders.get(report.cl_ord_id, ())
        if any(r.exec_id == report.exec_id for r in known):
            return
        self.orders[report.cl_ord_id] = (*known, report)
        self._executed.setdefault(report.cl_ord_id, self._epoch)
        self._encoded.pop(report.cl_ord_id, None)
        self._seq = max(self._seq, int(report.venue_order_id.rsplit("-", 1)[1]))

    def submit(self, order: NewOrderSingle) -> tuple[bool, tuple[ExecReport, ...]]:
        """(duplicate, reports): the new order's reports, or the recorded ones for a duplicate."""
        known = self.orders.get(order.cl_ord_id)
        if known is not None:
            return True, known
        self._seq += 1
        venue_order_id = f"{self.venue}-{self._seq}"
        price = order.price if order.order_type is OrderType.LIMIT and order.price else DEFAULT_REFERENCE_PRICE
        common = {"cl_ord_id": order.cl_ord_id, "venue_order_id": venue_order_id, "symbol": order.symbol,
                  "side": order.side, "order_qty": order.qty, "price": order.price, "account": order.account,
                  "allocation_profile": order.allocation_profile}
        reports = (
            ExecReport(exec_id=f"{venue_order_id}-A", kind="accepted", leaves_qty=order.qty, **common),
            ExecReport(exec_id=f"{venue_order_id}-F1", kind="fill", last_qty=order.qty, last_px=price,
                       cum_qty=order.qty, avg_px=price, leaves_qty=0, **common),
        )
        self.orders[order.cl_ord_id] = reports
        self._executed[order.cl_ord_id] = self._epoch
        return False, reports

    def reject(self, order: NewOrderSingle, reason: str) -> tuple[ExecReport, ...]:
        """Record a new order as refused: it takes a venue order id, its only report is a rejection."""
        _, executed = self.submit(order)
        reports = (rejection(order, executed[0].venue_order_id, reason),)
        self.orders[order.cl_ord_id] = reports
        self._encoded.pop(order.cl_ord_id, None)
        return reports

    def forget(self, cl_ord_id: str) -> None:
        """Forget an order (it was not executed after all: its reports are not on record)."""
        self.orders.pop(cl_ord_id, None)
        self._executed.pop(cl_ord_id, None)
        self._encoded.pop(cl_ord_id, None)

    def status(self, cl_ord_id: str) -> tuple[ExecReport, ...]:
        return self.orders.get(cl_ord_id, ())

    def remembered(self) -> int:
        return len(self.orders)

    def expire_day(self, day: int | None = None) -> None:
        """End of trading day `day`: forget the orders executed before the previous end of day. Raises
        DayAlreadyClosed (and changes nothing) for a day already closed."""
        if day is not None and self.last_day is not None and day <= self.last_day:
            raise DayAlreadyClosed(f"venue {self.venue}: trading day {day} is already closed (the last closed is "
                                   f"{self.last_day})")
        for cl_ord_id in [c for c, epoch in self._executed.items() if epoch < self._epoch]:
            self.forget(cl_ord_id)
        self._epoch += 1
        if day is not None:
            self.last_day = day

    def snapshot(self, leave_out: Container[str] = ()) -> dict[str, Any]:
        """The venue's memory as JSON-safe data, without the orders in `leave_out` (not yet on record)."""
        return {**self._snapshot_head(),
                "orders": [[_REPORTS.dump_python(list(reports), mode="json"), self._executed.get(cl_ord_id, 0)]
                           for cl_ord_id, reports in self.orders.items() if cl_ord_id not in leave_out]}

    def snapshot_json(self, leave_out: Container[str] = ()) -> bytes:
        """`snapshot()` as compact JSON, the fast way: each order's entry is encoded once."""
        head = json.dumps({**self._snapshot_head(), "orders": []}, separators=(",", ":")).encode()
        assert head.endswith(b'"orders":[]}')
        entries = (self._encoded_entry(cl_ord_id) for cl_ord_id in self.orders if cl_ord_id not in leave_out)
        return b"%s%s]}" % (head[:-2], b",".join(entries))

    def _snapshot_head(self) -> dict[str, Any]:
        return {"version": SNAPSHOT_VERSION, "venue": self.venue, "seq": self._seq, "last_day": self.last_day,
                "epoch": self._epoch}

    def _encoded_entry(self, cl_ord_id: str) -> bytes:
        entry = self._encoded.get(cl_ord_id)
        if entry is None:
            entry = self._encoded[cl_ord_id] = b"[%s,%d]" % (_REPORTS.dump_json(list(self.orders[cl_ord_id])),
                                                            self._executed.get(cl_ord_id, 0))
        return entry

    @classmethod
    def from_snapshot(cls, data: dict[str, Any]) -> FillAllVenue:
        """The venue `snapshot` described. Raises ValueError for a snapshot of another shape."""
        if data.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"fill_all snapshot version {data.get('version')!r} is not {SNAPSHOT_VERSION}")
        venue = cls(data["venue"])
        venue._seq = data["seq"]
        venue.last_day = data["last_day"]
        venue._epoch = data["epoch"]
        for reports, epoch in data["orders"]:
            validated = tuple(_REPORTS.validate_python(reports))
            venue.orders[validated[0].cl_ord_id] = validated
            venue._executed[validated[0].cl_ord_id] = epoch
        return venue
