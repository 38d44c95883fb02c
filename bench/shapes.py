"""What the design's message flow costs on this machine: the relay against shapes of the graph model.

    .venv/bin/python bench/shapes.py [--shapes full,exec1,exec1+nowatch,exec1+dc1+nowatch,exec1+dc1+nowatch+nopos]
                                     [--orders 5000] [--rate 1000] [--duration 6] [--out bench/results/shapes.json]

`bench/graph.py` moves every message the system moves per order and does nothing else with them. A
shape changes that flow the way a change to the design would (one execution message per venue reply,
one drop-copy record per reply, a client that takes only outcomes, no separate positions reader; see
`bench.graph.Shape`). For each shape in turn this starts the model's processes on a fresh
nats-server and measures it at saturation and at one fixed rate, with the relay measured again just
before it in the same way: so each ratio compares two paths measured a minute apart on a noisy machine.

Neither Ray nor the system runs here, so the machine is quieter than in bench/throughput.py: the
ratios are an upper bound of what each shape allows. Every process started here is stopped on exit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.table import Table  # noqa: E402

from actors.runtime import event_loop  # noqa: E402
from actors.runtime.gc_tuning import tune  # noqa: E402
from bench.common import fmt, fmt_latency, ratio, run_guarded, write_results  # noqa: E402
from bench.graph import Shape, graph_driver  # noqa: E402
from bench.relay import RelayDriver  # noqa: E402
from bench.throughput import WARMUP, Stack, console, machine, relay_step, stop_workers  # noqa: E402
from cluster.local.nats_server import NatsServer  # noqa: E402

__all__ = ["main"]

DEFAULT_SHAPES = "full,exec1,exec1+nowatch,exec1+dc1+nowatch,exec1+dc1+nowatch+nopos"


class ShapesStack(Stack):
    """The relay's nats-server and workers, and the graph model on a fresh nats-server per shape."""

    def start_relay_path(self, batch: int) -> str:
        self.nats_relay = NatsServer(self.base / "nats-relay", log_file=self.logs / "nats-relay.log")
        self.nats_relay.start()
        self.start_relay(self.nats_relay.url, batch)
        return self.nats_relay.url

    def fresh_graph(self, shape: Shape, batch: int) -> str:
        problems = stop_workers(self.graph_workers)
        self.graph_workers.clear()
        if problems:
            console.log("; ".join(problems))
        if self.nats_graph is not None:
            self.nats_graph.stop()
        self.nats_graph = NatsServer(self.base / f"nats-graph-{shape.name}",
                                     log_file=self.logs / f"nats-graph-{shape.name}.log")
        self.nats_graph.start()
        self.start_graph(self.nats_graph.url, batch, shape=shape)
        return self.nats_graph.url


async def measure_shape(stack: ShapesStack, relay_url: str, graph_url: str, shape: Shape,
                        args: argparse.Namespace) -> dict[str, Any]:
    meters = stack.cpu_meters()
    n_rate = max(1, round(args.rate * args.duration))
    out: dict[str, Any] = {"shape": shape.name, "stored_per_order": shape.stored_per_order(),
                           "deliveries_per_order": shape.deliveries_per_order()}
    paths = {"relay": lambda: RelayDriver(relay_url, payload_bytes=args.payload_bytes),
             "graph": lambda: graph_driver(graph_url, payload_bytes=args.payload_bytes, shape=shape)}
    for name, make in paths.items():
        await relay_step(make, WARMUP, 0, 60, f"{name} warm-up")
    for name, make in paths.items():
        sat = await relay_step(make, args.orders, 0, 300, f"{name} {shape.name} saturation", meter=meters[name])
        at_rate = await relay_step(make, n_rate, args.rate, 60 + 3 * n_rate / max(sat["throughput_per_s"], 1.0),
                                   f"{name} {shape.name} {args.rate:g}/s", offered=args.rate, meter=meters[name])
        out[name] = {"saturation": sat, "rate": at_rate}
    out["ratio_graph_over_relay"] = ratio(out["graph"]["saturation"]["throughput_per_s"],
                                           out["relay"]["saturation"]["throughput_per_s"])
    console.log(f"{shape.name}: graph / relay {out['ratio_graph_over_relay']}, {args.rate:g}/s p99 relay "
                f"{out['relay']['rate']['latency_p99_ms']} ms, graph {out['graph']['rate']['latency_p99_ms']} ms")
    return out


def render(results: dict[str, Any]) -> None:
    rate = results["parameters"]["rate"]
    t = Table(title=f"Graph-model shapes against the relay (saturation, and {rate:g}/s; ms = p50 / p99 / p99.9)")
    for col in ("shape", "stored / deliveries per order", "relay /s", "graph /s", "graph / relay",
                "CPU ms/msg relay / graph", f"relay {rate:g}/s ms", f"graph {rate:g}/s ms", "graph sustained"):
        t.add_column(col, justify="left" if col == "shape" else "right")
    for row in results["shapes"]:
        r, g = row["relay"], row["graph"]
        t.add_row(row["shape"], f"{row['stored_per_order']} / {row['deliveries_per_order']}",
                  fmt(r["saturation"]["throughput_per_s"], 0), fmt(g["saturation"]["throughput_per_s"], 0),
                  fmt(row["ratio_graph_over_relay"], 3),
                  f"{fmt(r['saturation'].get('cpu_ms_per_msg'), 3)} / {fmt(g['saturation'].get('cpu_ms_per_msg'), 3)}",
                  fmt_latency(r["rate"]), fmt_latency(g["rate"]), "yes" if g["rate"]["sustained"] else "NO")
    console.print(t)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/shapes.py", description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default=DEFAULT_SHAPES, help="comma-separated: full, or flags joined by '+'")
    parser.add_argument("--orders", type=int, default=5000, help="messages per saturation step")
    parser.add_argument("--rate", type=float, default=1000.0, help="the fixed offered rate per second")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds at the fixed rate")
    parser.add_argument("--batch", type=int, default=128, help="pull batch of every worker (the stages' default)")
    parser.add_argument("--payload-bytes", type=int, default=500)
    parser.add_argument("--out", default="bench/results/shapes.json")
    parser.add_argument("--keep-logs", action="store_true")
    args = parser.parse_args(argv)
    try:
        args.shapes = [Shape.parse(text.strip()) for text in args.shapes.split(",") if text.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    if not args.shapes or args.orders < 1 or args.rate <= 0 or args.duration <= 0:
        parser.error("--shapes must name at least one shape; --orders, --rate and --duration must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tune()
    base = Path(tempfile.mkdtemp(prefix="bench-shapes-"))
    stack = ShapesStack(base)
    results: dict[str, Any] = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.orig_argv),
        "machine": machine(),
        "parameters": {"shapes": [s.name for s in args.shapes], "orders": args.orders, "rate": args.rate,
                       "duration_s": args.duration, "batch": args.batch, "payload_bytes": args.payload_bytes},
        "shapes": [],
    }

    def body() -> None:
        relay_url = stack.start_relay_path(args.batch)
        started = time.monotonic()
        for shape in args.shapes:
            console.rule(f"shape {shape.name}")
            graph_url = stack.fresh_graph(shape, args.batch)
            results["shapes"].append(event_loop.run(measure_shape(stack, relay_url, graph_url, shape, args)))
        results["measure_s"] = round(time.monotonic() - started, 1)
        render(results)
        write_results(console, results, args.out)

    return run_guarded(console, stack, base, args.keep_logs, body, "stopping the workers and the nats-servers ...")


if __name__ == "__main__":
    sys.exit(main())
