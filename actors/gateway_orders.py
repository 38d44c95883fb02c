"""The gateway's orders: each order sent to the venue with its state machine and published events.

Pure (no Ray, NATS or clock). Every execution report goes through `apply`: the order's state machine
accepts or refuses the transition (`InvalidTransition`: the caller logs it and publishes nothing), and
the event to publish is built from the order's own fields. A report already applied (same exec id)
gives back the same event, so a re-sent order or a redelivered report republishes the same thing.
The registry is rebuilt after a restart by folding the execution events already published (`restore`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal

from actors.order_book import REASON_EXPIRED
from actors.order_state import InvalidTransition, OrderState, OrderStateMachine
from messages import (
    Event,
    OrderAccepted,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderVenueRejected,
)
from messages.base import OrderType, Side
from messages.venue import ExecReport

__all__ = ["GatewayOrders", "TrackedOrder", "UnknownOrder"]


class UnknownOrder(KeyError):
    """A report or cancel for an order this gateway never sent (or has forgotten)."""


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
    allocation_profile: str | None
    machine: OrderStateMachine
    #: exec id -> the event published for it
    events: dict[str, Event] = field(default_factory=dict)
    #: ids of the cancel requests already sent to the venue for this order
    cancel_requests: set[str] = field(default_factory=set)

    @property
    def state(self) -> OrderState:
        return self.machine.state

    @property
    def live(self) -> bool:
        """At the venue and still able to fill (acknowledged, not terminal)."""
        return self.machine.state in (OrderState.NEW, OrderState.PARTIALLY_FILLED)

    def _common(self) -> dict[str, object]:
        return {"order_id": self.order_id, "account": self.account, "symbol": self.symbol, "side": self.side,
                "venue": self.venue, "order_qty": self.order_qty, "allocation_profile": self.allocation_profile}


def _machine_event(report: ExecReport) -> str:
    if report.kind == "canceled" and report.reason == REASON_EXPIRED:
        return "expired"
    return report.kind


class GatewayOrders:
    """Orders of one venue's gateway. Finished orders are kept (bounded) to refuse late reports."""

    def __init__(self, venue: str, keep_finished: int = 100_000) -> None:
        self.venue = venue
        self._orders: dict[str, TrackedOrder] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._keep_finished = keep_finished
        #: Reports refused by the state machine so far (each is logged by the caller).
        self.invalid = 0

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
                               order.price, order.order_type, order.allocation_profile,
                               OrderStateMachine(order.qty, order.order_id))
        self._orders[order.order_id] = tracked
        return tracked

    def live(self) -> list[TrackedOrder]:
        return [o for o in self._orders.values() if o.live]

    def apply(self, order_id: str, report: ExecReport) -> Event:
        """The event for `report`, after the order's state machine accepted it."""
        order = self._orders.get(order_id)
        if order is None:
            raise UnknownOrder(order_id)
        known = order.events.get(report.exec_id)
        if known is not None:
            return known
        try:
            order.machine.apply(_machine_event(report), cum_qty=report.cum_qty, leaves_qty=report.leaves_qty)
        except InvalidTransition:
            self.invalid += 1
            raise
        event = self._event(order, report)
        order.events[report.exec_id] = event
        self._settle(order)
        return event

    def cancel_unsent(self, order_id: str, reason: str) -> OrderCanceled:
        """Cancel an order the venue never received (e.g. trading halted while it waited)."""
        order = self._finish_unsent(order_id, "canceled")
        return OrderCanceled(cum_qty=0, reason=reason, **order._common())  # type: ignore[arg-type]

    def unavailable(self, order_id: str, reason: str) -> OrderVenueRejected:
        """The venue could not be reached within the order's hold time."""
        order = self._finish_unsent(order_id, "rejected")
        return OrderVenueRejected(reason=reason, **order._common())  # type: ignore[arg-type]

    def _finish_unsent(self, order_id: str, kind: str) -> TrackedOrder:
        """A pending order ends without a venue report (its state machine still has the last word)."""
        order = self._orders.get(order_id)
        if order is None:
            raise UnknownOrder(order_id)
        order.machine.apply(kind, cum_qty=0, leaves_qty=0)
        self._settle(order)
        return order

    def restore(self, event: Event) -> None:
        """Fold an execution event this gateway published before (rebuild after a restart)."""
        if not isinstance(event, OrderAccepted | OrderFilled | OrderCanceled | OrderVenueRejected):
            return
        order = self._orders.get(event.order_id)
        if order is None:
            price = event.price if isinstance(event, OrderAccepted) else None
            order = TrackedOrder(event.order_id, event.account, event.symbol, event.side, event.venue,
                                 event.order_qty, price, OrderType.LIMIT, event.allocation_profile,
                                 OrderStateMachine(event.order_qty, event.order_id))
            self._orders[event.order_id] = order
        if event.exec_id is not None and event.exec_id in order.events:
            return
        try:
            if isinstance(event, OrderAccepted):
                order.machine.apply("accepted", cum_qty=0, leaves_qty=event.order_qty)
            elif isinstance(event, OrderFilled):
                order.machine.apply("fill", cum_qty=event.cum_qty, leaves_qty=event.leaves_qty)
            elif isinstance(event, OrderCanceled):
                kind = "expired" if event.reason == REASON_EXPIRED else "canceled"
                order.machine.apply(kind, cum_qty=event.cum_qty, leaves_qty=0)
            else:
                order.machine.apply("rejected", cum_qty=order.machine.cum_qty, leaves_qty=0)
        except InvalidTransition:
            self.invalid += 1
            return
        if event.exec_id is not None:
            order.events[event.exec_id] = event
        self._settle(order)

    def _event(self, order: TrackedOrder, report: ExecReport) -> Event:
        common = order._common()
        match report.kind:
            case "accepted":
                return OrderAccepted(venue_order_id=report.venue_order_id, price=order.price,
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

    def _settle(self, order: TrackedOrder) -> None:
        """Remember finished orders up to the bound (oldest forgotten first)."""
        if not order.machine.is_terminal:
            return
        self._finished[order.order_id] = None
        while len(self._finished) > self._keep_finished:
            old, _ = self._finished.popitem(last=False)
            self._orders.pop(old, None)
