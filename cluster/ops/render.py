"""Output for people (rich tables) and for machines (`--json`)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

from cluster.client.load import LoadReport
from cluster.client.outcome import OrderOutcome

__all__ = ["console", "err_console", "print_json", "render_load", "render_outcome", "render_tree"]

console = Console()
err_console = Console(stderr=True)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def outcome_dict(outcome: OrderOutcome) -> dict[str, Any]:
    return {
        "order_id": outcome.order_id, "status": str(outcome.status), "settled": outcome.settled,
        "filled_qty": outcome.filled_qty, "avg_px": str(outcome.avg_px) if outcome.avg_px else None,
        "allocated": outcome.allocated, "reason": outcome.reason, "cancel_rejected": outcome.cancel_rejected,
        "events": [{"type": e.type, "event_id": str(e.event_id), "ts": e.ts} for e in outcome.events],
    }


def event_detail(kind: str, p: dict[str, Any]) -> str:
    if kind == "OrderRejected":
        return f"{p.get('rule')}: {p.get('reason')}"
    if kind == "OrderFilled":
        return f"{p.get('last_qty')} @ {p.get('last_px')} (cum {p.get('cum_qty')})"
    if kind == "AllocationCompleted":
        return ", ".join(f"{ln['account']}={ln['qty']}" for ln in p.get("lines", []))
    if kind == "OrderAccepted":
        return f"venue order {p.get('venue_order_id')}"
    if kind == "OrderCanceled":
        return f"{p.get('reason')} (filled {p.get('cum_qty')} before)"
    if kind in ("OrderCancelRejected", "OrderVenueRejected"):
        return str(p.get("reason"))
    return ""


def render_outcome(outcome: OrderOutcome) -> None:
    table = Table(title=f"order {outcome.order_id}: {outcome.status}", show_header=True)
    table.add_column("event")
    table.add_column("detail")
    for env in outcome.events:
        table.add_row(env.type, event_detail(env.type, env.payload))
    console.print(table)


def render_load(report: LoadReport, title: str = "load summary") -> None:
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("sent", report.sent), ("filled", report.filled), ("rejected", report.rejected),
        ("canceled", report.canceled), ("  of which partly filled", report.partially_filled),
        ("venue rejected", report.venue_rejected), ("lost", report.lost),
        ("duplicated", report.duplicated), ("allocation mismatches", report.allocation_mismatches),
        ("throughput", f"{report.throughput_per_s:.0f} orders/s"),
        ("latency p50", f"{report.latency_p50_ms:.1f} ms" if report.latency_p50_ms is not None else "-"),
        ("latency p99", f"{report.latency_p99_ms:.1f} ms" if report.latency_p99_ms is not None else "-"),
    ]
    for rule, count in sorted(report.rejections_by_rule.items()):
        rows.append((f"  rejected by {rule}", count))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    console.print(f"[bold]summary[/bold] {report.line()}")


def render_tree(status: dict[str, Any]) -> None:
    table = Table(title=f"supervision tree ({status['path']}, {status['strategy']})")
    for col in ("path", "state", "pid", "node", "restarts", "in window", "last failure"):
        table.add_column(col)
    supervisors = {n["path"]: n for n in status.get("supervisors", [])}
    shown: set[str] = set()
    for child in status["children"]:
        parent = child.get("path", child["id"]).rsplit(".", 1)[0]
        node = supervisors.get(parent)
        if node is not None and parent not in shown:
            shown.add(parent)
            table.add_row(f"[bold]{parent}[/bold] ({node['strategy']}, {node['intensity']} in {node['period']:g}s)",
                          node["state"], "", "", str(node["restarts"]), str(node["restarts_in_window"]),
                          (node["last_failure"] or "")[:60])
        table.add_row("  " + child.get("path", child["id"]), child["state"], str(child["pid"]), str(child["node"]),
                      str(child["restarts"]), str(child.get("restarts_in_window", "")),
                      (child["last_failure"] or "")[:60])
    console.print(table)
    for venue, breaker in (status.get("breakers") or {}).items():
        console.print(f"breaker {venue}: {breaker}")
    if status.get("gave_up"):
        console.print(f"[red]supervisor gave up: {status['gave_up']}[/red]")
