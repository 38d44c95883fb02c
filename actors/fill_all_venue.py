"""Pure venue logic for the fill-everything mode: every order fills in full at its limit price."""

from __future__ import annotations

from decimal import Decimal

from messages.base import OrderType
from messages.venue import ExecReport, NewOrderSingle

__all__ = ["DEFAULT_REFERENCE_PRICE", "FillAllVenue"]

DEFAULT_REFERENCE_PRICE = Decimal(100)


class FillAllVenue:
    """Client order id -> its execution reports. A duplicate client order id is not executed again."""

    def __init__(self, venue: str) -> None:
        self.venue = venue
        self.orders: dict[str, tuple[ExecReport, ...]] = {}
        self._seq = 0

    def restore(self, report: ExecReport) -> None:
        """Fold a drop-copy record back into the venue's memory after a restart."""
        self.orders[report.cl_ord_id] = (*self.orders.get(report.cl_ord_id, ()), report)
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
        return False, reports

    def status(self, cl_ord_id: str) -> tuple[ExecReport, ...]:
        return self.orders.get(cl_ord_id, ())
