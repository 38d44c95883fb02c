"""A book-mode venue's restart time against the length of its journal's history, with snapshots.

    .venv/bin/python bench/venue_restart.py [--lengths 0,10000,50000,173000] [--tail 120] [--rounds 3]
                                            [--snapshot-every 5000] [--order-every 50] [--no-full-replay]

One nats-server on loopback (a free port, a temp store), started and stopped here, also on failure,
Ctrl-C or SIGTERM. For each history length L a venue (its own name, so its own journal) journals L
records as it would live: ticks, and every `--order-every` records a client order (one in fifty rests,
the others fill at once; no end of day comes, so the venue remembers them all: `--order-every 2` over
100,000 records is 50,000 orders, two days of the soak's load), with snapshots on (every
`--snapshot-every` records) and none by time. A day of ticks at 0.5 s is about 173,000 records. Then
a snapshot is taken, `--tail` more ticks are journaled (120: a minute of ticks, what a restart
replays at most at the default `snapshot_interval` of 60 s when only ticks come), and the venue is
closed. It is restarted `--rounds` times; each restart is timed from a new session to `restore()`
done (snapshot loaded, journal tail replayed, drop copy checked) and to `serve()` done (subscribed,
first tick, answering).

Beside it, unless --no-full-replay, the same history and tail on a venue whose snapshots never come
due: its restart replays the whole journal, as every restart did before snapshots (one round).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nats.aio.client import Client  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from actors.domain.book_venue import NewCommand, TickCommand  # noqa: E402
from actors.runtime import event_loop  # noqa: E402
from actors.runtime.nats_conn import connect  # noqa: E402
from actors.stages.venue.session import VenueSession  # noqa: E402
from actors.stages.venue.snapshots import SnapshotStore  # noqa: E402
from bench.common import fmt, raise_interrupt, write_results  # noqa: E402
from cluster.config import VenueConfig, parse_config  # noqa: E402
from cluster.local.nats_server import NatsServer  # noqa: E402
from cluster.topology import ensure_topology  # noqa: E402
from messages.base import OrderType, Side, TimeInForce  # noqa: E402
from messages.venue import NewOrderSingle  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 120)

SYMBOLS = ("AAPL", "MSFT", "TSLA")
#: Records journaled before waiting for their acknowledgements.
CHUNK = 500
NEVER = 10**9


def venue_config(snapshot_every: int) -> VenueConfig:
    # No tick loop (the bench journals the ticks) and no snapshot by time: only by record count.
    return VenueConfig(mode="book", symbols=SYMBOLS, tick=3600, snapshot_every=snapshot_every,
                       snapshot_interval=NEVER)


def order(n: int, resting: bool) -> NewOrderSingle:
    if resting:  # far below the market: it rests until the end of day
        return NewOrderSingle(cl_ord_id=f"REST-{n}", symbol="AAPL", side=Side.BUY, qty=10, price="100.00",
                              account="ACC1")
    return NewOrderSingle(cl_ord_id=f"FILL-{n}", symbol="MSFT", side=Side.BUY if n % 2 else Side.SELL, qty=100,
                          order_type=OrderType.MARKET, tif=TimeInForce.IOC, account="ACC2")


async def journal_history(nc: Client, venue: str, vcfg: VenueConfig, length: int, tail: int,
                          snapshot: bool, order_every: int = 50) -> int:
    """Start the venue, journal `length` records, take a snapshot (if `snapshot`), journal `tail`
    ticks, close it. Returns its last journal number."""
    session = VenueSession(nc, nc.jetstream(), venue, vcfg)
    await session.restore()
    await session.serve()
    book = session.book_session
    assert book is not None
    item = None
    try:
        written = 0
        while written < length:
            for _ in range(min(CHUNK, length - written)):
                written += 1
                if written % order_every == 0:
                    resting = (written // order_every) % 50 == 0
                    item = book.run(NewCommand(order=order(written, resting=resting)), None)
                else:
                    item = book.run(TickCommand(), None)
            assert item is not None
            await asyncio.wait_for(asyncio.shield(item.done), 60)
        if snapshot:
            deadline = time.monotonic() + 60
            while book.schedule.busy and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            book.schedule.force()
            book.maybe_snapshot()
            while (book.schedule.busy or book.schedule.covered < book.journaled) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            if book.schedule.covered < book.journaled:
                raise RuntimeError(f"venue {venue}: no snapshot of journal record {book.journaled} was stored")
        for _ in range(tail):
            item = book.run(TickCommand(), None)
        if item is not None:
            await asyncio.wait_for(asyncio.shield(item.done), 60)
        return book.journaled
    finally:
        await session.close(timeout=30)


async def restart(nc: Client, venue: str, vcfg: VenueConfig) -> dict[str, float]:
    started = time.perf_counter()
    session = VenueSession(nc, nc.jetstream(), venue, vcfg)
    try:
        replayed = await session.restore()
        restored = time.perf_counter()
        await session.serve()
        ready = time.perf_counter()
    finally:
        await session.close(timeout=30)
    return {"replayed": replayed, "restore_s": restored - started, "ready_s": ready - started}


async def measure(url: str, lengths: list[int], tail: int, rounds: int, snapshot_every: int, full: bool,
                  order_every: int) -> list[dict[str, Any]]:
    nc = await connect(url, name="bench-venue-restart")
    js = nc.jetstream()
    await ensure_topology(js, parse_config({"nats": {"url": url, "max_bytes": "512MiB"}}))
    rows: list[dict[str, Any]] = []
    try:
        for length in lengths:
            venue = f"R{length}"
            console.log(f"{venue}: journaling {length:,} records (snapshots every {snapshot_every:,})")
            t0 = time.perf_counter()
            last = await journal_history(nc, venue, venue_config(snapshot_every), length, tail, snapshot=True,
                                         order_every=order_every)
            row: dict[str, Any] = {"history": length, "orders": length // order_every, "journal_records": last,
                                   "journal_s": round(time.perf_counter() - t0, 2)}
            snapshot = await SnapshotStore(js, venue).load()
            info = await (await js.object_store("VENUE_SNAPSHOTS")).get_info(venue)
            row.update(snapshot_n=snapshot.n if snapshot else 0, snapshot_bytes=info.size)
            runs = [await restart(nc, venue, venue_config(snapshot_every)) for _ in range(rounds)]
            row.update(replayed=runs[0]["replayed"], rounds=runs,
                       restore_s=round(statistics.median(r["restore_s"] for r in runs), 4),
                       ready_s=round(statistics.median(r["ready_s"] for r in runs), 4))
            console.log(f"{venue}: restart replayed {row['replayed']:,} records, ready in {row['ready_s']:.3f} s")
            if full:
                venue = f"F{length}"
                await journal_history(nc, venue, venue_config(NEVER), length, tail, snapshot=False,
                                      order_every=order_every)
                run = await restart(nc, venue, venue_config(NEVER))
                row.update(full_replayed=run["replayed"], full_restore_s=round(run["restore_s"], 4),
                           full_ready_s=round(run["ready_s"], 4))
                console.log(f"{venue}: full replay of {run['replayed']:,} records, ready in {run['ready_s']:.3f} s")
            rows.append(row)
    finally:
        await nc.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/venue_restart.py", description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="0,10000,50000,173000", help="history lengths, comma-separated")
    parser.add_argument("--tail", type=int, default=120, help="ticks journaled after the last snapshot")
    parser.add_argument("--rounds", type=int, default=3, help="restarts timed per length (median reported)")
    parser.add_argument("--snapshot-every", type=int, default=VenueConfig().snapshot_every)
    parser.add_argument("--order-every", type=int, default=50, help="a client order every N journal records")
    parser.add_argument("--no-full-replay", action="store_true", help="skip the restart without snapshots")
    parser.add_argument("--out", default="bench/results/venue_restart.json")
    args = parser.parse_args(argv)
    try:
        lengths = [int(x) for x in args.lengths.split(",")]
    except ValueError:
        parser.error("--lengths must be whole numbers separated by commas")
    if min(lengths) < 0 or args.tail < 0 or min(args.rounds, args.snapshot_every, args.order_every) < 1:
        parser.error("--lengths and --tail must be >= 0, --rounds, --snapshot-every and --order-every >= 1")
    base = Path(tempfile.mkdtemp(prefix="bench-venue-restart-"))
    server = NatsServer(base / "store", log_file=base / "nats-server.log")
    previous_term = signal.signal(signal.SIGTERM, raise_interrupt)
    ok = False
    try:
        server.start()
        rows = event_loop.run(measure(server.url, lengths, args.tail, args.rounds, args.snapshot_every,
                                      not args.no_full_replay, args.order_every))
        ok = True
    except KeyboardInterrupt:
        console.print("[red]interrupted[/red]: stopping the nats-server this benchmark started")
        return 130
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous_term)
        if ok:
            shutil.rmtree(base, ignore_errors=True)
        else:
            console.print(f"nats-server log and store kept in {base}")
    table = Table(title=f"book-mode venue restart against its history ({args.tail} records after the last "
                        f"snapshot; median of {args.rounds} restarts)")
    for col in ("history", "orders", "snapshot at", "snapshot bytes", "replayed", "restore s", "ready s",
                "full replay: restore s", "ready s "):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(fmt(row["history"]), fmt(row["orders"]), fmt(row["snapshot_n"]), fmt(row["snapshot_bytes"]),
                      fmt(row["replayed"]),
                      fmt(row["restore_s"], 3), fmt(row["ready_s"], 3), fmt(row.get("full_restore_s"), 3),
                      fmt(row.get("full_ready_s"), 3))
    console.print(table)
    write_results(console, {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "command": " ".join(sys.orig_argv),
        "parameters": vars(args), "rows": rows,
    }, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
