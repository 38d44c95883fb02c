"""The `trade` command: run the local stack, place orders, load-test, and run the demo."""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

from actors.runtime import event_loop
from actors.runtime.gc_tuning import tune
from cluster.client.errors import BrokerUnavailable, OrderTimeout, OrderValidationError, PublishRejected
from cluster.config import ConfigError, SystemConfig, load_config
from cluster.errors import TradingError
from cluster.local.stack import LocalStack, StackError, load_state
from cluster.ops.positions import ProjectionUnavailable

__all__ = ["main"]

#: The config shipped inside the package (a copy of examples/local.yaml): the CLI works from any directory.
DEFAULT_CONFIG = str(Path(__file__).resolve().parent.parent / "defaults" / "local.yaml")
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMEOUT = 4


class CliError(TradingError):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _config(args: argparse.Namespace) -> SystemConfig:
    state = load_state()
    path = args.config or os.environ.get("TRADE_CONFIG") or (state.config if state else None) or DEFAULT_CONFIG
    cfg = load_config(path)
    if cfg.nats.url == "embedded":
        if state is None:
            raise CliError("no local stack is running here: run `trade up` first (or use a config with a "
                           "nats:// URL)", EXIT_UNAVAILABLE)
        cfg = cfg.with_nats_url(state.nats_url)
    return cfg


def _int_or_str(value: str) -> int | str:
    return int(value) if re.fullmatch(r"[+-]?\d+", value.strip()) else value


# ---- commands ------------------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace) -> int:
    from cluster.job import submit_deploy
    from cluster.ops.render import console

    path = args.config or DEFAULT_CONFIG
    cfg = load_config(path)  # fail on a bad config before starting anything
    stack = LocalStack()
    with console.status("starting nats-server and Ray ..."):
        state = stack.start(str(Path(path).resolve()))
    nats_url = state.nats_url if cfg.nats.url == "embedded" else None
    try:
        with console.status("deploying the supervision tree (ray job submit) ..."):
            status = submit_deploy(state.dashboard_url, str(Path(path).resolve()), nats_url)
    except Exception:
        stack.stop()
        raise
    if args.json:
        from cluster.ops.render import print_json

        print_json({"nats_url": state.nats_url, "ray_address": state.ray_address,
                    "dashboard_url": state.dashboard_url, "tree": status})
        return 0
    from cluster.ops.render import render_tree

    render_tree(status)
    console.print(f"NATS:            {state.nats_url}")
    console.print(f"Ray dashboard:   {state.dashboard_url}")
    console.print(f"Ray address:     {state.ray_address}")
    console.print(f"logs:            {stack.logs}/")
    console.print(f"re-apply with:   RAY_ADDRESS={state.dashboard_url} ray job submit --working-dir . -- "
                  f"python -m cluster.job --config {path}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from cluster.ops.render import console

    state = load_state()
    stack = LocalStack()
    if state is None:
        if stack.stop():  # a stack from this directory whose state file was removed while it ran
            console.print("stopped a stack from this directory whose state file was gone (nats-server and Ray)")
        else:
            console.print("nothing is running")
        return 0
    if stack.running() is not None:
        # Drain the stages first (each finishes and acknowledges its batch in hand), then stop processes.
        with console.status("draining the system ..."):
            try:
                from cluster.job import teardown
                from cluster.local.ray_env import init_ray

                cfg = load_config(state.config)
                init_ray(state.ray_address, namespace=cfg.name)
                teardown(cfg, timeout=30)
            except Exception as exc:
                console.print(f"drain skipped: {exc}")
    stack.stop()
    console.print("stopped nats-server and Ray")
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    state = load_state()
    if state is None:
        raise CliError("no local stack is running here: run `trade up` first", EXIT_UNAVAILABLE)
    print(f"export RAY_ADDRESS={state.dashboard_url}")
    print(f"export TRADE_NATS_URL={state.nats_url}")
    return 0


def _supervisor_handle(cfg: SystemConfig) -> Any:
    """The root supervisor of the system on the local stack's Ray (or RAY_ADDRESS's)."""
    import ray

    from cluster.local.ray_env import init_ray
    from supervision.supervisor import SUPERVISOR_NAME

    state = load_state()
    if state is not None:
        init_ray(state.ray_address, namespace=cfg.name)
    else:
        init_ray(namespace=cfg.name)
    try:
        return ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    except ValueError:
        raise CliError("the system is not deployed on this Ray cluster", EXIT_UNAVAILABLE) from None


def cmd_status(args: argparse.Namespace) -> int:
    import ray

    from cluster.ops.render import console, print_json, render_tree

    cfg = _config(args)
    supervisor = _supervisor_handle(cfg)
    status = ray.get(supervisor.status.remote(), timeout=30)
    if args.json:
        print_json({"nats_url": cfg.nats.url, "tree": status})
    else:
        render_tree(status)
        console.print(f"NATS: {cfg.nats.url}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    import threading

    from prometheus_client import REGISTRY, generate_latest, start_http_server

    from actors.runtime.nats_conn import connect
    from cluster.ops.metrics import SystemCollector, run_coroutine, take_snapshot
    from cluster.ops.render import console
    from cluster.topology import consumer_specs

    cfg = _config(args)
    supervisor = _supervisor_handle(cfg)
    loop = event_loop.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="metrics", daemon=True)
    thread.start()
    nc = run_coroutine(loop, connect(cfg.nats.url, name="trade-metrics", connect_timeout=cfg.nats.connect_timeout,
                                     reconnect_forever=False), 30)
    consumers = [(c.stream, c.durable) for c in consumer_specs(cfg)]
    collector = SystemCollector(lambda: run_coroutine(loop, take_snapshot(supervisor, nc.jetstream(), consumers), 20))
    REGISTRY.register(collector)
    try:
        if args.once:
            sys.stdout.write(generate_latest(REGISTRY).decode())
            return 0
        start_http_server(args.port, addr=args.host)
        console.print(f"Prometheus metrics on http://{args.host}:{args.port}/metrics (Ctrl-C stops)")
        threading.Event().wait()
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        run_coroutine(loop, nc.close(), 5)
        loop.call_soon_threadsafe(loop.stop)


def cmd_order(args: argparse.Namespace) -> int:
    from cluster.client.trading import TradingClient
    from cluster.ops.render import outcome_dict, print_json, render_outcome

    fields: dict[str, Any] = {"order_type": args.type.upper(), "tif": args.tif.upper(), "venue": args.venue}
    if args.order_id:
        fields["order_id"] = args.order_id
    if args.profile:
        fields["allocation_profile"] = args.profile
    # Validate before anything else: bad input never reaches the broker.
    probe = TradingClient("nats://unused", 1, track_outcomes=False)
    order = probe.build_order(args.account, args.symbol.upper(), args.side.upper(), _int_or_str(args.qty),
                              args.price, **fields)
    cfg = _config(args)

    async def _run() -> int:
        async with TradingClient.from_config(cfg) as client:
            await client.submit(order)
            if args.no_wait:
                print(order.order_id)
                return 0
            outcome = await client.wait(order.order_id, timeout=args.timeout, working_ok=True)
        if args.json:
            print_json(outcome_dict(outcome))
        else:
            render_outcome(outcome)
        return 0

    return event_loop.run(_run())


def cmd_load(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from actors.runtime.refprices import wait_reference_prices
    from cluster.client.load import order_mix, run_load
    from cluster.client.trading import TradingClient
    from cluster.config import VenueMode
    from cluster.ops.render import err_console, print_json, render_load

    if args.orders < 1:
        raise CliError("--orders must be at least 1", EXIT_BAD_INPUT)
    cfg = _config(args)

    async def _run() -> int:
        async with TradingClient.from_config(cfg) as client:
            book = next((v for v, vc in cfg.venues.items() if vc.mode is VenueMode.BOOK), None)
            reference = await wait_reference_prices(client.nc.jetstream(), book) if book else None
            orders = order_mix(args.orders, seed=args.seed, reference=reference or None)
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err_console, disable=args.json, transient=False) as progress:
                sent = progress.add_task("sent   ", total=len(orders))
                done = progress.add_task("settled", total=len(orders))
                report = await run_load(client, orders, rate=args.rate, timeout=args.timeout,
                                        on_sent=lambda n: progress.advance(sent, n),
                                        on_settled=lambda n: progress.advance(done, n))
        if args.json:
            print_json(report.to_dict())
        else:
            render_load(report)
        return 0 if report.lost == 0 and report.duplicated == 0 else 1

    return event_loop.run(_run())


def _with_nats(args: argparse.Namespace, work: Any) -> int:
    from actors.runtime.nats_conn import connect

    cfg = _config(args)

    async def _run() -> int:
        nc = await connect(cfg.nats.url, name=f"trade-{args.command}", connect_timeout=cfg.nats.connect_timeout,
                           reconnect_forever=False)
        try:
            return await work(nc)
        finally:
            await nc.close()

    return event_loop.run(_run())


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

    return _with_nats(args, work)


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

    return _with_nats(args, work)


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

    return _with_nats(args, work)


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

    return _with_nats(args, work)


def cmd_breaker(args: argparse.Namespace) -> int:
    import time

    from cluster.ops.render import console, print_json
    from supervision.breaker import CircuitBreaker
    from supervision.breaker_store import BreakerConflict, BreakerStore

    cfg = _config(args)
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

    return _with_nats(args, work)


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

    return _with_nats(args, work)


def cmd_cancel(args: argparse.Namespace) -> int:
    from cluster.client.outcome import OrderStatus
    from cluster.client.trading import TradingClient
    from cluster.ops.render import console, outcome_dict, print_json
    from cluster.ops.trace import find_order
    from messages.ids import is_valid_order_id

    if not is_valid_order_id(args.order_id):
        raise CliError(f"invalid order id {args.order_id!r}", EXIT_BAD_INPUT)
    cfg = _config(args)

    async def _run() -> int:
        async with TradingClient.from_config(cfg) as client:
            account, venue = args.account, args.venue
            if account is None or venue is None:
                order = await find_order(client.nc.jetstream(), args.order_id, account, cfg.partitions)
                if order is None:
                    raise CliError(f"order {args.order_id} was never received", EXIT_BAD_INPUT)
                account, venue = order.account, order.venue
            request_id = await client.cancel(args.order_id, account, venue, args.reason or "canceled by an operator")
            if args.no_wait:
                print(request_id)
                return 0
            outcome = await client.wait_cancel(args.order_id, request_id, timeout=args.timeout)
        canceled = outcome.status is OrderStatus.CANCELED
        if args.json:
            print_json({**outcome_dict(outcome), "cancel_request": request_id, "canceled": canceled})
        elif canceled:
            console.print(f"order {args.order_id} canceled ({outcome.filled_qty} filled before): {outcome.reason}")
        else:
            console.print(f"cancel of {args.order_id} refused: {outcome.cancel_rejected or outcome.status.value}")
        return 0 if canceled else 1

    return event_loop.run(_run())


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

    return _with_nats(args, work)


def cmd_trace(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cluster.ops.render import console, event_detail, print_json
    from cluster.ops.trace import trace

    cfg = _config(args)

    async def work(nc: Any) -> int:
        events = await trace(nc.jetstream(), args.order_id, args.account, cfg.partitions)
        if not events:
            raise CliError(f"no events for order {args.order_id}", 1)
        if args.json:
            print_json([e.model_dump(mode="json") for e in events])
            return 0
        start = events[0].ts
        table = Table(title=f"order {args.order_id}")
        for col in ("+ms", "event", "detail", "event id"):
            table.add_column(col, justify="right" if col == "+ms" else "left")
        for e in events:
            table.add_row(f"{(e.ts - start) / 1e6:.1f}", e.type, event_detail(e.type, e.payload), str(e.event_id)[:8])
        console.print(table)
        return 0

    return _with_nats(args, work)


def cmd_apply(args: argparse.Namespace) -> int:
    from cluster.job import submit_deploy
    from cluster.ops.render import console, print_json, render_tree

    state = load_state()
    if state is None:
        raise CliError("no local stack is running here: run `trade up` first, or on a cluster use "
                       "`ray job submit -- python -m cluster.job --config FILE`", EXIT_UNAVAILABLE)
    cfg = load_config(args.config)  # a bad config fails here, before anything changes
    nats_url = state.nats_url if cfg.nats.url == "embedded" else None
    with console.status("re-applying the config (ray job submit) ..."):
        status = submit_deploy(state.dashboard_url, str(Path(args.config).resolve()), nats_url)
    if args.json:
        print_json(status)
    else:
        render_tree(status)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from cluster.demo.run import run_demo

    return run_demo(config_path=args.config or DEFAULT_CONFIG, orders=args.orders, rate=args.rate,
                    as_json=args.json)


# ---- parser --------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trade", description="Operate the supervised trading system.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", help=f"config file (default: the running stack's, else {DEFAULT_CONFIG})")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("up", parents=[common], help="start nats-server and Ray locally and deploy the system")
    sub.add_parser("down", parents=[common], help="stop what `trade up` started")
    sub.add_parser("env", parents=[common], help="print RAY_ADDRESS and TRADE_NATS_URL for the local stack")
    sub.add_parser("status", parents=[common], help="the live supervision tree")

    metrics = sub.add_parser("metrics", parents=[common], help="serve Prometheus metrics of the running system")
    metrics.add_argument("--port", type=int, default=9464)
    metrics.add_argument("--host", default="127.0.0.1")
    metrics.add_argument("--once", action="store_true", help="print one scrape and exit")

    order = sub.add_parser("order", parents=[common], help="place one order and print its outcome")
    order.add_argument("--account", required=True)
    order.add_argument("--symbol", required=True)
    order.add_argument("--side", required=True, help="BUY or SELL")
    order.add_argument("--qty", required=True, help="whole number of shares, > 0")
    order.add_argument("--price", help="limit price (decimal); omit for MARKET")
    order.add_argument("--type", default="LIMIT", help="LIMIT or MARKET")
    order.add_argument("--tif", default="DAY", help="DAY or IOC")
    order.add_argument("--venue", default="SIM")
    order.add_argument("--profile", help="allocation profile")
    order.add_argument("--order-id", help="client order id (default: generated); the same id twice is one order")
    order.add_argument("--timeout", type=float, default=30.0)
    order.add_argument("--no-wait", action="store_true", help="print the order id once stored, do not wait")

    load = sub.add_parser("load", parents=[common], help="send N orders and report lost/duplicated/latency")
    load.add_argument("--orders", type=int, required=True)
    load.add_argument("--rate", type=float, default=0.0, help="orders per second (0 = as fast as possible)")
    load.add_argument("--seed", type=int, default=7)
    load.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for outcomes after sending")

    dlq = sub.add_parser("dlq", help="dead letters: list, show, replay")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    dlq_list = dlq_sub.add_parser("list", parents=[common], help="dead letters, oldest first")
    dlq_list.add_argument("--stage", help="risk, gateway or allocator")
    dlq_show = dlq_sub.add_parser("show", parents=[common], help="one dead letter with its payload")
    dlq_show.add_argument("id", type=int)
    dlq_show.add_argument("--stage", help=argparse.SUPPRESS)
    dlq_replay = dlq_sub.add_parser("replay", parents=[common], help="republish to the original subject")
    target = dlq_replay.add_mutually_exclusive_group(required=True)
    target.add_argument("id", type=int, nargs="?")
    target.add_argument("--all", action="store_true")
    dlq_replay.add_argument("--stage", help="with --all: only this stage's dead letters")

    audit = sub.add_parser("audit", parents=[common], help="check the invariants from the streams")
    audit.add_argument("--grace", type=float, default=30.0,
                       help="seconds an order may be in flight before a missing outcome is a violation")

    positions = sub.add_parser("positions", parents=[common], help="positions and P&L per account and symbol")
    positions.add_argument("--account")
    rebuild = sub.add_parser("rebuild", help="replay the log into a projection and compare with the live one")
    rebuild_sub = rebuild.add_subparsers(dest="projection", required=True)
    rebuild_positions = rebuild_sub.add_parser("positions", parents=[common])
    rebuild_positions.add_argument("--from-snapshot", action="store_true", help="start at the last snapshot")

    breaker = sub.add_parser("breaker", parents=[common], help="a venue's circuit breaker: status, open, close")
    breaker.add_argument("action", choices=("status", "open", "close"))
    breaker.add_argument("venue")

    for name, text in (("halt", "kill switch: no new order passes risk; working orders are canceled"),
                       ("reduce", "reduce-only: only orders that reduce a position pass risk"),
                       ("resume", "lift the kill switch (back to ACTIVE)")):
        switch = sub.add_parser(name, parents=[common], help=text)
        switch.add_argument("--account", help="one account (default: the whole desk)")
        switch.add_argument("--reason", help="why (stored with the change)")

    cancel = sub.add_parser("cancel", parents=[common], help="cancel a working order and print the answer")
    cancel.add_argument("order_id")
    cancel.add_argument("--account", help="the order's account (looked up in the log when not given)")
    cancel.add_argument("--venue", help="the order's venue (looked up in the log when not given)")
    cancel.add_argument("--reason", help="why (carried on the cancel)")
    cancel.add_argument("--timeout", type=float, default=30.0)
    cancel.add_argument("--no-wait", action="store_true", help="print the request id and return")

    venue = sub.add_parser("venue", parents=[common],
                           help="a venue simulator's faults at run time (no option: show them)")
    venue.add_argument("venue")
    venue.add_argument("--latency", type=float, help="seconds added before each session reply")
    venue.add_argument("--reject-rate", type=float, help="fraction of new orders rejected (0..1)")
    venue.add_argument("--disconnect", action=argparse.BooleanOptionalAction, default=None,
                       help="drop the order-entry session (--no-disconnect brings it back)")
    venue.add_argument("--stall", action=argparse.BooleanOptionalAction, default=None,
                       help="stop answering session requests (--no-stall resumes)")
    venue.add_argument("--clear", action="store_true", help="remove every fault")

    trace = sub.add_parser("trace", parents=[common], help="every event of one order, in time order")
    trace.add_argument("order_id")
    trace.add_argument("--account", help="the order's account (reads only its partition)")
    for name in ("apply", "scale"):
        apply = sub.add_parser(name, help="re-apply a changed config (replicas, limits) to the running system")
        apply.add_argument("--config", required=True)
        apply.add_argument("--json", action="store_true")

    demo = sub.add_parser("demo", parents=[common], help="start everything, run 1,000 orders with a crash, stop")
    demo.add_argument("--orders", type=int, default=1000)
    demo.add_argument("--rate", type=float, default=250.0)
    return parser


COMMANDS = {"up": cmd_up, "down": cmd_down, "env": cmd_env, "status": cmd_status, "metrics": cmd_metrics,
            "order": cmd_order,
            "load": cmd_load, "dlq": cmd_dlq, "audit": cmd_audit, "positions": cmd_positions,
            "rebuild": cmd_rebuild, "breaker": cmd_breaker, "halt": cmd_switch,
            "reduce": cmd_switch, "resume": cmd_switch, "cancel": cmd_cancel,
            "venue": cmd_venue, "trace": cmd_trace, "apply": cmd_apply, "scale": cmd_apply, "demo": cmd_demo}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    tune()  # a long `trade load` or `trade audit` keeps many objects (see actors.runtime.gc_tuning)
    try:
        return COMMANDS[args.command](args)
    except OrderValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (BrokerUnavailable, PublishRejected, ProjectionUnavailable) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except OrderTimeout as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_TIMEOUT
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
