"""Pure order state machine: one order's state, folded from the venue's execution reports.

No Ray or NATS here. `TRANSITIONS` is the whole table: state -> event -> the states it may lead to
(a fill leads to PARTIALLY_FILLED or FILLED depending on cum_qty). Anything not in the table, and
any quantity that does not add up, raises `InvalidTransition` and leaves the machine unchanged.

Events are the execution report kinds ("accepted", "fill", "canceled", "rejected") plus "expired"
(a venue's end-of-day cancel) and "cancel_requested" (the client asked to cancel; the order stays
in its state with `cancel_pending` set until the venue answers).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

__all__ = [
    "EVENTS",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "InvalidTransition",
    "OrderState",
    "OrderStateMachine",
]


class OrderState(StrEnum):
    PENDING_NEW = "PENDING_NEW"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


class InvalidTransition(ValueError):
    """An event that the order's current state does not allow (or with impossible quantities)."""


_S = OrderState
_LIVE_EVENTS: Mapping[str, frozenset[OrderState]] = {
    "fill": frozenset({_S.PARTIALLY_FILLED, _S.FILLED}),
    "canceled": frozenset({_S.CANCELED}),
    "expired": frozenset({_S.EXPIRED}),
}

#: state -> event -> the states the event may lead to. Terminal states allow nothing.
TRANSITIONS: Mapping[OrderState, Mapping[str, frozenset[OrderState]]] = MappingProxyType({
    _S.PENDING_NEW: MappingProxyType({
        "accepted": frozenset({_S.NEW}),
        "rejected": frozenset({_S.REJECTED}),
        # Canceled before the venue acknowledged it (e.g. trading halted while it waited to be sent).
        "canceled": frozenset({_S.CANCELED}),
        "cancel_requested": frozenset({_S.PENDING_NEW}),
    }),
    _S.NEW: MappingProxyType({**_LIVE_EVENTS, "cancel_requested": frozenset({_S.NEW})}),
    _S.PARTIALLY_FILLED: MappingProxyType({**_LIVE_EVENTS, "cancel_requested": frozenset({_S.PARTIALLY_FILLED})}),
    _S.FILLED: MappingProxyType({}),
    _S.CANCELED: MappingProxyType({}),
    _S.REJECTED: MappingProxyType({}),
    _S.EXPIRED: MappingProxyType({}),
})

#: Every event the machine knows.
EVENTS: frozenset[str] = frozenset({"accepted", "fill", "canceled", "rejected", "expired", "cancel_requested"})

#: States an order never leaves.
TERMINAL_STATES: frozenset[OrderState] = frozenset({_S.FILLED, _S.CANCELED, _S.REJECTED, _S.EXPIRED})


class OrderStateMachine:
    """One order: its state, its quantity and how much of it has filled."""

    def __init__(self, order_qty: int, order_id: str = "", state: OrderState = OrderState.PENDING_NEW,
                 cum_qty: int = 0) -> None:
        if isinstance(order_qty, bool) or not isinstance(order_qty, int) or order_qty <= 0:
            raise ValueError(f"order_qty must be a positive int, not {order_qty!r}")
        if not 0 <= cum_qty <= order_qty:
            raise ValueError(f"cum_qty must be within 0..{order_qty}, not {cum_qty}")
        self.order_id = order_id
        self.order_qty = order_qty
        self.state = OrderState(state)
        self.cum_qty = cum_qty
        #: True between `cancel_requested()` and the order reaching a terminal state.
        self.cancel_pending = False

    def __repr__(self) -> str:
        return (f"OrderStateMachine(order_id={self.order_id!r}, state={self.state}, order_qty={self.order_qty}, "
                f"cum_qty={self.cum_qty})")

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def leaves_qty(self) -> int:
        """What can still fill: nothing once the order is terminal."""
        return 0 if self.is_terminal else self.order_qty - self.cum_qty

    def apply(self, kind: str, cum_qty: int = 0, leaves_qty: int = 0) -> OrderState:
        """Apply one event with the report's cum_qty and leaves_qty; returns the new state.

        Only a fill changes cum_qty, and it must raise it (never above order_qty); every other event
        must carry the current cum_qty. cum_qty + leaves_qty may not exceed order_qty.
        "cancel_requested" is the same as `cancel_requested()` (the quantities are not used).
        """
        if kind == "cancel_requested":
            return self.cancel_requested()
        targets = self._targets(kind)
        self._check_quantities(kind, cum_qty, leaves_qty)
        if kind == "fill":
            new_state = OrderState.FILLED if cum_qty == self.order_qty else OrderState.PARTIALLY_FILLED
        else:
            (new_state,) = targets
        if new_state not in targets:  # pragma: no cover - the table and the fill rule agree
            raise self._error(kind, f"it would lead to {new_state}")
        self.state = new_state
        self.cum_qty = cum_qty
        if self.is_terminal:
            self.cancel_pending = False
        return self.state

    def cancel_requested(self) -> OrderState:
        """The client asked to cancel: allowed while the order is live; the state does not change."""
        self._targets("cancel_requested")
        self.cancel_pending = True
        return self.state

    def _targets(self, kind: str) -> frozenset[OrderState]:
        if kind not in EVENTS:
            raise self._error(kind, "it is not a known event")
        targets = TRANSITIONS[self.state].get(kind)
        if targets is None:
            reason = "the order is terminal" if self.is_terminal else "the transition is not allowed"
            raise self._error(kind, reason)
        return targets

    def _check_quantities(self, kind: str, cum_qty: int, leaves_qty: int) -> None:
        if cum_qty < 0 or leaves_qty < 0:
            raise self._error(kind, f"quantities cannot be negative (cum_qty={cum_qty}, leaves_qty={leaves_qty})")
        if cum_qty > self.order_qty:
            raise self._error(kind, f"cum_qty {cum_qty} is above order_qty {self.order_qty}")
        if cum_qty + leaves_qty > self.order_qty:
            raise self._error(kind, f"cum_qty {cum_qty} + leaves_qty {leaves_qty} is above order_qty {self.order_qty}")
        if cum_qty < self.cum_qty:
            raise self._error(kind, f"cum_qty would go down from {self.cum_qty} to {cum_qty}")
        if kind == "fill" and cum_qty == self.cum_qty:
            raise self._error(kind, f"a fill must raise cum_qty above {self.cum_qty}")
        if kind != "fill" and cum_qty != self.cum_qty:
            raise self._error(kind, f"only a fill changes cum_qty ({self.cum_qty} -> {cum_qty})")

    def _error(self, kind: str, why: str) -> InvalidTransition:
        order = f"order {self.order_id}: " if self.order_id else ""
        return InvalidTransition(f"{order}cannot apply {kind!r} in state {self.state}: {why}")
