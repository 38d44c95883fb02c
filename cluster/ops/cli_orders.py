"""Order commands: order, load, cancel and trace."""

from __future__ import annotations

import argparse
from typing import Any

from actors.runtime import event_loop
from cluster.ops.cli_common import (
    EXIT_BAD_INPUT,
    CliError,
    cli_config,
    int_or_str,
    with_nats,
)

__all__ = ["cmd_cancel", "cmd_load", "cmd_order", "cmd_trace"]


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
    order = probe.build_order(args.account, args.symbol.upper(), args.side.upper(), int_or_str(args.qty),
                              args.price, **fields)
    cfg = cli_config(args)

    async def _run() -> int:
        async with TradingClient.fromcli_config(cfg) as client:
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
    cfg = cli_config(args)

    async def _run() -> int:
        async with TradingClient.fromcli_config(cfg) as client:
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


def cmd_cancel(args: argparse.Namespace) -> int:
    from cluster.client.outcome import OrderStatus
    from cluster.client.trading import TradingClient
    from cluster.ops.render import console, outcome_dict, print_json
    from cluster.ops.trace import find_order
    from messages.ids import is_valid_order_id

    if not is_valid_order_id(args.order_id):
        raise CliError(f"invalid order id {args.order_id!r}", EXIT_BAD_INPUT)
    cfg = cli_config(args)

    async def _run() -> int:
        async with TradingClient.fromcli_config(cfg) as client:
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


def cmd_trace(args: argparse.Namespace) -> int:
    from rich.table import Table

    from cluster.ops.render import console, event_detail, print_json
    from cluster.ops.trace import trace

    cfg = cli_config(args)

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

    return with_nats(args, work)

