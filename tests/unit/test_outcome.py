"""An order's events folded into its outcome: the quick settled check agrees with the full outcome."""

from __future__ import annotations

import uuid
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from cluster.client.outcome import OrderStatus, OrderTrack
from messages import (
    AllocationCompleted,
    AllocationLine,
    Event,
    OrderAccepted,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderVenueRejected,
    wrap,
)

ORDER_QTY = 100
_VENUE = {"order_id": "O-1", "account": "ACC1", "symbol": "AAPL", "side": "BUY", "venue": "SIM",
          "order_qty": ORDER_QTY}


def fill(cum: int, leaves: int | None = None, exec_id: str = "E") -> OrderFilled:
    leaves = ORDER_QTY - cum if leaves is None else leaves
    return OrderFilled(**_VENUE, exec_id=f"{exec_id}-{cum}", last_qty=min(cum, 1), last_px=Decimal(10), cum_qty=cum,
                       avg_px=Decimal(10), leaves_qty=leaves)


def allocation(cum: int) -> AllocationCompleted:
    lines = (AllocationLine(account="A", qty=cum),)
    return AllocationCompleted(order_id="O-1", block_account="ACC1", symbol="AAPL", side="BUY", profile="P",
                               exec_id=f"E-{cum}", cum_qty=cum, last_qty=cum, avg_px=Decimal(10),
                               lines=lines, delta=lines)


EVENTS: st.SearchStrategy[Event] = st.one_of(
    st.just(OrderAccepted(**_VENUE, venue_order_id="V-1")),
    st.integers(1, ORDER_QTY).map(fill),
    st.integers(1, ORDER_QTY - 1).map(lambda cum: fill(cum, leaves=0, exec_id="X")),  # done for the day
    st.integers(1, ORDER_QTY).map(allocation),
    st.just(OrderRejected(order_id="O-1", account="ACC1", symbol="AAPL", rule="max_qty", reason="too big")),
    st.just(OrderVenueRejected(**_VENUE, reason="closed")),
    st.integers(0, ORDER_QTY).map(lambda cum: OrderCanceled(**_VENUE, cum_qty=cum, reason="client")),
)


def track_of(events: list[Event]) -> OrderTrack:
    track = OrderTrack("O-1")
    for n, event in enumerate(events):
        track.add(wrap(event, event_id=uuid.UUID(int=n + 1)), event)
    return track


@given(st.lists(EVENTS, max_size=8))
def test_the_quick_settled_check_agrees_with_the_full_outcome(events: list[Event]) -> None:
    track = track_of(events)
    assert track.settled() == track.outcome().settled


def test_a_filled_order_is_settled_only_once_every_share_is_allocated() -> None:
    track = track_of([fill(60), fill(100)])
    assert track.outcome().status is OrderStatus.FILLED and not track.settled()
    track.add(wrap(allocation(100), event_id=uuid.UUID(int=99)), allocation(100))
    assert track.settled()


def test_an_order_with_no_events_is_not_settled() -> None:
    assert not OrderTrack("O-1").settled()


@given(st.lists(EVENTS, max_size=8))
def test_the_outcome_counts_the_highest_cumulative_fill_and_allocation(events: list[Event]) -> None:
    outcome = track_of(events).outcome()
    assert outcome.filled_qty == max((e.cum_qty for e in events if isinstance(e, OrderFilled)), default=0)
    assert outcome.allocated_qty == max((e.cum_qty for e in events if isinstance(e, AllocationCompleted)), default=0)
