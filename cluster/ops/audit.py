"""`trade audit`: check the invariants from the streams and the venue's own record (the drop copy).

- every received order has exactly one terminal outcome (rejected, filled, canceled, venue-rejected),
  or rests at the venue (open in the venue's own record);
- no order was approved, or a venue execution published, twice;
- every venue report (the drop copy) appears exactly once in executions.*, and no execution report
  there is unknown to the venue;
- each order's final state in our books agrees with the venue's own record: open or closed alike,
  the same quantity filled; an order the venue never heard of is closed in our books with nothing
  filled;
- no report had to be published as a correction of what our books had closed (each one is flagged);
- allocations sum to the filled quantity of every order;
- the live positions projection equals a replay of the executions it has folded.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

from actors.runtime.streams import decoded, read_stream
from messages import (
    AllocationCompleted,
    OrderAccepted,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderReceived,
    OrderRejected,
    OrderVenueRejected,
)
from messages.venue import ExecReport

__all__ = ["AuditReport", "Violation", "audit", "check"]


@dataclass(frozen=True)
class Violation:
    kind: str
    order_id: str
    detail: str


@dataclass
class AuditReport:
    orders: int = 0
    settled: int = 0
    in_flight: int = 0
    #: Orders resting at the venue (accepted, still open in the venue's own record): not a violation.
    working: int = 0
    filled: int = 0
    rejected: int = 0
    executions: int = 0
    allocations: int = 0
    dead_letters: int = 0
    positions_checked: bool = False
    violations: list[Violation] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def counts(self) -> dict[str, int]:
        return dict(Counter(v.kind for v in self.violations))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["violation_counts"] = self.counts()
        return data


def check(received: list[tuple[int, OrderReceived]], approved: list[OrderApproved],
          rejected: list[OrderRejected], executions: list[Any], allocations: list[AllocationCompleted],
          dropcopy: list[ExecReport], now_ns: int, grace_s: float = 30.0, dead_letters: int = 0) -> AuditReport:
    """Pure: the invariants over already-decoded events, in stream order. `received` holds (ts_ns, event)."""
    report = AuditReport(orders=len({o.order_id for _, o in received}), dead_letters=dead_letters)
    add = report.violations.append
    for oid, n in Counter(a.order_id for a in approved).items():
        if n > 1:
            add(Violation("approved_twice", oid, f"{n} OrderApproved events"))
    first_seen: dict[str, int] = {}
    for ts, order in received:
        first_seen.setdefault(order.order_id, ts)
    recent = {oid for oid, ts in first_seen.items() if now_ns - ts < grace_s * 1e9}
    ours, terminal, filled = _fold_executions(executions, rejected, add)
    report.executions = sum(1 for ev in executions if isinstance(ev, OrderFilled))
    _check_reports_published(executions, dropcopy, add, recent)
    report.allocations = _check_allocations(allocations, filled, add)
    venue = _BookStates()
    for r in dropcopy:  # in the venue's order: the last report says whether the order is still open
        venue.fold_report(r)
    risk_rejected = {r.order_id for r in rejected}
    for oid, ts in first_seen.items():
        _check_outcome(report, oid, terminal.get(oid, 0), oid in recent, venue, f"{(now_ns - ts) / 1e9:.0f}s")
        if oid not in recent and oid not in risk_rejected and (disagreement := _disagreement(oid, ours, venue)):
            add(Violation("venue_disagrees", oid, disagreement))
    for oid in terminal:
        if oid not in first_seen:
            add(Violation("outcome_without_order", oid, "an outcome for an order that was never received"))
    report.filled = sum(1 for q in filled.values() if q > 0)
    report.rejected = len(risk_rejected)
    return report


def _fold_executions(executions: list[Any], rejected: list[OrderRejected], add: Callable[[Violation], None]
                     ) -> tuple[_BookStates, dict[str, int], dict[str, int]]:
    """Our books' final state of each order, its terminal outcomes counted, its filled quantity; every
    correction flagged."""
    ours = _BookStates()
    terminal: dict[str, int] = defaultdict(int)
    filled: dict[str, int] = defaultdict(int)
    for r in rejected:
        terminal[r.order_id] += 1
    for ev in executions:
        ours.fold(ev)
        if isinstance(ev, OrderFilled):
            filled[ev.order_id] += ev.last_qty
            terminal[ev.order_id] += ev.leaves_qty == 0
        elif isinstance(ev, OrderCanceled | OrderVenueRejected):
            terminal[ev.order_id] += 1
        if getattr(ev, "correction", False):
            add(Violation("corrected_by_venue", ev.order_id, f"{ev.TYPE} {getattr(ev, 'exec_id', None)} was published "
                          "as a correction: our books had closed the order (or refused the report) before the venue "
                          "said otherwise"))
    return ours, terminal, filled


def _check_allocations(allocations: list[AllocationCompleted], filled: dict[str, int],
                       add: Callable[[Violation], None]) -> int:
    """Each fill allocated once, and every order's allocations summing to its fills; returns the count."""
    allocated: dict[str, int] = defaultdict(int)
    alloc_execs: Counter[str] = Counter()
    order_of: dict[str, str] = {}
    for a in allocations:
        alloc_execs[a.exec_id] += 1
        order_of[a.exec_id] = a.order_id
        allocated[a.order_id] += sum(line.qty for line in a.delta)
    for exec_id, n in alloc_execs.items():
        if n > 1:
            add(Violation("allocation_duplicated", order_of[exec_id], f"exec {exec_id} allocated {n} times"))
    for oid in set(filled) | set(allocated):
        if filled.get(oid, 0) != allocated.get(oid, 0):
            add(Violation("allocation_mismatch", oid,
                          f"filled {filled.get(oid, 0)}, allocated {allocated.get(oid, 0)}"))
    return sum(alloc_execs.values())


def _check_outcome(report: AuditReport, oid: str, terminal: int, recent: bool, venue: _BookStates, age: str) -> None:
    """One terminal outcome, or still on its way (within the grace period), or resting at the venue."""
    if terminal == 1:
        report.settled += 1
    elif terminal > 1:
        report.violations.append(Violation("terminal_twice", oid, f"{terminal} terminal outcomes"))
    elif recent:
        report.in_flight += 1
    elif venue.open.get(oid):
        report.working += 1
    else:
        report.violations.append(Violation("no_outcome", oid, f"no terminal outcome {age} after it was received"))


class _BookStates:
    """Per order: open or not, and the quantity filled, after the last event (or report) seen."""

    def __init__(self) -> None:
        self.open: dict[str, bool] = {}
        self.cum: dict[str, int] = {}

    def fold(self, ev: Any) -> None:
        if isinstance(ev, OrderFilled):
            self.open[ev.order_id] = ev.leaves_qty > 0
            self.cum[ev.order_id] = max(self.cum.get(ev.order_id, 0), ev.cum_qty)
        elif isinstance(ev, OrderAccepted):
            self.open[ev.order_id] = True
        elif isinstance(ev, OrderCanceled | OrderVenueRejected):
            self.open[ev.order_id] = False
            if isinstance(ev, OrderCanceled):
                self.cum[ev.order_id] = max(self.cum.get(ev.order_id, 0), ev.cum_qty)

    def fold_report(self, r: ExecReport) -> None:
        if r.kind == "accepted" or (r.kind == "fill" and r.leaves_qty > 0):
            self.open[r.cl_ord_id] = True
        elif r.kind in ("fill", "canceled", "rejected"):
            self.open[r.cl_ord_id] = False
        self.cum[r.cl_ord_id] = max(self.cum.get(r.cl_ord_id, 0), r.cum_qty)

    def describe(self, oid: str) -> str:
        if oid not in self.open:
            return "no record"
        return f"{'open' if self.open[oid] else 'closed'}, {self.cum.get(oid, 0)} filled"


def _disagreement(oid: str, ours: _BookStates, venue: _BookStates) -> str | None:
    """Why our books and the venue's record of one order differ, or None when they agree."""
    if oid not in venue.open:  # the venue never had it: we must have closed it with nothing filled
        if oid in ours.open and (ours.open[oid] or ours.cum.get(oid, 0)):
            return f"our books: {ours.describe(oid)}; the venue has no record of the order"
        return None
    if oid not in ours.open:
        return f"our books: no execution report; the venue: {venue.describe(oid)}"
    if ours.open[oid] != venue.open[oid] or ours.cum.get(oid, 0) != venue.cum.get(oid, 0):
        return f"our books: {ours.describe(oid)}; the venue: {venue.describe(oid)}"
    return None


def _check_reports_published(executions: list[Any], dropcopy: list[ExecReport], add: Callable[[Violation], None],
                             recent_orders: set[str]) -> None:
    """Each venue report once in executions.*, and nothing there the venue did not report (the reports
    of orders received within the grace period may still be on their way)."""
    published: Counter[str] = Counter()
    order_of: dict[str, str] = {}
    for ev in executions:
        exec_id = getattr(ev, "exec_id", None)
        if exec_id is not None:
            published[exec_id] += 1
            order_of[exec_id] = ev.order_id
    venue_reports = {r.exec_id: r for r in dropcopy}
    for exec_id, n in published.items():
        if n > 1:
            add(Violation("execution_duplicated", order_of[exec_id], f"exec {exec_id} published {n} times"))
        if exec_id not in venue_reports:
            add(Violation("execution_unknown_to_venue", order_of[exec_id],
                          f"exec {exec_id} is not in the venue's drop copy"))
    for exec_id, rep in venue_reports.items():
        if exec_id not in published and rep.cl_ord_id not in recent_orders:
            add(Violation("execution_missing", rep.cl_ord_id,
                          f"venue report {exec_id} ({rep.kind}) never reached executions.*"))


async def audit(js: JetStreamContext, grace_s: float = 30.0, nc: Client | None = None) -> AuditReport:
    """Read every stream and the drop copies, then check the invariants. With `nc`, also check that
    the live positions projection equals a replay of the executions it has folded."""
    received = [(env.ts, ev) for _, env, ev in decoded(await read_stream(js, "ORDERS_RECEIVED"))
                if isinstance(ev, OrderReceived)]
    approved = [ev for _, _, ev in decoded(await read_stream(js, "ORDERS_APPROVED")) if isinstance(ev, OrderApproved)]
    rejected = [ev for _, _, ev in decoded(await read_stream(js, "ORDERS_REJECTED")) if isinstance(ev, OrderRejected)]
    executions = [ev for _, _, ev in decoded(await read_stream(js, "EXECUTIONS"))]
    allocations = [ev for _, _, ev in decoded(await read_stream(js, "ALLOCATIONS"))
                   if isinstance(ev, AllocationCompleted)]
    dropcopy = [ExecReport.model_validate_json(m.data) for m in await read_stream(js, "VENUE")]
    dead = len(await read_stream(js, "DLQ"))
    report = check(received, approved, rejected, executions, allocations, dropcopy, time.time_ns(), grace_s, dead)
    if nc is not None:
        from cluster.ops.positions import ProjectionUnavailable, verify

        try:
            result = await verify(nc)
        except ProjectionUnavailable as exc:
            report.violations.append(Violation("positions_unavailable", "-", str(exc)))
        else:
            report.positions_checked = True
            for diff in result.differences():
                report.violations.append(Violation("positions_differ", diff["account"],
                                                   f"{diff['symbol']}: live {diff['live']} rebuilt {diff['rebuilt']}"))
    return report
