"""Storing acknowledged messages: nats-py's `publish_async` against `actors.runtime.publisher.AckedPublisher`.

    .venv/bin/python bench/publish.py [--messages 20000] [--batch 20] [--rounds 3]

One nats-server on loopback (temp store), one stream, one connection. Each round stores the same
number of messages both ways, in batches whose acknowledgements are awaited together (as a stage's
loop does), alternating so that both see the same machine. Prints the client's CPU and wall time per
message and writes JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from actors.runtime import event_loop  # noqa: E402
from actors.runtime.nats_conn import connect  # noqa: E402
from actors.runtime.publisher import AckedPublisher  # noqa: E402
from bench.common import write_results  # noqa: E402
from cluster.local.nats_server import NatsServer  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 120)

WAYS = ("nats-py publish_async", "AckedPublisher.store")
TIMEOUT_S = 5.0


Rounds = dict[str, list[dict[str, float]]]


async def measure(url: str, messages: int, batch: int, rounds: int, payload: bytes) -> Rounds:
    nc = await connect(url, name="bench-publish")
    js = nc.jetstream()
    await js.add_stream(name="BENCH", subjects=["bench.>"])
    publisher = AckedPublisher(nc)
    await publisher.start()
    out: Rounds = {way: [] for way in WAYS}
    try:
        for rnd in range(rounds):
            for way in WAYS:
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for start in range(0, messages, batch):
                    items = [(f"bench.{n % 8}", payload, {"Nats-Msg-Id": f"{rnd}.{way}.{n}"})
                             for n in range(start, min(start + batch, messages))]
                    if way == WAYS[0]:
                        futures = [await js.publish_async(s, p, headers=h) for s, p, h in items]
                        await asyncio.wait_for(asyncio.gather(*futures), TIMEOUT_S)
                    else:
                        await publisher.store(items, TIMEOUT_S)
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                out[way].append({"cpu_us_per_msg": round(1e6 * cpu / messages, 2),
                                 "wall_us_per_msg": round(1e6 * wall / messages, 2)})
                console.log(f"round {rnd + 1}/{rounds} {way}: {out[way][-1]['cpu_us_per_msg']} us CPU per message")
    finally:
        await publisher.stop()
        await nc.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/publish.py", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages per way and round")
    parser.add_argument("--batch", type=int, default=20, help="messages whose acknowledgements are awaited together")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--payload-bytes", type=int, default=300)
    parser.add_argument("--out", default="bench/results/publish.json")
    args = parser.parse_args(argv)
    if min(args.messages, args.batch, args.rounds, args.payload_bytes) < 1:
        parser.error("--messages, --batch, --rounds and --payload-bytes must be positive")
    base = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    server = NatsServer(base / "store", log_file=base / "nats-server.log")
    server.start()
    try:
        runs = event_loop.run(measure(server.url, args.messages, args.batch, args.rounds, b"x" * args.payload_bytes))
    finally:
        server.stop()
    summary: dict[str, Any] = {way: {k: statistics.median(r[k] for r in rows) for k in rows[0]}
                               for way, rows in runs.items()}
    ratio = round(summary[WAYS[1]]["cpu_us_per_msg"] / summary[WAYS[0]]["cpu_us_per_msg"], 3)
    table = Table(title=f"{args.messages:,} acknowledged messages per way, batches of {args.batch} (median of "
                        f"{args.rounds} rounds)")
    for col in ("way", "client CPU us / msg", "wall us / msg"):
        table.add_column(col, justify="left" if col == "way" else "right")
    for way in WAYS:
        table.add_row(way, f"{summary[way]['cpu_us_per_msg']:.1f}", f"{summary[way]['wall_us_per_msg']:.1f}")
    table.add_row("AckedPublisher / publish_async", f"{ratio:.2f}", "")
    console.print(table)
    write_results(console, {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "command": " ".join(sys.orig_argv),
        "parameters": vars(args), "rounds": runs, "median": summary, "ratio_cpu_acked_over_publish_async": ratio,
    }, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
