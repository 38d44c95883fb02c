"""Throughput and latency of the order path against bare nats-py baselines, in one run.

    .venv/bin/python bench/throughput.py [--orders N] [--rates 250,500,1000,2000] [--duration S]
                                         [--backlog N] [--out bench/results/throughput.json] [--quick]

Starts three nats-servers (system, relay, graph: separate servers, separate stores), one shared Ray
head, deploys the whole system (examples/local.yaml, venue mode fill_all), the three relay worker
processes (bench/relay.py: the order path's three stage hops, nothing else) and the graph model's
five processes (bench/graph.py: every message the system moves per order, and nothing else done with
them), then measures:

1. saturation throughput (rate 0, as fast as the driver's publishes are acked) of the relay, the
   graph model and the system, with the ratios system/relay, graph/relay and system/graph;
2. end-to-end latency p50/p99/p99.9 at fixed offered rates, the three side by side
   (a rate that cannot be sustained is reported with its achieved rate);
3. backlog drain: risk replicas stopped, N orders stored, risk started again; drain rate vs the
   steady saturation rate.

All paths run with everything deployed (the idle ones' background load is on the machine for each).
Every process started here is stopped on exit, also on failure or Ctrl-C / SIGTERM. Ray's and NATS's
logs go under a temp dir (kept, and printed, on failure or with --keep-logs).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import nats  # noqa: E402
import ray  # noqa: E402
from nats.js import JetStreamContext  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from actors.runtime import event_loop  # noqa: E402
from actors.runtime.gc_tuning import tune  # noqa: E402
from bench.common import (  # noqa: E402
    bench_config,
    fmt,
    fmt_latency,
    raise_interrupt,
    ratio,
    run_guarded,
    write_results,
)
from bench.cpu import CpuMeter  # noqa: E402
from bench.graph import FULL, ROLES, Shape, ensure_graph_topology, graph_driver  # noqa: E402
from bench.relay import HOPS, RelayDriver, ensure_relay_topology  # noqa: E402
from cluster.client.load import order_mix, percentile, run_load  # noqa: E402
from cluster.client.outcome import OrderStatus  # noqa: E402
from cluster.client.trading import TradingClient  # noqa: E402
from cluster.config import SystemConfig  # noqa: E402
from cluster.job import deploy, teardown  # noqa: E402
from cluster.local.nats_server import NatsServer, nats_server_binary  # noqa: E402
from cluster.local.ray_env import init_ray  # noqa: E402
from cluster.local.ray_head import RayHead  # noqa: E402
from messages import OrderReceived, encode, wrap  # noqa: E402
from messages.ids import order_received_id  # noqa: E402
from supervision.supervisor import SUPERVISOR_NAME  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 150)  # wide tables in logs too

PATHS = ("relay", "graph", "system")
#: The saturation ratios reported: (numerator, denominator).
RATIOS = (("system", "relay"), ("graph", "relay"), ("system", "graph"))
SUSTAINED_FRACTION = 0.9  # a rate counts as sustained when >= 90% of it is achieved and nothing is lost
WARMUP = 200


# ---- figures --------------------------------------------------------------------------------------

def figures(ids: list[str], placed: dict[str, int], settled: dict[str, int], started_ns: int, sent_done_ns: int,
            offered: float | None = None, only: Iterable[str] | None = None) -> dict[str, Any]:
    """Counts, rates and latency percentiles of one step from per-id monotonic-ns timestamps."""
    done = [i for i in ids if i in settled]
    lat_ids = [i for i in (only if only is not None else done) if i in settled and i in placed]
    lat = [(settled[i] - placed[i]) / 1e6 for i in lat_ids]
    last = max((settled[i] for i in done), default=sent_done_ns)
    elapsed = max(1e-9, (max(last, sent_done_ns) - started_ns) / 1e9)
    put = sorted(placed[i] for i in ids if i in placed)
    out_times = sorted(settled[i] for i in done)
    send_span = (put[-1] - put[0]) / 1e9 if len(put) > 1 else 0.0
    out_span = (out_times[-1] - out_times[0]) / 1e9 if len(out_times) > 1 else 0.0
    result: dict[str, Any] = {
        "sent": len(ids), "settled": len(done), "lost": len(ids) - len(done),
        "elapsed_s": round(elapsed, 3),
        # end to end: settled / (first send .. last settled)
        "throughput_per_s": round(len(done) / elapsed, 1),
        # how fast the driver managed to offer, and how fast outcomes came out (first .. last outcome)
        "send_rate_per_s": round((len(put) - 1) / send_span, 1) if send_span > 0 else None,
        "output_rate_per_s": round((len(out_times) - 1) / out_span, 1) if out_span > 0 else None,
        "latency_samples": len(lat),
        "latency_p50_ms": _r(percentile(lat, 50)),
        "latency_p99_ms": _r(percentile(lat, 99)),
        "latency_p999_ms": _r(percentile(lat, 99.9)),
        "latency_max_ms": _r(max(lat) if lat else None),
        "latency_mean_ms": _r(sum(lat) / len(lat) if lat else None),
    }
    if offered is not None:
        result["offered_per_s"] = offered
        achieved = result["output_rate_per_s"] or 0.0
        sent_ok = (result["send_rate_per_s"] or 0.0) >= SUSTAINED_FRACTION * offered
        result["achieved_per_s"] = achieved
        result["sustained"] = result["lost"] == 0 and sent_ok and achieved >= SUSTAINED_FRACTION * offered
    return result


def _r(value: float | None, nd: int = 2) -> float | None:
    return None if value is None else round(value, nd)


# ---- progress -------------------------------------------------------------------------------------

class Bars:
    """Transient 'sent' and 'settled' bars for one step."""

    def __init__(self, label: str, total: int) -> None:
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.sent = self.progress.add_task(f"{label} sent   ", total=total)
        self.done = self.progress.add_task(f"{label} settled", total=total)

    def __enter__(self) -> Bars:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_sent(self, n: int) -> None:
        self.progress.advance(self.sent, n)

    def on_settled(self, n: int) -> None:
        self.progress.advance(self.done, n)


# ---- steps ----------------------------------------------------------------------------------------

def _cpu(result: dict[str, Any], meter: CpuMeter | None) -> None:
    """CPU seconds of the path's processes (driver, broker, workers) during the step, and per message."""
    if meter is None:
        return
    result["cpu_s"] = meter.stop()
    result["cpu_ms_per_msg"] = round(1000 * result["cpu_s"] / max(1, result["settled"]), 3)
    result["cpu_ms_per_msg_by_process"] = {
        label: round(1000 * s / max(1, result["settled"]), 3) for label, s in meter.by_label.items()}


async def relay_step(make_driver: Callable[[], RelayDriver], n: int, rate: float, timeout: float, label: str,
                     offered: float | None = None, meter: CpuMeter | None = None) -> dict[str, Any]:
    """One step of a bare nats-py baseline (the relay, or the graph model) through `make_driver()`."""
    async with make_driver() as driver:
        with Bars(label, n) as bars:
            if meter is not None:
                meter.start()
            ids, started, sent_done = await driver.run(n, rate=rate, timeout=timeout, on_sent=bars.on_sent,
                                                       on_settled=bars.on_settled)
        result = figures(ids, driver.placed_at, driver.settled_at, started, sent_done, offered)
        _cpu(result, meter)
        result["duplicated"] = len(driver.duplicated.intersection(ids))
    return result


async def system_step(cfg: SystemConfig, n: int, rate: float, timeout: float, label: str, seed: int,
                      offered: float | None = None, meter: CpuMeter | None = None) -> dict[str, Any]:
    orders = order_mix(n, seed=seed, run_id=f"B{uuid.uuid4().hex[:8]}")
    ids = [o.order_id for o in orders]
    async with TradingClient.from_config(cfg) as client:
        with Bars(label, n) as bars, client.retaining(ids):  # a step may send more than the client keeps
            if meter is not None:
                meter.start()
            started = time.monotonic_ns()
            report = await run_load(client, orders, rate=rate, timeout=timeout, on_sent=bars.on_sent,
                                    on_settled=bars.on_settled)
            sent_done = max(client.placed_at.values(), default=started)
            result = figures(ids, client.placed_at, client.settled_at, started, sent_done, offered)
            _cpu(result, meter)
            filled = [i for i in ids if client.outcome(i).status == OrderStatus.FILLED]
            full_path = figures(ids, client.placed_at, client.settled_at, started, sent_done, only=filled)
    result["duplicated"] = report.duplicated
    result["filled"], result["rejected"] = report.filled, report.rejected
    # Rejected orders settle after one hop (risk); filled ones went through all three stages.
    result["filled_latency_p50_ms"] = full_path["latency_p50_ms"]
    result["filled_latency_p99_ms"] = full_path["latency_p99_ms"]
    result["filled_latency_p999_ms"] = full_path["latency_p999_ms"]
    report_dict = report.to_dict()
    report_dict["lost_order_ids"] = report_dict["lost_order_ids"][:20]
    result["load_report"] = report_dict
    return result


async def backlog_step(cfg: SystemConfig, n: int, timeout: float, seed: int) -> dict[str, Any]:
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    orders = order_mix(n, seed=seed, run_id=f"K{uuid.uuid4().hex[:8]}")
    ids = [o.order_id for o in orders]
    pending = set(ids)
    all_settled = asyncio.Event()
    async with TradingClient.from_config(cfg) as client:
        js = client.nc.jetstream()
        t_stop = time.monotonic()
        stopped = await supervisor.stop_children.remote("risk-")
        stop_s = time.monotonic() - t_stop
        if not stopped:
            raise RuntimeError("stop_children('risk-') stopped nothing: no running risk replica")
        with Bars("backlog", n) as bars, client.retaining(ids):

            def _settled(outcome: Any) -> None:
                if outcome.order_id in pending:
                    pending.discard(outcome.order_id)
                    bars.on_settled(1)
                    if not pending:
                        all_settled.set()

            client.on_settled(_settled)
            before = (await js.stream_info("ORDERS_RECEIVED")).state.messages
            for i in range(0, n, 500):
                chunk = orders[i:i + 500]
                await asyncio.gather(*(client.submit(o) for o in chunk))
                bars.on_sent(len(chunk))
            stored = (await js.stream_info("ORDERS_RECEIVED")).state.messages - before
            settled_while_stopped = sum(1 for i in ids if i in client.settled_at)
            t_start = time.monotonic_ns()
            started = await supervisor.start_children.remote("risk-")
            t_started = time.monotonic_ns()
            for oid in ids:
                if client.outcome(oid).settled:
                    _settled(client.outcome(oid))
            if pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(all_settled.wait(), timeout)
            times = sorted(client.settled_at[i] for i in ids if i in client.settled_at)
            duplicated = sum(1 for i in ids if client.track(i).terminal_count() > 1
                             or client.track(i).duplicated_executions() > 0)
    settled = len(times)
    first, last = (times[0], times[-1]) if times else (t_start, t_start)
    from_start = (last - t_start) / 1e9
    from_first = (last - first) / 1e9
    return {
        "orders": n, "stored_while_stopped": stored, "settled_while_stopped": settled_while_stopped,
        "stopped": stopped, "started": started, "stop_children_s": round(stop_s, 3),
        "settled": settled, "lost": n - settled, "duplicated": duplicated,
        "start_children_s": round((t_started - t_start) / 1e9, 3),
        "first_settled_after_start_s": round((first - t_start) / 1e9, 3),
        "drain_s": round(from_start, 3),
        # settled / (start_children called .. last settled): includes starting the replicas
        "drain_rate_per_s": round(settled / from_start, 1) if from_start > 0 else None,
        # settled / (first .. last settled): the replicas' drain once they consume
        "drain_rate_consuming_per_s": round((settled - 1) / from_first, 1) if from_first > 0 else None,
    }


def _said(d: dict[str, Any]) -> str:
    """A rate step in a few words: its p99, whether it was sustained, what was achieved."""
    return (f"p99 {d['latency_p99_ms']} ms ({'sustained' if d['sustained'] else 'NOT sustained'}, "
            f"{d['achieved_per_s']} /s achieved)")


def _compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    """a / b for a rate step: latency percentiles, achieved rate and CPU per message."""
    out = {q: ratio(a[f"latency_{q}_ms"], b[f"latency_{q}_ms"]) for q in ("p50", "p99", "p999")}
    out["achieved"] = ratio(a["achieved_per_s"], b["achieved_per_s"])
    out["cpu_per_msg"] = ratio(a.get("cpu_ms_per_msg"), b.get("cpu_ms_per_msg"))
    return out


async def measure(cfg: SystemConfig, relay_url: str, graph_url: str, args: argparse.Namespace,
                  results: dict[str, Any], meters: dict[str, CpuMeter] | None = None) -> None:
    payload = args.payload_bytes
    meters = meters or {}

    def relay() -> RelayDriver:
        return RelayDriver(relay_url, payload_bytes=payload)

    def graph() -> RelayDriver:
        return graph_driver(graph_url, payload_bytes=payload)

    console.rule("warm-up")
    await relay_step(relay, WARMUP, 0, 60, "relay  warm-up")
    await relay_step(graph, WARMUP, 0, 60, "graph  warm-up")
    await system_step(cfg, WARMUP, 0, 120, "system warm-up", seed=1)

    console.rule(f"saturation: {args.orders} messages as fast as they are taken")
    relay_sat = await relay_step(relay, args.orders, 0, 300, "relay ", meter=meters.get("relay"))
    console.log(f"relay  saturation: {relay_sat['throughput_per_s']:.0f} msg/s, p50 {relay_sat['latency_p50_ms']} ms")
    graph_sat = await relay_step(graph, args.orders, 0, 300, "graph ", meter=meters.get("graph"))
    console.log(f"graph  saturation: {graph_sat['throughput_per_s']:.0f} msg/s, p50 {graph_sat['latency_p50_ms']} ms")
    sys_sat = await system_step(cfg, args.orders, 0, 600, "system", seed=2, meter=meters.get("system"))
    console.log(f"system saturation: {sys_sat['throughput_per_s']:.0f} orders/s, p50 {sys_sat['latency_p50_ms']} ms")
    sat = results["saturation"] = {"relay": relay_sat, "graph": graph_sat, "system": sys_sat}
    for a, b in RATIOS:
        sat[f"ratio_{a}_over_{b}"] = ratio(sat[a]["throughput_per_s"], sat[b]["throughput_per_s"])
        sat[f"ratio_cpu_per_msg_{a}_over_{b}"] = ratio(sat[a].get("cpu_ms_per_msg"), sat[b].get("cpu_ms_per_msg"))

    console.rule(f"fixed offered rates, {args.duration:g} s each")
    rows = []
    sys_rate = max(sys_sat["throughput_per_s"], 1.0)
    relay_rate = max(relay_sat["throughput_per_s"], 1.0)
    graph_rate = max(graph_sat["throughput_per_s"], 1.0)
    for k, rate in enumerate(args.rates):
        n = max(1, round(rate * args.duration))
        relay_row = await relay_step(relay, n, rate, 60 + 3 * n / relay_rate, f"relay  {rate:g}/s", offered=rate,
                                     meter=meters.get("relay"))
        graph_row = await relay_step(graph, n, rate, 60 + 3 * n / graph_rate, f"graph  {rate:g}/s", offered=rate,
                                     meter=meters.get("graph"))
        system = await system_step(cfg, n, rate, 60 + 3 * n / sys_rate, f"system {rate:g}/s", seed=10 + k,
                                   offered=rate, meter=meters.get("system"))
        rows.append({"offered_per_s": rate, "orders": n, "relay": relay_row, "graph": graph_row, "system": system,
                     "ratio_system_over_relay": _compare(system, relay_row),
                     "ratio_graph_over_relay": _compare(graph_row, relay_row),
                     "ratio_system_over_graph": _compare(system, graph_row)})
        console.log(f"{rate:g}/s: relay {_said(relay_row)}; graph {_said(graph_row)}; system {_said(system)}")
    results["rates"] = rows

    console.rule(f"backlog drain: {args.backlog} orders while the risk replicas are stopped")
    backlog = await backlog_step(cfg, args.backlog, 60 + 5 * args.backlog / sys_rate, seed=99)
    backlog["steady_saturation_per_s"] = sys_sat["throughput_per_s"]
    backlog["ratio_drain_over_saturation"] = ratio(backlog["drain_rate_per_s"], sys_sat["throughput_per_s"])
    backlog["ratio_consuming_drain_over_saturation"] = ratio(backlog["drain_rate_consuming_per_s"],
                                                              sys_sat["throughput_per_s"])
    # Under continuous overload the system delivers its achieved rate at the highest offered rate: the
    # steady rate a backlog competes with (the saturation step is one burst on a fresh system).
    overloaded = [r["system"]["achieved_per_s"] for r in results.get("rates", []) if not r["system"]["sustained"]]
    backlog["steady_overload_per_s"] = max(overloaded) if overloaded else None
    backlog["ratio_consuming_drain_over_overload"] = ratio(backlog["drain_rate_consuming_per_s"],
                                                            backlog["steady_overload_per_s"])
    results["backlog"] = backlog


# ---- output ---------------------------------------------------------------------------------------

def render(results: dict[str, Any]) -> None:
    sat = results["saturation"]
    t = Table(title=f"Saturation (rate 0), end to end: relay = {HOPS} stage hops only; graph = every message the "
                    "system moves per order, nothing else done with them")
    for col, just in (("path", "left"), ("sent", "right"), ("settled", "right"), ("lost", "right"),
                      ("dup", "right"), ("throughput /s", "right"), ("p50 / p99 / p99.9 ms", "right"),
                      ("CPU ms / msg", "right")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for name in PATHS:
        d = sat[name]
        t.add_row(name, fmt(d["sent"]), fmt(d["settled"]), fmt(d["lost"]), fmt(d["duplicated"]),
                  fmt(d["throughput_per_s"], 0), fmt_latency(d), fmt(d.get("cpu_ms_per_msg"), 3))
    for a, b in RATIOS:
        t.add_row(f"{a} / {b}", "", "", "", "", fmt(sat[f"ratio_{a}_over_{b}"], 3), "",
                  fmt(sat.get(f"ratio_cpu_per_msg_{a}_over_{b}"), 2))
    console.print(t)
    for name in PATHS:
        by_process = sat[name].get("cpu_ms_per_msg_by_process") or {}
        if by_process:
            console.print(f"  {name} CPU ms / msg by process: "
                          + ", ".join(f"{label} {ms:.3f}" for label, ms in by_process.items()))

    t = Table(title="Latency at fixed offered rates (achieved = outcomes/s, first..last; ms = p50 / p99 / p99.9)")
    for col in ("offered /s", "relay achieved", "relay ms", "graph achieved", "graph ms", "system achieved",
                "system ms", "system / graph p50 / p99 / p99.9", "CPU ms/msg relay / graph / system", "system"):
        t.add_column(col, justify="right")
    for row in results["rates"]:
        r, g, s, q = row["relay"], row["graph"], row["system"], row["ratio_system_over_graph"]
        note = "sustained" if s["sustained"] else f"NOT sustained ({s['lost']} unsettled)" if s["lost"] \
            else "NOT sustained"
        relay_ach = fmt(r["achieved_per_s"], 0) + ("" if r["sustained"] else " (not sustained)")
        graph_ach = fmt(g["achieved_per_s"], 0) + ("" if g["sustained"] else " (not sustained)")
        t.add_row(fmt(row["offered_per_s"], 0),
                  relay_ach, fmt_latency(r), graph_ach, fmt_latency(g), fmt(s["achieved_per_s"], 0), fmt_latency(s),
                  " / ".join(fmt(q[k], 2) for k in ("p50", "p99", "p999")),
                  " / ".join(fmt(d.get("cpu_ms_per_msg"), 3) for d in (r, g, s)),
                  f"[green]{note}[/green]" if s["sustained"] else f"[red]{note}[/red]")
    console.print(t)

    b = results["backlog"]
    t = Table(title="Backlog drain (risk replicas stopped, orders stored, replicas started)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    for label, value in (
        ("orders stored while stopped", fmt(b["stored_while_stopped"])),
        ("settled / lost / duplicated", f"{b['settled']:,} / {b['lost']:,} / {b['duplicated']:,}"),
        ("start_children('risk-') took", fmt(b["start_children_s"], 2, " s")),
        ("first outcome after start", fmt(b["first_settled_after_start_s"], 2, " s")),
        ("drain time (start .. last outcome)", fmt(b["drain_s"], 2, " s")),
        ("drain rate incl. restart", fmt(b["drain_rate_per_s"], 0, " /s")),
        ("drain rate once consuming", fmt(b["drain_rate_consuming_per_s"], 0, " /s")),
        ("steady saturation rate", fmt(b["steady_saturation_per_s"], 0, " /s")),
        ("drain / saturation (incl. restart)", fmt(b["ratio_drain_over_saturation"], 3)),
        ("drain / saturation (once consuming)", fmt(b["ratio_consuming_drain_over_saturation"], 3)),
        ("steady rate under overload (best achieved, not sustained)", fmt(b.get("steady_overload_per_s"), 0, " /s")),
        ("drain / steady rate under overload", fmt(b.get("ratio_consuming_drain_over_overload"), 3)),
    ):
        t.add_row(label, value)
    console.print(t)


def _read_first_line(path: str) -> str | None:
    try:
        return Path(path).read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        return None


def machine() -> dict[str, Any]:
    def version(pkg: str) -> str | None:
        try:
            return importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            return None

    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    server = None
    with contextlib.suppress(Exception):
        server = subprocess.run([nats_server_binary(), "--version"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
    return {
        "nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)), "cpu_model": cpu,
        "sched_autogroup": _read_first_line("/proc/sys/kernel/sched_autogroup_enabled"),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "platform": platform.platform(), "python": platform.python_version(), "ray": ray.__version__,
        "nats_py": version("nats-py"), "nats_server": server, "pydantic": version("pydantic"),
    }


# ---- processes ------------------------------------------------------------------------------------

def _bootstrap(url: str, topology: Callable[[JetStreamContext], Awaitable[None]]) -> None:
    """Create a baseline's streams and consumers on its nats-server."""
    async def _run() -> None:
        nc = await nats.connect(url, name="bench-bootstrap")
        try:
            await topology(nc.jetstream())
        finally:
            await nc.close()

    event_loop.run(_run())


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> list[str]:
    """SIGTERM every worker process, then wait for each (killing one that does not stop in 5 s);
    returns what went wrong."""
    problems: list[str] = []
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            problems.append(f"worker {proc.pid} did not stop on SIGTERM: killed")
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
    return problems


class Stack:
    """Everything this benchmark starts; `close()` stops all of it and tolerates partial starts."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.logs = base / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.nats_system: NatsServer | None = None
        self.nats_relay: NatsServer | None = None
        self.nats_graph: NatsServer | None = None
        self.head: RayHead | None = None
        self.cfg: SystemConfig | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.graph_workers: list[subprocess.Popen[bytes]] = []
        self.ray_temp: Path | None = None

    def start_nats(self) -> tuple[str, str, str]:
        self.nats_system = NatsServer(self.base / "nats-system", log_file=self.logs / "nats-system.log")
        self.nats_system.start()
        self.nats_relay = NatsServer(self.base / "nats-relay", log_file=self.logs / "nats-relay.log")
        self.nats_relay.start()
        self.nats_graph = NatsServer(self.base / "nats-graph", log_file=self.logs / "nats-graph.log")
        self.nats_graph.start()
        return self.nats_system.url, self.nats_relay.url, self.nats_graph.url

    def start_ray(self, namespace: str) -> None:
        self.head = RayHead(self.logs / "ray-head.log", num_cpus=4)
        with contextlib.suppress(OSError):
            os.rmdir(self.head.temp_dir)  # keep Ray's session logs under our temp dir instead
        self.ray_temp = self.base / "ray"
        self.ray_temp.mkdir()
        self.head.temp_dir = str(self.ray_temp)
        self.head.start()
        init_ray(self.head.address, namespace=namespace)

    def deploy(self, cfg: SystemConfig) -> dict[str, Any]:
        self.cfg = cfg
        return deploy(cfg)

    def start_relay(self, url: str, batch: int, timeout: float = 30.0) -> None:
        _bootstrap(url, lambda js: ensure_relay_topology(js, HOPS))
        for index in range(1, HOPS + 1):
            self._spawn(self.workers, f"relay-{index}", ["bench.relay", "--url", url, "--index", str(index),
                                                          "--hops", str(HOPS), "--batch", str(batch)])
        self._await_ready(self.workers, [f"relay-{i}" for i in range(1, HOPS + 1)], timeout)

    def start_graph(self, url: str, batch: int, timeout: float = 30.0, shape: Shape = FULL) -> None:
        _bootstrap(url, ensure_graph_topology)
        for role in ROLES:
            self._spawn(self.graph_workers, f"graph-{role}", ["bench.graph", "--url", url, "--role", role,
                                                              "--batch", str(batch), "--shape", shape.name])
        self._await_ready(self.graph_workers, [f"graph-{role}" for role in ROLES], timeout)

    def _spawn(self, into: list[subprocess.Popen[bytes]], name: str, module_args: list[str]) -> None:
        """A worker process in its own session, as each process of the system's tree is
        (supervision.own_session), so autogroup scheduling weighs them alike. Its ready flag is written
        once it consumes (a flag left by an earlier worker of the same name is removed first)."""
        ready = self.base / f"{name}.ready"
        ready.unlink(missing_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            into.append(subprocess.Popen(
                [sys.executable, "-m", *module_args, "--ready", str(ready),
                 "--parent-pid", str(os.getpid())],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True))

    def _await_ready(self, procs: list[subprocess.Popen[bytes]], names: list[str], timeout: float) -> None:
        flags = [self.base / f"{name}.ready" for name in names]
        deadline = time.monotonic() + timeout
        while not all(f.exists() for f in flags):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError(f"worker processes {', '.join(names)} did not start; see {self.logs}")
            time.sleep(0.05)

    def cpu_meters(self) -> dict[str, CpuMeter]:
        """CPU of each path's processes: this process (its driver) and its nats-server; the relay's
        and the graph model's worker processes; the system's supervised children and their supervisor
        (spares and standbys, idle, are left out)."""
        me = os.getpid()
        relay_nats = self.nats_relay.pid if self.nats_relay else None
        graph_nats = self.nats_graph.pid if self.nats_graph else None
        system_nats = self.nats_system.pid if self.nats_system else None

        def relay() -> dict[int, str]:
            labelled = {me: "driver", relay_nats: "nats-server",
                        **{w.pid: f"worker-{i}" for i, w in enumerate(self.workers, 1)}}
            return {pid: label for pid, label in labelled.items() if pid}

        def graph() -> dict[int, str]:
            labelled = {me: "driver", graph_nats: "nats-server",
                        **{w.pid: role for role, w in zip(ROLES, self.graph_workers, strict=False)}}
            return {pid: label for pid, label in labelled.items() if pid}

        def system() -> dict[int, str]:
            assert self.cfg is not None
            supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=self.cfg.name)
            children = ray.get(supervisor.status.remote(), timeout=10).get("children", [])
            labelled = {me: "driver", system_nats: "nats-server",
                        ray.get(supervisor.pid.remote(), timeout=10): "supervisor",
                        **{c["pid"]: c.get("id", str(c["pid"])) for c in children
                           if c.get("pid") and c.get("state") == "running"}}
            return {pid: label for pid, label in labelled.items() if pid}

        return {"relay": CpuMeter(relay), "graph": CpuMeter(graph), "system": CpuMeter(system)}

    def close(self) -> list[str]:
        problems: list[str] = []

        def step(what: str, fn: Callable[[], Any]) -> None:
            try:
                fn()
            except Exception as exc:
                problems.append(f"{what}: {exc!r}")

        problems += stop_workers(self.workers + self.graph_workers)
        self.workers.clear()
        self.graph_workers.clear()
        if self.cfg is not None and ray.is_initialized():
            step("teardown", lambda: teardown(self.cfg, timeout=30))  # type: ignore[arg-type]
        step("ray.shutdown", ray.shutdown)
        if self.head is not None:
            step("ray head", self.head.stop)
        for server in (self.nats_graph, self.nats_relay, self.nats_system):
            if server is not None:
                step("nats-server", server.stop)
        return problems



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/throughput.py", description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, help="messages per saturation run (default 5000; quick 1000)")
    parser.add_argument("--rates", default="250,500,1000,2000", help="offered rates per second, comma-separated")
    parser.add_argument("--duration", type=float, help="seconds per offered rate (default 10; quick 3)")
    parser.add_argument("--backlog", type=int, help="orders in the backlog-drain step (default 5000; quick 1000)")
    parser.add_argument("--out", default="bench/results/throughput.json", help="JSON output file")
    parser.add_argument("--config", default=str(ROOT / "examples" / "local.yaml"), help="the system's config")
    parser.add_argument("--payload-bytes", type=int, default=500, help="relay message size (an order envelope's)")
    parser.add_argument("--quick", action="store_true", help="3 s per rate, 1000 orders, 1000 backlog")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp dir with Ray's and NATS's logs")
    args = parser.parse_args(argv)
    args.rates = [float(r) if "." in r else int(r) for r in args.rates.split(",") if r.strip()]
    if args.orders is None:
        args.orders = 1000 if args.quick else 5000
    if args.duration is None:
        args.duration = 3.0 if args.quick else 10.0
    if args.backlog is None:
        args.backlog = 1000 if args.quick else 5000
    if args.orders < 1 or args.backlog < 1 or args.duration <= 0 or any(r <= 0 for r in args.rates):
        parser.error("--orders, --backlog, --duration and every rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tune()  # as `trade load` does: the client keeps every order's events (see actors.runtime.gc_tuning)
    base = Path(tempfile.mkdtemp(prefix="bench-throughput-"))
    stack = Stack(base)
    cfg = bench_config(args.config, "bench")
    sample = order_mix(1, seed=0)[0]
    order_bytes = len(encode(wrap(OrderReceived(**sample.model_dump()), event_id=order_received_id(sample.order_id))))
    results: dict[str, Any] = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.orig_argv),
        "cwd": os.getcwd(),
        "machine": machine(),
        "parameters": {"orders": args.orders, "rates": args.rates, "duration_s": args.duration,
                       "backlog": args.backlog, "quick": args.quick, "warmup": WARMUP,
                       "payload_bytes": args.payload_bytes, "order_received_envelope_bytes": order_bytes},
        "setup": {
            "nats": "three nats-servers on loopback: system, relay, graph (separate stores)",
            "ray": "one Ray head (num_cpus=4) shared; the relay and the graph model do not use Ray",
            "system": {"config": args.config, "name": cfg.name, "partitions": cfg.partitions,
                       "venue_mode": "fill_all", "risk_replicas": cfg.stages.risk.replicas,
                       "allocator_replicas": cfg.stages.allocator.replicas, "batch": cfg.stages.risk.delivery.batch},
            "relay": (f"{HOPS} worker processes, each a durable pull consumer on its own stream relay.in.<n> "
                      "(continuous pull: actors.runtime.pull.PullConsumer, batch 128), publish_async to the next "
                      "stream "
                      "with Nats-Msg-Id, awaited acks, then ack; driver publishes with awaited acks (256 in flight), "
                      "ordered push consumer on relay.out; each worker in its own session, as each process of "
                      "the system's tree is (supervision.own_session), so autogroup scheduling weighs them alike"),
            "graph": ("bench/graph.py: the system's message graph per order with fill_all (7 stored messages, 11 "
                      "JetStream deliveries, a core request/reply), one process per role (risk, gateway, venue, "
                      "allocator, positions), one durable per stage, the relay's worker loop and stream settings; "
                      "no decoding, dedupe, applied log, domain logic, partitions, replicas, Ray or supervision"),
            "path": "system: driver -> risk -> gateway (+ venue request/reply) -> allocator -> driver; rejected "
                    "orders (~10%) settle after risk; latency is placed..settled per order (all settled orders; "
                    "filled-only figures in JSON)",
            "background": "both paths measured with everything deployed and the other path idle",
            "sustained": (f"no loss, send rate and output rate (first..last outcome) >= {SUSTAINED_FRACTION:.0%} "
                          "of offered"),
        },
    }
    console.print(f"logs: {stack.logs} (Ray's session logs under {base / 'ray'})")

    def body() -> None:
        nonlocal cfg
        with console.status("starting three nats-servers and a Ray head ..."):
            system_url, relay_url, graph_url = stack.start_nats()
            stack.start_ray(cfg.name)
            signal.signal(signal.SIGTERM, raise_interrupt)  # ray.init may install its own
        cfg = cfg.with_nats_url(system_url)
        with console.status("deploying the system and starting the relay's and the graph model's workers ..."):
            tree = stack.deploy(cfg)
            stack.start_relay(relay_url, batch=cfg.stages.risk.delivery.batch)
            stack.start_graph(graph_url, batch=cfg.stages.risk.delivery.batch)
        results["setup"]["children"] = [c["id"] for c in tree.get("children", [])]
        started = time.monotonic()
        event_loop.run(measure(cfg, relay_url, graph_url, args, results, stack.cpu_meters()))
        results["measure_s"] = round(time.monotonic() - started, 1)
        render(results)
        write_results(console, results, args.out)

    return run_guarded(console, stack, base, args.keep_logs, body,
                       'stopping the relay and graph workers, the system, Ray and the nats-servers ...')


if __name__ == "__main__":
    sys.exit(main())
