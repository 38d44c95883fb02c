"""The gateway's order registry: every report passes the order's state machine before it is published."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.gateway_orders import GatewayOrders, UnknownOrder
from actors.order_state import InvalidTransition, OrderState
from messages import OrderAccepted, OrderApproved, OrderCanceled, OrderFilled, OrderVenueRejected
from messages.venue import ExecReport


def approved(order_id: str = "O1", qty: int = 100) -> OrderApproved:
    return OrderApproved(order_id=order_id, account="ACC1", symbol="AAPL", side="BUY", qty=qty, price=Decimal("10"))


def report(kind: str, suffix: str, cum: int = 0, leaves: int = 100, last: int = 0, **extra: object) -> ExecReport:
    fields: dict[str, object] = {}
    if kind == "fill":
        fields = {"last_qty": last, "last_px": Decimal("10"), "avg_px": Decimal("10")}
    return ExecReport(exec_id=f"SIM-1-{suffix}", cl_ord_id="O1", kind=kind, venue_order_id="SIM-1", symbol="AAPL",
                      side="BUY", order_qty=100, cum_qty=cum, leaves_qty=leaves, **fields, **extra)


def test_an_accepted_report_makes_the_order_new_and_gives_an_accepted_event_with_the_order_fields() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    event = orders.apply("O1", report("accepted", "A"))
    assert isinstance(event, OrderAccepted)
    assert (event.account, event.price, event.exec_id) == ("ACC1", Decimal("10"), "SIM-1-A")
    assert orders.get("O1").state is OrderState.NEW


def test_a_fill_before_the_order_is_accepted_is_refused_and_counted() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    with pytest.raises(InvalidTransition):
        orders.apply("O1", report("fill", "F1", cum=40, leaves=60, last=40))
    assert orders.invalid == 1 and orders.get("O1").state is OrderState.PENDING_NEW


def test_the_same_report_twice_gives_the_same_event_and_moves_nothing() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    orders.apply("O1", report("accepted", "A"))
    first = orders.apply("O1", report("fill", "F1", cum=40, leaves=60, last=40))
    again = orders.apply("O1", report("fill", "F1", cum=40, leaves=60, last=40))
    assert again is first and orders.get("O1").machine.cum_qty == 40


def test_a_report_for_an_order_never_sent_raises_unknown_order() -> None:
    with pytest.raises(UnknownOrder):
        GatewayOrders("SIM").apply("O1", report("accepted", "A"))


def test_a_restored_resting_order_takes_its_later_fill_and_cancel() -> None:
    orders = GatewayOrders("SIM")
    common = {"order_id": "O1", "account": "ACC1", "symbol": "AAPL", "side": "BUY", "venue": "SIM", "order_qty": 100}
    orders.restore(OrderAccepted(venue_order_id="SIM-1", price=Decimal("10"), exec_id="SIM-1-A", **common))
    assert orders.get("O1").live
    fill = orders.apply("O1", report("fill", "F1", cum=30, leaves=70, last=30, unsolicited=True))
    assert isinstance(fill, OrderFilled) and fill.cum_qty == 30
    canceled = orders.apply("O1", report("canceled", "C", cum=30, leaves=0, reason="canceled on request"))
    assert isinstance(canceled, OrderCanceled) and orders.get("O1").state is OrderState.CANCELED
    assert orders.live() == []


def test_an_order_halted_before_it_was_sent_is_canceled_with_nothing_filled() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    event = orders.cancel_unsent("O1", "trading halted")
    assert (event.cum_qty, event.reason, event.exec_id) == (0, "trading halted", None)
    assert orders.get("O1").state is OrderState.CANCELED


def test_an_unreachable_venue_rejects_the_pending_order() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    event = orders.unavailable("O1", "VENUE_UNAVAILABLE")
    assert isinstance(event, OrderVenueRejected) and orders.get("O1").state is OrderState.REJECTED


def test_finished_orders_beyond_the_bound_are_forgotten_oldest_first() -> None:
    orders = GatewayOrders("SIM", keep_finished=2)
    for n in range(3):
        orders.track(approved(f"O{n}"))
        orders.cancel_unsent(f"O{n}", "halted")
    assert orders.get("O0") is None and orders.get("O1") is not None and orders.get("O2") is not None
