"""The gateway's orders: each order it took, with its state machine, folded from the venue's reports.

Pure (no Ray, NATS or clock). The venue's drop copy is the one source of execution events: every
report goes through `apply`, which gives the event to publish once per exec id (None for a report
already applied). The order's state machine checks each report; a report it refuses (impossible
after what we know) or one for an order our books had closed is still the venue's record: it is
published as a correction, and counted, never dropped.

An order the registry does not know (taken before a restart, or forgotten) is rebuilt from the report
itself: the venue echoes the order's client fields on every report, and the state before the report
follows from its quantities.

Memory is bounded: finished orders are kept up to `keep_finished` (oldest forgotten first). Forgetting
one loses nothing: a copy of one of its reports would be a copy of an event the stream keeps, and the
stream's duplicate window (as long as its retention) drops it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from actors.domain.order_book import REASON_EXPIRED
from actors.domain.order_state import InvalidTransition, OrderState, OrderStateMachine
from messages import (
    Event,
    OrderAccepted,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderVenueRejected,
)
from messages.base import OrderType, Side, TimeInForce
from messages.venue import ExecReport, NewOrderSingle

__all__ = ["Applied", "GatewayOrders", "TrackedOrder", "UnknownOrder"]

#: Finished orders remembered by default (about 1 KB each).
KEEP_FINISHED = 50_000


class UnknownOrder(KeyError):
    """A report that says nothing of whose order it is (no account echoed), for an order never taken here."""


@dataclass
class TrackedOrder:
    order_id: str
    account: str
    symbol: str
    side: Side
    venue: str
    order_qty: int
    price: Decimal | None
    order_type: OrderType
    tif: TimeInForce
    allocation_profile: str | None
    machine: OrderStateMachine
    #: Exec ids of the venue reports applied so far.
    exec_ids: set[str] = field(default_factory=set)
    #: A request for it may have reached the venue (an attempt got no answer, or a process before this
    #: one may have sent it): it is never closed here without the venue's word.
    maybe_at_venue: bool = False
    #: The venue answered a request for it: its reports are (or will be) in the drop copy.
    venue_answered: bool = False
    #: When this process took the order (its own monotonic clock), and when the broker stored its approval
    #: (the broker's clock): its hold runs from the earlier of the two.
    held_since: float | None = None
    stored_ns: int = 0

    @property
    def state(self) -> OrderState:
        return self.machine.state

    @property
    def live(self) -> bool:
        """At the venue and still able to fill (acknowledged, not terminal)."""
        return self.machine.state in (OrderState.NEW, OrderState.PARTIALLY_FILLED)

    def new_order_single(self) -> NewOrderSingle:
        return NewOrderSingle(cl_ord_id=self.order_id, symbol=self.symbol, side=self.side, qty=self.order_qty,
                              price=self.price, order_type=self.order_type, tif=self.tif, account=self.account,
                              allocation_profile=self.allocation_profile)

    def common(self) -> dict[str, object]:
        return {"order_id": self.order_id, "account": self.account, "symbol": self.symbol, "side": self.side,
                "venue": self.venue, "order_qty": self.order_qty, "allocation_profile": self.allocation_profile}


@dataclass(frozen=True)
class Applied:
    """A report's event, and whether it corrects what our books said (the venue's record wins)."""

    event: Event
    correction: bool


def _machine_event(report: ExecReport) -> str:
    if report.kind == "canceled" and report.reason == REASON_EXPIRED:
        return "expired"
    return report.kind


def _state_before(report: ExecReport) -> tuple[OrderState, int]:
    """The state an order must have been in for `report` to be its next one, and its cum_qty then."""
    if report.kind in ("accepted", "rejected"):
        return OrderState.PENDING_NEW, 0
    cum_before = report.cum_qty - report.last_qty if report.kind == "fill" else report.cum_qty
    return (OrderState.PARTIALLY_FILLED if cum_before else OrderState.NEW), cum_before


class GatewayOrders:
    """Orders of one venue's gateway. `on_change(order_id)` is called whenever an order's state moves."""

    def __init__(self, venue: str, keep_finished: int = KEEP_FINISHED,
                 on_change: Callable[[str], None] | None = None) -> None:
        self.venue = venue
        self._orders: dict[str, TrackedOrder] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._keep_finished = keep_finished
        self._on_change = on_change
        #: Reports the state machine refused, and reports for orders our books had closed (both published).
        self.invalid = 0
        self.corrections = 0

    def __len__(self) -> int:
        return len(self._orders)

    def get(self, order_id: str) -> TrackedOrder | None:
        return self._orders.get(order_id)

    def track(self, order: OrderApproved) -> TrackedOrder:
        """The order about to be sent (PENDING_NEW); the same order again returns what is tracked."""
        known = self._orders.get(order.order_id)
        if known is not None:
            return known
        tracked = TrackedOrder(order.order_id, order.account, order.symbol, order.side, self.venue, order.qty,
                               order.price, order.order_type, order.tif, order.allocation_profile,
                               OrderStateMachine(order.qty, order.order_id))
        self._orders[order.order_id] = tracked
        return tracked

    def live(self) -> list[TrackedOrder]:
        return [o for o in self._orders.values() if o.live]

    def in_doubt(self) -> list[TrackedOrder]:
        """Orders that may be at the venue and have no answer from it yet."""
        return [o for o in self._orders.values()
                if o.state is OrderState.PENDING_NEW and o.maybe_at_venue and not o.venue_answered]

    def apply(self, report: ExecReport) -> Applied | None:
        """The event for one venue report (None when this exec id was applied before)."""
        order = self._orders.get(report.cl_ord_id)
        if order is None:
            order = self._from_report(report)
        if report.exec_id in order.exec_ids:
            return None
        correction = order.machine.is_terminal
        if not correction:
            try:
                order.machine.apply(_machine_event(report), cum_qty=report.cum_qty, leaves_qty=report.leaves_qty)
            except InvalidTransition:
                self.invalid += 1
                correction = True
        if correction:
            self.corrections += 1
            self._reconcile(order, report)
        order.exec_ids.add(report.exec_id)
        order.venue_answered = True
        event = self._event(order, report, correction)
        self._settle(order)
        self._changed(order.order_id)
        return Applied(event, correction)

    def close_unsent(self, order_id: str, kind: str, reason: str) -> OrderCanceled | OrderVenueRejected:
        """End an order the venue never received: "canceled" (e.g. trading halted while it waited) or
        "rejected" (the venue could not be reached within its hold)."""
        order = self._orders.get(order_id)
        if order is None:
            raise UnknownOrder(order_id)
        order.machine.apply(kind, cum_qty=0, leaves_qty=0)
        self._settle(order)
        self._changed(order_id)
        if kind == "canceled":
            return OrderCanceled(cum_qty=0, reason=reason, **order.common())  # type: ignore[arg-type]
        return OrderVenueRejected(reason=reason, **order.common())  # type: ignore[arg-type]

    def _from_report(self, report: ExecReport) -> TrackedOrder:
        if report.account is None:
            raise UnknownOrder(report.cl_ord_id)
        state, cum_qty = _state_before(report)
        order = TrackedOrder(report.cl_ord_id, report.account, report.symbol, report.side, self.venue,
                             report.order_qty, report.price,
                             OrderType.LIMIT if report.price is not None else OrderType.MARKET, TimeInForce.DAY,
                             report.allocation_profile,
                             OrderStateMachine(report.order_qty, report.cl_ord_id, state, cum_qty),
                             maybe_at_venue=True)
        self._orders[order.order_id] = order
        return order

    @staticmethod
    def _reconcile(order: TrackedOrder, report: ExecReport) -> None:
        """The venue's report wins: the machine takes the state the report says the order is in."""
        if report.kind == "fill":
            state = OrderState.FILLED if report.leaves_qty == 0 else OrderState.PARTIALLY_FILLED
        elif report.kind == "accepted":
            state = OrderState.NEW
        elif report.kind == "rejected":
            state = OrderState.REJECTED
        else:
            state = OrderState.EXPIRED if _machine_event(report) == "expired" else OrderState.CANCELED
        order.machine = OrderStateMachine(order.order_qty, order.order_id, state,
                                          min(report.cum_qty, order.order_qty))

    def _event(self, order: TrackedOrder, report: ExecReport, correction: bool) -> Event:
        common = {**order.common(), "correction": correction}
        match report.kind:
            case "accepted":
                return OrderAccepted(venue_order_id=report.venue_order_id, price=report.price or order.price,
                                     exec_id=report.exec_id, **common)  # type: ignore[arg-type]
            case "fill":
                assert report.last_px is not None and report.avg_px is not None
                return OrderFilled(exec_id=report.exec_id, last_qty=report.last_qty, last_px=report.last_px,
                                   cum_qty=report.cum_qty, avg_px=report.avg_px, leaves_qty=report.leaves_qty,
                                   **common)  # type: ignore[arg-type]
            case "canceled":
                return OrderCanceled(cum_qty=report.cum_qty, reason=report.reason or "canceled",
                                     exec_id=report.exec_id, **common)  # type: ignore[arg-type]
            case _:
                return OrderVenueRejected(reason=report.reason or "rejected by venue", exec_id=report.exec_id,
                                          **common)  # type: ignore[arg-type]

    def _changed(self, order_id: str) -> None:
        if self._on_change is not None:
            self._on_change(order_id)

    def _settle(self, order: TrackedOrder) -> None:
        """Remember finished orders up to the bound (oldest forgotten first)."""
        if not order.machine.is_terminal:
            self._finished.pop(order.order_id, None)  # a correction can reopen an order
            return
        self._finished[order.order_id] = None
        while len(self._finished) > self._keep_finished:
            old, _ = self._finished.popitem(last=False)
            self._orders.pop(old, None)
