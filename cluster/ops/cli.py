"""The `trade` command: run the local stack, place orders, load-test, operate, and run the demo.

The
commands live in cluster.ops.cli_stack, cli_orders and cli_operator; `build_parser` is the declarative
table of their arguments."""

from __future__ import annotations

import argparse
import sys

from actors.runtime.gc_tuning import tune
from cluster.client.errors import BrokerUnavailable, OrderTimeout, OrderValidationError, PublishRejected
from cluster.config import ConfigError
from cluster.local.stack import StackError
from cluster.ops.cli_common import DEFAULT_CONFIG, EXIT_BAD_INPUT, EXIT_TIMEOUT, EXIT_UNAVAILABLE, CliError
from cluster.ops.cli_operator import cmd_audit, cmd_breaker, cmd_dlq, cmd_positions, cmd_rebuild, cmd_switch, cmd_venue
from cluster.ops.cli_orders import cmd_cancel, cmd_load, cmd_order, cmd_trace
from cluster.ops.cli_stack import cmd_apply, cmd_demo, cmd_down, cmd_env, cmd_metrics, cmd_status, cmd_up
from cluster.ops.positions import ProjectionUnavailable

__all__ = ["DEFAULT_CONFIG", "CliError", "build_parser", "main"]


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
