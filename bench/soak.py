"""Soak: the system at a steady rate on the order-book venue for an hour, with a process killed every
minute, printing every few minutes each process's memory, the venue's restart time and the length of
its journal. Memory and restart time should stay flat; every order should settle, once.

    .venv/bin/python bench/soak.py [--duration 3600] [--rate 40] [--kill-every 60] [--report-every 300]
                                   [--day-length 600] [--out bench/results/soak.json]

Starts its own nats-server and Ray head and deploys examples/local.yaml (venue SIM in book mode, a price
tick every 0.5 s: about 7,200 journal records an hour from the ticks alone) with a trading day of
`--day-length` seconds, so that end-of-day expiry and forgetting happen during the run. Orders go in
chunks of `--chunk` seconds at `--rate` per second (`cluster.client.load.order_mix` with the venue's reference
prices: IOC orders through the quotes), each chunk's outcomes awaited before the next. Every
`--kill-every` seconds one child is killed (SIGKILL), in rotation over risk, allocator, gateway,
positions and the venue. At every report the venue itself is killed and the time until its replacement
serves again is measured (the supervisor's status shows it running). At the end `trade audit` runs.

Not part of `make test`. Everything started here is stopped on exit, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import itertools
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ray  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from actors.runtime import event_loop  # noqa: E402
from actors.runtime.gc_tuning import tune  # noqa: E402
from actors.runtime.nats_conn import connect  # noqa: E402
from actors.runtime.refprices import wait_reference_prices  # noqa: E402
from bench.common import fmt, raise_interrupt, run_guarded, write_results  # noqa: E402
from cluster.client.load import order_mix, run_load  # noqa: E402
from cluster.client.trading import TradingClient  # noqa: E402
from cluster.config import SystemConfig, VenueConfig, load_config  # noqa: E402
from cluster.job import deploy, teardown  # noqa: E402
from cluster.local.nats_server import NatsServer  # noqa: E402
from cluster.local.procs import pid_alive  # noqa: E402
from cluster.local.ray_env import init_ray  # noqa: E402
from cluster.local.ray_head import RayHead  # noqa: E402
from cluster.ops.audit import audit  # noqa: E402
from supervision.supervisor import SUPERVISOR_NAME  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 160)

VICTIMS = ("risk-0", "allocator-0", "gateway-SIM", "positions", "venue-SIM", "risk-1", "allocator-1")
VENUE = "venue-SIM"


def memory_mb(pid: int) -> tuple[float | None, float | None]:
    """(RSS, PSS) of a process in MiB, from /proc (None when it is gone)."""
    rss = pss = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1]) / 1024
    return rss, pss


def ray_daemons() -> dict[str, int]:
    """Ray's own long-lived processes on this machine (by executable name)."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            name = (entry / "comm").read_text().strip()
            if name in ("raylet", "gcs_server") and name not in found:
                found[name] = int(entry.name)
    return found


class Stack:
    """One nats-server and one Ray head with the system deployed; `close()` stops all of it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.nats: NatsServer | None = None
        self.head: RayHead | None = None
        self.cfg: SystemConfig | None = None

    def start(self, cfg: SystemConfig) -> SystemConfig:
        self.nats = NatsServer(self.base / "nats", log_file=self.base / "nats-server.log")
        self.nats.start()
        self.head = RayHead(self.base / "ray-head.log", num_cpus=4)
        self.head.start()
        init_ray(self.head.address, namespace=cfg.name)
        signal.signal(signal.SIGTERM, raise_interrupt)  # ray.init installs its own: ours stops everything
        self.cfg = cfg.with_nats_url(self.nats.url)
        deploy(self.cfg)
        return self.cfg

    def close(self) -> list[str]:
        problems: list[str] = []
        for what, fn in (("teardown", lambda: self.cfg and ray.is_initialized() and teardown(self.cfg, timeout=30)),
                         ("ray.shutdown", ray.shutdown), ("ray head", lambda: self.head and self.head.stop()),
                         ("ray temp dir", lambda: self.head and shutil.rmtree(self.head.temp_dir, ignore_errors=True)),
                         ("nats-server", lambda: self.nats and self.nats.stop())):
            try:
                fn()
            except Exception as exc:
                problems.append(f"{what}: {exc!r}")
        return problems


class Soak:
    def __init__(self, cfg: SystemConfig, stack: Stack, args: argparse.Namespace) -> None:
        self.cfg = cfg
        self.stack = stack
        self.args = args
        self.sup = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        self.kills: list[dict[str, Any]] = []
        self.reports: list[dict[str, Any]] = []
        self.chunks: list[dict[str, Any]] = []
        self.started = time.monotonic()

    async def children(self) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in (await self.sup.status.remote())["children"]}

    async def kill(self, child: str) -> float | None:
        """SIGKILL a running child; the seconds until its replacement runs (None: it did not run again)."""
        before = (await self.children()).get(child)
        if not before or before.get("state") != "running" or not before.get("pid"):
            return None
        t0 = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(before["pid"], signal.SIGKILL)
        while time.monotonic() - t0 < 120:
            now = (await self.children()).get(child, {})
            if now.get("state") == "running" and now.get("pid") not in (None, before["pid"]):
                return time.monotonic() - t0
            await asyncio.sleep(0.02)
        return None

    async def killer(self, stop: asyncio.Event) -> None:
        for victim in itertools.cycle(VICTIMS):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.args.kill_every)
            if stop.is_set():
                return
            took = await self.kill(victim)
            self.kills.append({"t": round(time.monotonic() - self.started), "child": victim, "back_s": took})

    async def report(self, js: Any) -> dict[str, Any]:
        """Each process's memory (first: a venue restart also restarts its gateway), then the venue's
        restart time."""
        children = await self.children()
        journal = (await js.stream_info("VENUE_INPUT")).state.messages
        mem: dict[str, Any] = {}
        pids = {cid: c["pid"] for cid, c in children.items() if c.get("pid")}
        pids["supervisor"] = await self.sup.pid.remote()
        if self.stack.nats is not None and self.stack.nats.pid:
            pids["nats-server"] = self.stack.nats.pid
        pids.update(ray_daemons())
        pids["driver"] = os.getpid()
        for name, pid in sorted(pids.items()):
            if pid_alive(pid):
                rss, pss = memory_mb(pid)
                mem[name] = {"rss_mb": rss, "pss_mb": pss}
        restart = await self.kill(VENUE)
        row = {"t": round(time.monotonic() - self.started), "venue_restart_s": restart, "journal_records": journal,
               "orders": sum(c["sent"] for c in self.chunks), "lost": sum(c["lost"] for c in self.chunks),
               "memory": mem}
        self.reports.append(row)
        console.print(f"[{row['t']:>5}s] orders={row['orders']} lost={row['lost']} journal={journal} "
                      f"venue restart={fmt(restart, 2, 's')} "
                      + " ".join(f"{k}={fmt(v['rss_mb'], 0)}" for k, v in mem.items()))
        return row

    async def run(self) -> dict[str, Any]:
        nc = await connect(self.cfg.nats.url, name="soak")
        js = nc.jetstream()
        reference = await wait_reference_prices(js, "SIM")
        stop = asyncio.Event()
        killer = asyncio.create_task(self.killer(stop))
        next_report = 0.0
        try:
            async with TradingClient.from_config(self.cfg, publish_timeout=5.0) as client:
                for n in itertools.count():
                    elapsed = time.monotonic() - self.started
                    if elapsed >= self.args.duration:
                        break
                    if elapsed >= next_report:
                        await self.report(js)
                        next_report += self.args.report_every
                    orders = order_mix(int(self.args.rate * self.args.chunk), seed=n, reference=reference)
                    result = await run_load(client, orders, rate=self.args.rate, timeout=120)
                    self.chunks.append({"chunk": n, "sent": result.sent, "lost": result.lost,
                                        "duplicated": result.duplicated, "p50_ms": result.latency_p50_ms,
                                        "p99_ms": result.latency_p99_ms})
            await self.report(js)
        finally:
            stop.set()
            await killer
        checked = await audit(js, grace_s=30.0, nc=nc)
        await nc.close()
        return {"audit": {"ok": checked.ok, "orders": checked.orders, "violations": checked.counts()}}


def summarize(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Each process's memory and the venue's restart time: first report against the last."""
    if len(reports) < 2:
        return {}
    first, last = reports[0], reports[-1]
    growth = {name: {"first_rss_mb": m["rss_mb"], "last_rss_mb": last["memory"].get(name, {}).get("rss_mb")}
              for name, m in first["memory"].items()}
    return {"memory": growth, "venue_restart_first_s": first["venue_restart_s"],
            "venue_restart_last_s": last["venue_restart_s"],
            "venue_restart_max_s": max((r["venue_restart_s"] or 0) for r in reports),
            "journal_records_first": first["journal_records"], "journal_records_last": last["journal_records"]}


def render(results: dict[str, Any]) -> None:
    table = Table(title="soak: memory (RSS MiB) and venue restart, first and last report")
    for col in ("process", "first", "last"):
        table.add_column(col)
    for name, m in sorted(results["summary"].get("memory", {}).items()):
        table.add_row(name, fmt(m["first_rss_mb"], 0), fmt(m["last_rss_mb"], 0))
    s = results["summary"]
    table.add_row("venue restart (s)", fmt(s.get("venue_restart_first_s"), 2), fmt(s.get("venue_restart_last_s"), 2))
    table.add_row("journal records", fmt(s.get("journal_records_first")), fmt(s.get("journal_records_last")))
    console.print(table)
    console.print(f"orders {results['orders']}, lost {results['lost']}, duplicated {results['duplicated']}; "
                  f"audit {'clean' if results['audit']['ok'] else results['audit']['violations']}")


def soak_config(args: argparse.Namespace) -> SystemConfig:
    cfg = load_config(args.config)
    venues = {}
    for name, venue in cfg.venues.items():
        update: dict[str, Any] = {}
        if "day_length" in VenueConfig.model_fields and args.day_length:
            update["day_length"] = args.day_length
        venues[name] = venue.model_copy(update=update)
    return cfg.model_copy(update={"name": "soak", "venues": venues})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/soak.py", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=40.0, help="orders per second")
    parser.add_argument("--chunk", type=float, default=60.0, help="seconds of orders per chunk")
    parser.add_argument("--kill-every", type=float, default=60.0, help="seconds between kills")
    parser.add_argument("--report-every", type=float, default=300.0, help="seconds between reports")
    parser.add_argument("--day-length", type=float, default=600.0, help="a trading day, in seconds")
    parser.add_argument("--config", default=str(ROOT / "examples" / "local.yaml"))
    parser.add_argument("--out", default="bench/results/soak.json")
    parser.add_argument("--keep-logs", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tune()
    base = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    stack = Stack(base)
    results: dict[str, Any] = {"timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                               "command": " ".join(sys.orig_argv), "args": vars(args)}

    def body() -> None:
        cfg = stack.start(soak_config(args))
        soak = Soak(cfg, stack, args)
        results.update(event_loop.run(soak.run()))
        results.update(reports=soak.reports, kills=soak.kills, chunks=soak.chunks,
                       orders=sum(c["sent"] for c in soak.chunks), lost=sum(c["lost"] for c in soak.chunks),
                       duplicated=sum(c["duplicated"] for c in soak.chunks), summary=summarize(soak.reports))
        render(results)
        write_results(console, results, args.out)

    return run_guarded(console, stack, base, args.keep_logs, body, "stopping the soak's stack")


if __name__ == "__main__":
    sys.exit(main())
