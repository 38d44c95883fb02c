"""Operator commands: dlq, audit, positions, rebuild, breaker, halt/reduce/resume and venue."""

from __future__ import annotations

import argparse
from typing import Any

from cluster.ops.cli_common import (
    EXIT_BAD_INPUT,
    CliError,
    cli_config,
    with_nats,
)

__all__ = ["cmd_audit", "cmd_breaker", "cmd_dlq", "cmd_positions", "cmd_rebuild", "cmd_switch", "cmd_venue"]


def cmd_dlq(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cluster.ops.dlq import OriginalGone, list_dead_letters, original, replay
    from cluster.ops.render import console, print_json

    async def work(nc: Any) -> int:
        js = nc.jetstream()
        records = await list_dead_letters(js, args.stage)
        if args.dlq_command == "list":
            if args.json:
                print_json([r.to_dict() for r in records])
                return 0
            table = Table(title=f"dead letters ({len(records)})")
            for col in ("id", "stage", "reason", "order", "subject", "deliveries", "error"):
                table.add_column(col)
            for r in records:
                lt = r.letter
                table.add_row(str(r.id), lt.stage, lt.reason, lt.order_id, lt.original_subject,
                              str(lt.deliveries), lt.error[:60])
            console.print(table)
            return 0
        chosen = records if getattr(args, "all", False) else [r for r in records if r.id == args.id]
        if not chosen and not getattr(args, "all", False):
            raise CliError(f"no dead letter with id {args.id}", 1)
        if args.dlq_command == "show":
            try:
                payload, _ = await original(js, chosen[0])
            except OriginalGone as exc:
                raise CliError(str(exc), 1) from None
            print_json(chosen[0].to_dict(with_payload=True, payload=payload))
            return 0
        try:
            results = await replay(js, chosen)
        except OriginalGone as exc:
            raise CliError(str(exc), 1) from None
        if args.json:
            print_json([vars(r) for r in results])
        else:
            for r in results:
                console.print(f"{r.id}: {r.outcome} to {r.subject}")
        return 0

    return with_nats(args, work)


def cmd_audit(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cluster.ops.audit import audit
    from cluster.ops.render import console, print_json

    async def work(nc: Any) -> int:
        with console.status("reading the streams ..."):
            report = await audit(nc.jetstream(), grace_s=args.grace, nc=nc)
        if args.json:
            print_json(report.to_dict())
        else:
            table = Table(title="audit")
            table.add_column("measure")
            table.add_column("value", justify="right")
            for name in ("orders", "settled", "in_flight", "working", "filled", "rejected", "executions", "allocations",
                         "dead_letters"):
                table.add_row(name.replace("_", " "), str(getattr(report, name)))
            table.add_row("violations", str(len(report.violations)))
            console.print(table)
            for v in report.violations[:50]:
                console.print(f"[red]{v.kind}[/red] {v.order_id}: {v.detail}")
            if len(report.violations) > 50:
                console.print(f"... and {len(report.violations) - 50} more (use --json)")
            console.print("[green]audit OK[/green]" if report.ok else "[red]audit FAILED[/red]")
        return 0 if report.ok else 1

    return with_nats(args, work)


def cmd_positions(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cluster.ops.positions import query_positions
    from cluster.ops.render import console, print_json

    async def work(nc: Any) -> int:
        live = await query_positions(nc, account=args.account)
        if args.json:
            print_json(live)
            return 0
        table = Table(title=f"positions (through executions seq {live['seq']})")
        for col in ("account", "symbol", "quantity", "avg cost", "realised P&L", "mark", "unrealised P&L"):
            table.add_column(col, justify="right" if col != "account" and col != "symbol" else "left")
        for row in live["positions"]:
            table.add_row(row["account"], row["symbol"], str(row["quantity"]), row["avg_cost"], row["realised"],
                          row.get("mark") or "-", row.get("unrealised") or "-")
        console.print(table)
        return 0

    return with_nats(args, work)


def cmd_rebuild(args: argparse.Namespace) -> int:
    from cluster.ops.positions import verify
    from cluster.ops.render import console, print_json

    async def work(nc: Any) -> int:
        with console.status("replaying executions ..."):
            result = await verify(nc, from_snapshot=args.from_snapshot)
        if args.json:
            print_json({"equal": result.equal, "seq": result.seq, "from_snapshot_seq": result.from_snapshot_seq,
                        "positions": len(result.rebuilt_rows), "differences": result.differences()})
        else:
            origin = f"snapshot at seq {result.from_snapshot_seq}" if args.from_snapshot else "the start"
            console.print(f"replayed executions from {origin} through seq {result.seq}: "
                          f"{len(result.rebuilt_rows)} positions")
            for diff in result.differences():
                console.print(f"[red]differs[/red] {diff}")
            console.print("[green]the rebuild equals the live projection[/green]" if result.equal
                          else "[red]the rebuild differs from the live projection[/red]")
        return 0 if result.equal else 1

    return with_nats(args, work)


def cmd_breaker(args: argparse.Namespace) -> int:
    import time

    from cluster.ops.render import console, print_json
    from supervision.breaker import CircuitBreaker
    from supervision.breaker_store import BreakerConflict, BreakerStore

    cfg = cli_config(args)
    if args.venue not in cfg.venues:
        raise CliError(f"venue {args.venue} is not in the config ({', '.join(cfg.venues)})", EXIT_BAD_INPUT)
    gw = cfg.stages.gateway
    settings = gw.breaker.settings(gw.call_timeout)

    async def work(nc: Any) -> int:
        store = BreakerStore(nc.jetstream())
        for _ in range(10):  # compare-and-set: retry when the gateway wrote in between
            data, revision = await store.load(args.venue)
            breaker = (CircuitBreaker.from_dict(data, settings) if data
                       else CircuitBreaker(args.venue, settings, time.time()))
            if args.action == "status":
                break
            if args.action == "open":
                breaker.force_open(time.time(), "operator")
            else:
                breaker.force_close(time.time(), "operator")
            try:
                await store.save(args.venue, breaker.to_dict(), revision)
                break
            except BreakerConflict:
                continue
        state = {"venue": args.venue, "state": breaker.state.value, "forced": breaker.forced,
                 "open_until": breaker.open_until, "open_timeout": breaker.current_open_timeout}
        if args.json:
            print_json(state)
        else:
            console.print(f"breaker {args.venue}: [bold]{state['state']}[/bold]"
                          + (" (forced by an operator)" if breaker.forced else ""))
        return 0

    return with_nats(args, work)


def cmd_switch(args: argparse.Namespace) -> int:
    from actors.domain.risk_state import TradingState
    from actors.runtime.control import set_trading_state
    from cluster.ops.render import console, print_json

    state = {"halt": TradingState.HALTED, "reduce": TradingState.REDUCING}.get(args.command, TradingState.ACTIVE)

    async def work(nc: Any) -> int:
        revision = await set_trading_state(nc.jetstream(), state, args.account, args.reason or "")
        scope = f"account {args.account}" if args.account else "all accounts"
        if args.json:
            print_json({"state": state.value, "scope": scope, "revision": revision})
        else:
            effect = {TradingState.HALTED: "no new order passes risk and working orders are canceled",
                      TradingState.REDUCING: "only orders that reduce a position pass risk",
                      TradingState.ACTIVE: "orders pass risk as usual"}[state]
            console.print(f"trading {state.value} for {scope} (change #{revision}): {effect}; every risk replica "
                          "and gateway applies it as it arrives")
        return 0

    return with_nats(args, work)


def cmd_venue(args: argparse.Namespace) -> int:
    from cluster.ops.render import console, print_json
    from cluster.ops.venue_admin import VenueFaultsRefused, set_venue_faults

    settings: dict[str, Any] = {}
    if args.clear:
        settings["clear"] = True
    if args.latency is not None:
        settings["latency"] = args.latency
    if args.reject_rate is not None:
        settings["reject_rate"] = args.reject_rate
    for flag in ("disconnect", "stall"):
        if getattr(args, flag) is not None:
            settings[flag] = getattr(args, flag)

    async def work(nc: Any) -> int:
        try:
            current = await set_venue_faults(nc, args.venue, **settings)
        except VenueFaultsRefused as exc:
            raise CliError(str(exc), EXIT_BAD_INPUT) from None
        if args.json:
            print_json(current)
        else:
            console.print(f"venue {args.venue} faults: " + ", ".join(f"{k}={v}" for k, v in current.items()))
        return 0

    return with_nats(args, work)

