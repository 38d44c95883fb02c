"""The order state machine: the valid transitions, the invalid ones, terminal states, cancel requests."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.domain.order_book import OrderBook
from actors.domain.order_state import (
    EVENTS,
    TERMINAL_STATES,
    TRANSITIONS,
    InvalidTransition,
    OrderState,
    OrderStateMachine,
)
from messages.base import OrderType, Side, TimeInForce

S = OrderState
QTY = 100


def machine(state: OrderState = S.PENDING_NEW, cum_qty: int = 0) -> OrderStateMachine:
    return OrderStateMachine(QTY, order_id="O1", state=state, cum_qty=cum_qty)


@pytest.mark.parametrize(
    ("state", "cum_before", "event", "cum_qty", "leaves_qty", "expected"),
    [
        (S.PENDING_NEW, 0, "accepted", 0, 100, S.NEW),
        (S.PENDING_NEW, 0, "rejected", 0, 0, S.REJECTED),
        (S.PENDING_NEW, 0, "canceled", 0, 0, S.CANCELED),  # e.g. trading halted before it was sent
        (S.NEW, 0, "fill", 40, 60, S.PARTIALLY_FILLED),
        (S.NEW, 0, "fill", 100, 0, S.FILLED),
        (S.PARTIALLY_FILLED, 40, "fill", 70, 30, S.PARTIALLY_FILLED),
        (S.PARTIALLY_FILLED, 40, "fill", 100, 0, S.FILLED),
        (S.NEW, 0, "canceled", 0, 0, S.CANCELED),
        (S.PARTIALLY_FILLED, 40, "canceled", 40, 0, S.CANCELED),
        (S.NEW, 0, "expired", 0, 0, S.EXPIRED),
        (S.PARTIALLY_FILLED, 40, "expired", 40, 0, S.EXPIRED),
    ],
)
def test_a_valid_event_moves_the_order_to_the_expected_state(
    state: OrderState, cum_before: int, event: str, cum_qty: int, leaves_qty: int, expected: OrderState
) -> None:
    order = machine(state, cum_before)
    assert order.apply(event, cum_qty=cum_qty, leaves_qty=leaves_qty) is expected
    assert (order.state, order.cum_qty) == (expected, cum_qty)


@pytest.mark.parametrize(
    ("state", "cum_before", "event", "cum_qty", "leaves_qty"),
    [
        (S.FILLED, 100, "fill", 100, 0),
        (S.CANCELED, 0, "accepted", 0, 100),
        (S.NEW, 0, "accepted", 0, 100),
        (S.NEW, 0, "rejected", 0, 0),
        (S.PENDING_NEW, 0, "fill", 10, 90),
        (S.PENDING_NEW, 0, "expired", 0, 0),
        (S.PARTIALLY_FILLED, 40, "fill", 30, 70),  # cum_qty going down
        (S.PARTIALLY_FILLED, 40, "fill", 40, 60),  # a fill that fills nothing
        (S.NEW, 0, "fill", 101, 0),  # above order_qty
        (S.NEW, 0, "fill", 50, 60),  # cum + leaves above order_qty
        (S.NEW, 0, "fill", -1, 0),
        (S.PARTIALLY_FILLED, 40, "canceled", 0, 0),  # a cancel that loses the fills
        (S.NEW, 0, "canceled", 10, 0),  # only a fill changes cum_qty
        (S.REJECTED, 0, "expired", 0, 0),
        (S.EXPIRED, 0, "canceled", 0, 0),
        (S.NEW, 0, "replaced", 0, 100),  # not an event at all
    ],
)
def test_an_invalid_event_raises_naming_state_and_event_and_leaves_the_order_unchanged(
    state: OrderState, cum_before: int, event: str, cum_qty: int, leaves_qty: int
) -> None:
    order = machine(state, cum_before)
    with pytest.raises(InvalidTransition) as raised:
        order.apply(event, cum_qty=cum_qty, leaves_qty=leaves_qty)
    assert str(state) in str(raised.value)
    assert repr(event) in str(raised.value)
    assert (order.state, order.cum_qty) == (state, cum_before)


def test_invalid_transition_is_a_value_error() -> None:
    assert issubclass(InvalidTransition, ValueError)


@pytest.mark.parametrize("event", sorted(EVENTS))
@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_a_terminal_state_accepts_no_event(state: OrderState, event: str) -> None:
    order = machine(state, QTY if state is S.FILLED else 0)
    with pytest.raises(InvalidTransition, match="terminal"):
        order.apply(event, cum_qty=order.cum_qty)
    assert order.state is state


@pytest.mark.parametrize(
    ("state", "terminal"),
    [(S.PENDING_NEW, False), (S.NEW, False), (S.PARTIALLY_FILLED, False),
     (S.FILLED, True), (S.CANCELED, True), (S.REJECTED, True), (S.EXPIRED, True)],
)
def test_only_filled_canceled_rejected_and_expired_are_terminal(state: OrderState, terminal: bool) -> None:
    order = machine(state)
    assert order.is_terminal is terminal
    assert (order.leaves_qty == 0) is terminal


def test_the_transition_table_covers_every_state_and_only_known_events() -> None:
    assert set(TRANSITIONS) == set(OrderState)
    for state, events in TRANSITIONS.items():
        assert set(events) <= EVENTS
        assert (not events) is (state in TERMINAL_STATES)


@pytest.mark.parametrize("state", [S.PENDING_NEW, S.NEW, S.PARTIALLY_FILLED])
def test_a_cancel_request_on_a_live_order_marks_it_pending_without_changing_its_state(state: OrderState) -> None:
    order = machine(state, 40 if state is S.PARTIALLY_FILLED else 0)
    assert order.cancel_requested() is state
    assert order.cancel_pending


def test_a_cancel_request_on_a_terminal_order_raises() -> None:
    order = machine(S.FILLED, QTY)
    with pytest.raises(InvalidTransition, match="'cancel_requested' in state FILLED"):
        order.cancel_requested()
    assert not order.cancel_pending


def test_reaching_a_terminal_state_clears_the_pending_cancel() -> None:
    order = machine(S.NEW)
    order.cancel_requested()
    order.apply("canceled")
    assert (order.state, order.cancel_pending) == (S.CANCELED, False)


@pytest.mark.parametrize(("order_qty", "cum_qty"), [(0, 0), (-1, 0), (10, 11), (10, -1)])
def test_a_machine_cannot_be_built_with_impossible_quantities(order_qty: int, cum_qty: int) -> None:
    with pytest.raises(ValueError):
        OrderStateMachine(order_qty, cum_qty=cum_qty)


def test_the_reports_of_a_book_order_fold_to_its_final_state() -> None:
    book = OrderBook("AAPL")
    book.submit("S1", Side.SELL, 100, OrderType.LIMIT, TimeInForce.DAY, Decimal("10.00"))
    book.submit("B1", Side.BUY, 30, OrderType.LIMIT, TimeInForce.DAY, Decimal("10.00"))
    book.submit("B2", Side.BUY, 70, OrderType.LIMIT, TimeInForce.DAY, Decimal("10.00"))
    order = OrderStateMachine(100, order_id="S1")
    states = [order.apply(r.kind, r.cum_qty, r.leaves_qty) for r in book.status("S1")]
    assert states == [S.NEW, S.PARTIALLY_FILLED, S.FILLED]
