"""Folding an order's events into its outcome (pure: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from messages import (
    AllocationCompleted,
    Envelope,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderCancelRejected,
    OrderFilled,
    OrderRejected,
    OrderVenueRejected,
)

__all__ = ["OrderOutcome", "OrderStatus", "OrderTrack"]


class OrderStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    VENUE_REJECTED = "venue_rejected"


TERMINAL = {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.VENUE_REJECTED}


@dataclass(frozen=True)
class OrderOutcome:
    order_id: str
    status: OrderStatus
    filled_qty: int
    avg_px: Decimal | None
    allocated: dict[str, int]
    allocated_qty: int
    reason: str | None
    events: tuple[Envelope, ...]
    #: Why the latest cancel request was refused (the order goes on), if one was.
    cancel_rejected: str | None = None

    @property
    def settled(self) -> bool:
        """Terminal, and every filled share allocated: nothing more will happen to this order."""
        return self.status in TERMINAL and self.allocated_qty == self.filled_qty


@dataclass
class OrderTrack:
    """Everything seen of one order. Idempotent: the same event id twice counts once (and is noted)."""

    order_id: str
    events: dict[str, tuple[Envelope, Event]] = field(default_factory=dict)
    duplicate_deliveries: int = 0
    # Folded as events arrive, so `settled()` costs O(1) per event (the full outcome is built on demand).
    _ended: bool = field(default=False, repr=False)  # rejected, venue-rejected or canceled
    _last_fill: OrderFilled | None = field(default=None, repr=False)  # the first with the highest cum_qty
    _latest_alloc: AllocationCompleted | None = field(default=None, repr=False)  # likewise

    def add(self, envelope: Envelope, event: Event) -> None:
        key = str(envelope.event_id)
        if key in self.events:
            self.duplicate_deliveries += 1
            return
        self.events[key] = (envelope, event)
        if isinstance(event, OrderRejected | OrderVenueRejected | OrderCanceled):
            self._ended = True
        elif isinstance(event, OrderFilled) and (self._last_fill is None
                                                 or event.cum_qty > self._last_fill.cum_qty):
            self._last_fill = event
        elif isinstance(event, AllocationCompleted) and (self._latest_alloc is None
                                                         or event.cum_qty > self._latest_alloc.cum_qty):
            self._latest_alloc = event

    def settled(self) -> bool:
        """What `outcome().settled` says, without building the outcome."""
        last_fill, latest_alloc = self._last_fill, self._latest_alloc
        filled = last_fill.cum_qty if last_fill is not None else 0
        terminal = self._ended or (last_fill is not None and last_fill.leaves_qty == 0)
        return terminal and (latest_alloc.cum_qty if latest_alloc else 0) == filled

    def _of(self, kind: type[Event]) -> list[Event]:
        return [ev for _, ev in self.events.values() if isinstance(ev, kind)]

    def terminal_count(self) -> int:
        """Distinct terminal facts (more than one means the order was done twice)."""
        final_fills = {f.exec_id for f in self._of(OrderFilled) if f.leaves_qty == 0}  # type: ignore[attr-defined]
        return (len(self._of(OrderRejected)) + len(self._of(OrderVenueRejected)) + len(self._of(OrderCanceled))
                + len(final_fills))

    def duplicated_executions(self) -> int:
        """Fills or allocations of the same venue execution published under different event ids."""
        fills = [f.exec_id for f in self._of(OrderFilled)]  # type: ignore[attr-defined]
        allocs = [a.exec_id for a in self._of(AllocationCompleted)]  # type: ignore[attr-defined]
        return (len(fills) - len(set(fills))) + (len(allocs) - len(set(allocs)))

    def outcome(self) -> OrderOutcome:
        last_fill, latest_alloc = self._last_fill, self._latest_alloc
        filled = last_fill.cum_qty if last_fill else 0
        allocated_qty = latest_alloc.cum_qty if latest_alloc else 0
        status, reason = OrderStatus.PENDING, None
        if rej := self._of(OrderRejected):
            status, reason = OrderStatus.REJECTED, f"{rej[0].rule}: {rej[0].reason}"  # type: ignore[attr-defined]
        elif vrej := self._of(OrderVenueRejected):
            status, reason = OrderStatus.VENUE_REJECTED, vrej[0].reason  # type: ignore[attr-defined]
        elif cxl := self._of(OrderCanceled):
            status, reason = OrderStatus.CANCELED, cxl[0].reason  # type: ignore[attr-defined]
        elif last_fill is not None:
            status = OrderStatus.FILLED if last_fill.leaves_qty == 0 else OrderStatus.PARTIALLY_FILLED
        elif self._of(OrderAccepted):
            status = OrderStatus.ACCEPTED
        return OrderOutcome(
            order_id=self.order_id,
            status=status,
            filled_qty=filled,
            avg_px=last_fill.avg_px if last_fill else None,
            allocated={line.account: line.qty for line in latest_alloc.lines} if latest_alloc else {},
            allocated_qty=allocated_qty,
            reason=reason,
            events=tuple(env for env, _ in sorted(self.events.values(), key=lambda p: p[0].ts)),
            cancel_rejected=self._latest_cancel_rejection(),
        )

    def _latest_cancel_rejection(self) -> str | None:
        refusals = sorted(((env.ts, ev) for env, ev in self.events.values() if isinstance(ev, OrderCancelRejected)),
                          key=lambda p: p[0])
        return refusals[-1][1].reason if refusals else None
