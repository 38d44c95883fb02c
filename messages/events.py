"""Events: facts published on the streams, one model per event type."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, model_validator

from messages.base import AccountId, Event, Message, Price, Quantity, Side, Symbol, VenueId
from messages.commands import OrderSpec

__all__ = [
    "EVENT_TYPES",
    "AlarmRaised",
    "AllocationCompleted",
    "AllocationLine",
    "BreakerChanged",
    "ChildFailed",
    "ChildRestarted",
    "ChildStarted",
    "DeadLettered",
    "Escalated",
    "GaveUp",
    "OrderAccepted",
    "OrderApproved",
    "OrderCancelRejected",
    "OrderCancelRequested",
    "OrderCanceled",
    "OrderFilled",
    "OrderReceived",
    "OrderRejected",
    "OrderVenueRejected",
    "SupervisionEvent",
    "TradingStateChanged",
]


class OrderReceived(OrderSpec, Event):
    TYPE = "OrderReceived"


class OrderApproved(OrderSpec, Event):
    TYPE = "OrderApproved"
    #: When the broker stored the OrderReceived (epoch ns, the broker's clock): the time risk's rate
    #: windows count in, the same for every replica whatever its own clock says.
    received_ns: int | None = None


class OrderRejected(Event):
    TYPE = "OrderRejected"
    account: AccountId
    symbol: Symbol
    rule: str
    reason: str
    limit: str | None = None
    value: str | None = None


class _VenueEvent(Event):
    account: AccountId
    symbol: Symbol
    side: Side
    venue: VenueId
    order_qty: Quantity
    allocation_profile: AccountId | None = None
    #: A venue report for an order our books had already closed: published as the correction it is
    #: (the venue's record wins), and flagged by the audit.
    correction: bool = False


class OrderAccepted(_VenueEvent):
    TYPE = "OrderAccepted"
    venue_order_id: str
    price: Price | None = None
    exec_id: str | None = None


class OrderFilled(_VenueEvent):
    TYPE = "OrderFilled"
    exec_id: str
    last_qty: Quantity
    last_px: Price
    cum_qty: Quantity
    avg_px: Price
    leaves_qty: int = Field(ge=0)

    @model_validator(mode="after")
    def _quantities_add_up(self) -> OrderFilled:
        if self.cum_qty + self.leaves_qty > self.order_qty or self.last_qty > self.cum_qty:
            raise ValueError("fill quantities are inconsistent (cum + leaves > order, or last > cum)")
        return self


class OrderCanceled(_VenueEvent):
    TYPE = "OrderCanceled"
    cum_qty: int = Field(ge=0)
    reason: str
    #: The venue's report id; None when the gateway canceled an order that never reached the venue.
    exec_id: str | None = None


class OrderVenueRejected(_VenueEvent):
    TYPE = "OrderVenueRejected"
    reason: str
    exec_id: str | None = None


class OrderCancelRequested(Event):
    """A client (or operator) asks to cancel a working order; published on `orders.cancel.<venue>`."""

    TYPE = "OrderCancelRequested"
    account: AccountId
    venue: VenueId
    reason: str = "client request"


class OrderCancelRejected(Event):
    """The cancel could not be done (unknown order, already filled or canceled); not a terminal outcome."""

    TYPE = "OrderCancelRejected"
    account: AccountId
    venue: VenueId
    reason: str
    state: str | None = None


class TradingStateChanged(Event):
    """The kill switch moved (ACTIVE / REDUCING / HALTED), globally (`account` None) or for one account."""

    TYPE = "TradingStateChanged"
    order_id: str = "-"  # type: ignore[assignment]
    account: AccountId | None = None
    state: str
    reason: str = ""


class AllocationLine(Message):
    """An account's share; in `delta` it may be negative (a later fill re-balances the split)."""

    account: AccountId
    qty: int


class AllocationCompleted(Event):
    """The split of an order's cumulative fill; `lines` sum to `cum_qty`, `delta` to `last_qty`."""

    TYPE = "AllocationCompleted"
    block_account: AccountId
    symbol: Symbol
    side: Side
    profile: str
    exec_id: str
    cum_qty: Quantity
    last_qty: Quantity
    avg_px: Price
    lines: tuple[AllocationLine, ...]
    delta: tuple[AllocationLine, ...]

    @model_validator(mode="after")
    def _sums(self) -> AllocationCompleted:
        if any(line.qty < 0 for line in self.lines):
            raise ValueError("cumulative allocation lines cannot be negative")
        if sum(line.qty for line in self.lines) != self.cum_qty:
            raise ValueError("allocation lines must sum to cum_qty")
        if sum(line.qty for line in self.delta) != self.last_qty:
            raise ValueError("allocation delta must sum to last_qty")
        return self


class DeadLettered(Event):
    """A message a stage could not process. `order_id` is "-" when it could not be read."""

    TYPE = "DeadLettered"
    order_id: str = "-"  # type: ignore[assignment]
    stage: str
    reason: str
    error: str
    original_subject: str
    original_stream: str | None = None
    original_stream_seq: int | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    payload_b64: str
    #: The original was too large to copy here: it is read from `original_stream` at `original_stream_seq`.
    payload_omitted: bool = False
    deliveries: int = Field(ge=1)


class AlarmRaised(Event):
    """Something an operator must look at, published on `supervision.alarm.<kind>` (and counted in
    the metrics): a message given up by the broker, a refused control value, an order whose venue
    state is in doubt, a correction from the venue, a stream that refuses writes."""

    TYPE = "AlarmRaised"
    order_id: str = "-"  # type: ignore[assignment]
    source: str
    kind: str
    detail: str
    severity: Literal["warning", "critical"] = "warning"


class SupervisionEvent(Event):
    order_id: str = "-"  # type: ignore[assignment]
    path: str
    child: str
    detail: str = ""
    pid: int | None = None
    node: str | None = None


class ChildStarted(SupervisionEvent):
    TYPE = "ChildStarted"


class ChildFailed(SupervisionEvent):
    TYPE = "ChildFailed"


class ChildRestarted(SupervisionEvent):
    TYPE = "ChildRestarted"
    restarts: int = 0
    backoff_s: Decimal = Decimal(0)


class BreakerChanged(SupervisionEvent):
    """A venue's circuit breaker changed state (closed / open / half_open)."""

    TYPE = "BreakerChanged"
    venue: str
    old: str
    new: str


class Escalated(SupervisionEvent):
    """A supervisor's restart intensity was exceeded (or a decider said escalate): it stopped its
    children and handed the failure to its parent."""

    TYPE = "Escalated"


class GaveUp(SupervisionEvent):
    """Restart intensity exceeded: the supervisor stopped restarting."""

    TYPE = "GaveUp"


EVENT_TYPES: dict[str, type[Event]] = {
    cls.TYPE: cls
    for cls in (
        OrderReceived,
        OrderApproved,
        OrderRejected,
        OrderAccepted,
        OrderFilled,
        OrderCanceled,
        OrderVenueRejected,
        OrderCancelRequested,
        OrderCancelRejected,
        TradingStateChanged,
        AllocationCompleted,
        DeadLettered,
        ChildStarted,
        ChildFailed,
        ChildRestarted,
        Escalated,
        GaveUp,
        BreakerChanged,
        AlarmRaised,
    )
}

