"""The gateway's order registry: every venue report is published once; the state machine checks it,
and a report our books cannot take is still the venue's record (a correction), never dropped."""

from __future__ import annotations

from decimal import Decimal

from actors.domain.gateway_orders import GatewayOrders
from actors.domain.order_state import OrderState
from messages import OrderAccepted, OrderApproved, OrderCanceled, OrderFilled, OrderVenueRejected
from messages.venue import ExecReport


def approved(order_id: str = "O1", qty: int = 100) -> OrderApproved:
    return OrderApproved(order_id=order_id, account="ACC1", symbol="AAPL", side="BUY", qty=qty, price=Decimal("10"),
                         allocation_profile="FUND3")


def report(kind: str, suffix: str, cum: int = 0, leaves: int = 100, last: int = 0, **extra: object) -> ExecReport:
    fields: dict[str, object] = {"account": "ACC1", "price": Decimal("10"), "allocation_profile": "FUND3"}
    if kind == "fill":
        fields |= {"last_qty": last, "last_px": Decimal("10"), "avg_px": Decimal("10")}
    return ExecReport(exec_id=f"SIM-1-{suffix}", cl_ord_id="O1", kind=kind, venue_order_id="SIM-1", symbol="AAPL",
                      side="BUY", order_qty=100, cum_qty=cum, leaves_qty=leaves, **(fields | extra))


def test_an_accepted_report_makes_the_order_new_and_gives_an_accepted_event_with_the_order_fields() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    applied = orders.apply(report("accepted", "A"))
    assert applied is not None and not applied.correction
    event = applied.event
    assert isinstance(event, OrderAccepted)
    assert (event.account, event.price, event.exec_id, event.allocation_profile) == ("ACC1", Decimal("10"),
                                                                                      "SIM-1-A", "FUND3")
    assert orders.get("O1").state is OrderState.NEW


def test_the_same_report_twice_is_published_once() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    orders.apply(report("accepted", "A"))
    assert orders.apply(report("fill", "F1", cum=40, leaves=60, last=40)) is not None
    assert orders.apply(report("fill", "F1", cum=40, leaves=60, last=40)) is None
    assert orders.get("O1").machine.cum_qty == 40


def test_a_report_for_an_order_never_taken_here_is_rebuilt_from_the_fields_the_venue_echoes() -> None:
    orders = GatewayOrders("SIM")
    applied = orders.apply(report("fill", "F2", cum=70, leaves=30, last=30, unsolicited=True))
    assert applied is not None and not applied.correction
    assert isinstance(applied.event, OrderFilled) and applied.event.account == "ACC1"
    assert orders.get("O1").state is OrderState.PARTIALLY_FILLED


def test_a_fill_our_state_machine_refuses_is_still_published_as_a_correction() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    applied = orders.apply(report("fill", "F1", cum=40, leaves=60, last=40))  # before any "accepted"
    assert applied is not None and applied.correction and applied.event.correction  # type: ignore[attr-defined]
    assert orders.invalid == 1 and orders.corrections == 1
    assert orders.get("O1").state is OrderState.PARTIALLY_FILLED


def test_a_fill_for_an_order_our_books_had_closed_reopens_nothing_silently_it_is_a_correction() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    orders.close_unsent("O1", "rejected", "VENUE_UNAVAILABLE")
    applied = orders.apply(report("fill", "F1", cum=100, leaves=0, last=100))
    assert applied is not None and applied.correction
    assert orders.get("O1").state is OrderState.FILLED and orders.get("O1").machine.cum_qty == 100


def test_an_order_closed_before_it_was_sent_is_canceled_with_nothing_filled() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    event = orders.close_unsent("O1", "canceled", "trading halted")
    assert isinstance(event, OrderCanceled)
    assert (event.cum_qty, event.reason, event.exec_id) == (0, "trading halted", None)
    assert orders.get("O1").state is OrderState.CANCELED


def test_an_unreachable_venue_rejects_the_pending_order() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved())
    event = orders.close_unsent("O1", "rejected", "VENUE_UNAVAILABLE")
    assert isinstance(event, OrderVenueRejected) and orders.get("O1").state is OrderState.REJECTED


def test_every_move_of_an_order_is_told_to_the_listener() -> None:
    moved: list[str] = []
    orders = GatewayOrders("SIM", on_change=moved.append)
    orders.track(approved())
    orders.apply(report("accepted", "A"))
    orders.apply(report("canceled", "C", cum=0, leaves=0, reason="canceled on request"))
    assert moved == ["O1", "O1"]


def test_finished_orders_beyond_the_bound_are_forgotten_oldest_first() -> None:
    orders = GatewayOrders("SIM", keep_finished=2)
    for n in range(3):
        orders.track(approved(f"O{n}"))
        orders.close_unsent(f"O{n}", "canceled", "halted")
    assert orders.get("O0") is None and orders.get("O1") is not None and orders.get("O2") is not None


def test_orders_that_may_be_at_the_venue_with_no_answer_are_in_doubt() -> None:
    orders = GatewayOrders("SIM")
    orders.track(approved("O1")).maybe_at_venue = True
    orders.track(approved("O2"))
    assert [o.order_id for o in orders.in_doubt()] == ["O1"]
