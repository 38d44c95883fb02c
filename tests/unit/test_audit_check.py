"""The audit's invariants over decoded streams (pure: no servers): every venue report published once,
our books' final state of each order agrees with the venue's own record, corrections are flagged."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cluster.ops.audit import check
from messages import OrderAccepted, OrderApproved, OrderCanceled, OrderFilled, OrderReceived, OrderVenueRejected
from messages.venue import ExecReport

NOW = 10**18
COMMON = {"order_id": "O1", "account": "ACC1", "symbol": "AAPL", "side": "BUY", "venue": "SIM", "order_qty": 100}


def received(order_id: str = "O1", at: int = NOW - 60 * 10**9) -> tuple[int, OrderReceived]:
    return at, OrderReceived(order_id=order_id, account="ACC1", symbol="AAPL", side="BUY", qty=100,
                             price=Decimal("10"))


def approved(order_id: str = "O1") -> OrderApproved:
    return OrderApproved(order_id=order_id, account="ACC1", symbol="AAPL", side="BUY", qty=100, price=Decimal("10"))


def report(kind: str, exec_id: str, cum: int = 0, leaves: int = 100, last: int = 0) -> ExecReport:
    extra: dict[str, Any] = {}
    if kind == "fill":
        extra = {"last_qty": last, "last_px": Decimal("10"), "avg_px": Decimal("10")}
    return ExecReport(exec_id=exec_id, cl_ord_id="O1", kind=kind, venue_order_id="SIM-1", symbol="AAPL", side="BUY",
                      order_qty=100, cum_qty=cum, leaves_qty=leaves, **extra)


def fill(exec_id: str, cum: int, leaves: int, last: int, **extra: Any) -> OrderFilled:
    return OrderFilled(exec_id=exec_id, last_qty=last, last_px=Decimal("10"), cum_qty=cum, avg_px=Decimal("10"),
                       leaves_qty=leaves, **COMMON, **extra)


def audit(executions: list[Any], dropcopy: list[ExecReport], grace_s: float = 0.0,
          at: int = NOW - 60 * 10**9) -> dict[str, int]:
    report = check([received(at=at)], [approved()], [], executions, [], dropcopy, NOW, grace_s=grace_s)
    return report.counts()


def test_an_order_reported_as_the_venue_did_is_clean() -> None:
    executions = [OrderAccepted(venue_order_id="SIM-1", exec_id="SIM-1-A", **COMMON),
                  OrderCanceled(cum_qty=0, reason="IOC", exec_id="SIM-1-C", **COMMON)]
    assert audit(executions, [report("accepted", "SIM-1-A"), report("canceled", "SIM-1-C", leaves=0)]) == {}


def test_a_venue_report_that_never_reached_executions_is_missing_whatever_its_kind() -> None:
    executions = [OrderAccepted(venue_order_id="SIM-1", exec_id="SIM-1-A", **COMMON)]
    counts = audit(executions, [report("accepted", "SIM-1-A"), report("canceled", "SIM-1-C", leaves=0)])
    assert counts.get("execution_missing") == 1


def test_an_order_closed_in_our_books_while_the_venue_filled_it_disagrees() -> None:
    executions = [OrderVenueRejected(reason="VENUE_UNAVAILABLE", **COMMON)]
    dropcopy = [report("accepted", "SIM-1-A"), report("fill", "SIM-1-F1", cum=100, leaves=0, last=100)]
    assert audit(executions, dropcopy).get("venue_disagrees") == 1


def test_an_order_the_venue_never_heard_of_closed_here_with_nothing_filled_agrees() -> None:
    assert audit([OrderVenueRejected(reason="VENUE_UNAVAILABLE", **COMMON)], []) == {}


def test_an_order_open_in_our_books_and_closed_at_the_venue_disagrees() -> None:
    executions = [OrderAccepted(venue_order_id="SIM-1", exec_id="SIM-1-A", **COMMON)]
    dropcopy = [report("accepted", "SIM-1-A"), report("canceled", "SIM-1-C", leaves=0)]
    counts = audit(executions, dropcopy)
    assert counts.get("venue_disagrees") == 1 and counts.get("execution_missing") == 1


def test_a_report_published_as_a_correction_is_flagged() -> None:
    executions = [OrderVenueRejected(reason="VENUE_UNAVAILABLE", exec_id="SIM-1-R", **COMMON),
                  fill("SIM-1-F1", 100, 0, 100, correction=True)]
    dropcopy = [report("rejected", "SIM-1-R", leaves=0), report("fill", "SIM-1-F1", cum=100, leaves=0, last=100)]
    assert audit(executions, dropcopy).get("corrected_by_venue") == 1


def test_an_order_still_within_the_grace_period_is_not_judged_yet() -> None:
    counts = audit([], [report("accepted", "SIM-1-A")], grace_s=30.0, at=NOW - 10**9)
    assert counts == {}
