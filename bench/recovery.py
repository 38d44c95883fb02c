"""Recovery: how fast the supervisor notices a killed or hung stage actor and has a replacement consuming,
beside Ray's own restart path, in one run.

    .venv/bin/python bench/recovery.py [--trials 20] [--verify 5] [--out bench/results/recovery.json]

Starts one nats-server and one Ray head, deploys the whole system (examples/local.yaml, venue mode
fill_all), then, trials strictly one after another, rotating over the risk-*, allocator-* and gateway-*
children:

1. kill: SIGKILL the child's process at wall time t0; poll the supervisor's status until that child's
   `restarts` increments. detect = last_failure_at - t0; ready = last_restart_at - t0 (the replacement's
   consumer loops are running). For the first --verify kill (and hung) trials one order whose partition the
   replaced child owns is placed through TradingClient right after the restart, and its settle time noted.
2. hung: freeze the child's event loop for 30 s at t0 (supervisor.call_child(id, "freeze", 30)); detect =
   last_failure_at - t0 with the default heartbeat (the reason must start with "hung"), and ready as above.
3. Ray baselines on the same head: (a) Ray's own restart: a trivial async actor with max_restarts=1,
   num_cpus=0.05, SIGKILLed, until a method call answers again (calls polled with short timeouts);
   (b) how fast an outstanding long-running call reveals the death (SIGKILL -> the call raises);
   (c) a fresh actor: creation -> first answer.

Every child has its own restart backoff, which doubles while the child has been up less than
`supervision.backoff.reset_after` (30 s by default). So that each trial measures the first-failure
path and not a backoff that grew because the benchmark killed the same child again seconds later, a child
is only failed once it has been up for reset_after (the rotation keeps the wait short); the backoff each
restart applied is read from its ChildRestarted event and reported.

Percentiles are nearest-rank: with 20 samples p99 is the maximum. Everything started here is stopped on
exit, also on failure or Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import ray  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from actors.runtime import event_loop  # noqa: E402
from bench.common import bench_config, raise_interrupt, run_guarded, write_results  # noqa: E402
from bench.throughput import Stack, machine  # noqa: E402
from cluster.client.load import percentile  # noqa: E402
from cluster.client.trading import TradingClient  # noqa: E402
from cluster.config import SystemConfig  # noqa: E402
from cluster.local.nats_server import NatsServer  # noqa: E402
from cluster.local.procs import pid_alive, pid_cmdline  # noqa: E402
from messages import ChildRestarted, DecodeError, decode, subjects  # noqa: E402
from supervision.supervisor import SUPERVISOR_NAME  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 150)

STAGE_PREFIXES = ("risk-", "allocator-", "gateway-")
FREEZE_S = 30.0
POLL_S = 0.02
KILL_TIMEOUT_S = 30.0
HUNG_TIMEOUT_S = 40.0
SETTLE_TIMEOUT_S = 30.0
RESET_MARGIN_S = 0.25

#: Set from the config in main(): every stage has a warm standby, so a kill is a takeover trial.
STANDBY_CONFIGURED = False
TARGETS = {
    "detect_kill_p99_s": 0.2,
    "detect_hung_s": 2.0,
    "kill_to_consuming_p99_s": 1.0,
    "warm_standby_s": 0.3,
}


# ---- figures --------------------------------------------------------------------------------------

def stats(values: list[float]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"n": 0, "min": None, "p50": None, "p99": None, "max": None, "mean": None}
    return {"n": len(vals), "min": round(min(vals), 4), "p50": round(percentile(vals, 50), 4),  # type: ignore[arg-type]
            "p99": round(percentile(vals, 99), 4), "max": round(max(vals), 4),  # type: ignore[arg-type]
            "mean": round(sum(vals) / len(vals), 4)}


def _bar(label: str, total: int) -> Progress:
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=console, transient=True)
    progress.add_task(label, total=total)
    return progress


# ---- the system under test ------------------------------------------------------------------------

class Tree:
    """The supervisor, as the benchmark drives it."""

    def __init__(self, cfg: SystemConfig) -> None:
        self.cfg = cfg
        self.sup = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        self.restart_events: dict[tuple[str, int], dict[str, Any]] = {}
        self.last_start: dict[str, float] = {}

    async def status(self) -> dict[str, dict[str, Any]]:
        st = await self.sup.status.remote()
        return {c["id"]: c for c in st["children"]}

    async def gave_up(self) -> str | None:
        return (await self.sup.status.remote()).get("gave_up")

    async def all_running(self, timeout: float = 60.0) -> dict[str, dict[str, Any]]:
        """Every child running, and every configured warm standby started (a fair takeover trial)."""
        deadline = time.monotonic() + timeout
        want = {stage: getattr(self.cfg.stages, stage).standby for stage in ("risk", "gateway", "allocator")}
        while True:
            st = await self.sup.status.remote()
            children = {c["id"]: c for c in st["children"]}
            spares_ready = (all(len(st.get("standby", {}).get(stage, [])) >= n for stage, n in want.items())
                            and len(st.get("spares", [])) >= self.cfg.supervision.spares)
            if all(c["state"] == "running" for c in children.values()) and spares_ready:
                return children
            if time.monotonic() > deadline:
                raise RuntimeError(f"supervision tree not all running after {timeout:.0f}s: "
                                   f"{ {k: v['state'] for k, v in children.items()} }; gave_up={await self.gave_up()}")
            await asyncio.sleep(0.05)

    async def wait_restart(self, child_id: str, restarts_before: int, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            child = (await self.status())[child_id]
            if child["restarts"] > restarts_before:
                return child
            if child["state"] == "gave_up":
                raise RuntimeError(f"supervisor gave up on {child_id}: {await self.gave_up()}")
            await asyncio.sleep(POLL_S)
        return None

    async def wait_reset(self, child_id: str) -> float:
        """Sleep until `child_id` has been up for backoff.reset_after (its next restart uses the min backoff)."""
        reset_after = self.cfg.supervision.backoff.reset_after
        wait = self.last_start[child_id] + reset_after + RESET_MARGIN_S - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        return max(0.0, wait)

    async def watch_events(self, nc: Any) -> Any:
        async def on_msg(msg: Any) -> None:
            with contextlib.suppress(DecodeError, Exception):
                _, event = decode(msg.data)
                if isinstance(event, ChildRestarted):
                    self.restart_events[(event.child, event.restarts)] = {
                        "backoff_s": float(event.backoff_s), "detail": event.detail, "pid": event.pid}

        return await nc.subscribe(subjects.supervision("root") + ".>", cb=on_msg)


def account_for(cfg: SystemConfig, child_id: str) -> str:
    """An account whose partition the child owns (any account for a gateway)."""
    stage, _, index = child_id.partition("-")
    if stage not in ("risk", "allocator"):
        return "ACC2"
    replicas = getattr(cfg.stages, stage).replicas
    candidates = [f"ACC{i}" for i in range(2, 8)] + [f"BENCH{i}" for i in range(1000)]
    for acct in candidates:
        if subjects.partition_of(acct, cfg.partitions) % replicas == int(index):
            return acct
    raise RuntimeError(f"no account maps to a partition of {child_id}")


async def place_and_settle(client: TradingClient, account: str) -> dict[str, Any]:
    t_wall = time.time()
    oid = await client.place_order(account, "AAPL", "BUY", 100, "187.25", order_id=f"R{uuid.uuid4().hex[:12]}")
    outcome = await client.wait(oid, timeout=SETTLE_TIMEOUT_S)
    settle_ms = (client.settled_at[oid] - client.placed_at[oid]) / 1e6
    return {"order_id": oid, "account": account, "placed_at": t_wall, "settled_at": t_wall + settle_ms / 1e3,
            "status": str(outcome.status), "settle_ms": round(settle_ms, 2)}


async def fail_trial(tree: Tree, client: TradingClient, kind: str, child_id: str, verify: bool) -> dict[str, Any]:
    waited = await tree.wait_reset(child_id)
    before = await tree.all_running()
    child = before[child_id]
    pid = child["pid"]
    trial: dict[str, Any] = {"kind": kind, "child": child_id, "old_pid": pid, "restarts_before": child["restarts"],
                             "waited_for_backoff_reset_s": round(waited, 2)}
    freeze_ref = None
    if kind == "kill":
        cmd = pid_cmdline(pid)
        if not pid_alive(pid) or "ray" not in cmd.lower():
            raise RuntimeError(f"{child_id}: pid {pid} is not a live Ray worker ({cmd[:80]!r})")
        t0 = time.time()
        os.kill(pid, signal.SIGKILL)
        timeout = KILL_TIMEOUT_S
    else:
        t0 = time.time()
        freeze_ref = tree.sup.call_child.remote(child_id, "freeze", FREEZE_S)
        timeout = HUNG_TIMEOUT_S
    trial["t0"] = t0
    after = await tree.wait_restart(child_id, child["restarts"], timeout)
    if after is None:
        trial["error"] = f"no restart within {timeout:.0f}s"
        trial["status_after"] = (await tree.status())[child_id]
        return trial
    trial.update({
        "new_pid": after["pid"], "restarts": after["restarts"], "reason": after["last_failure"],
        "last_failure_at": after["last_failure_at"], "last_restart_at": after["last_restart_at"],
        "detect_s": round(after["last_failure_at"] - t0, 4),
        "ready_s": round(after["last_restart_at"] - t0, 4),
        "restart_s": round(after["last_restart_at"] - after["last_failure_at"], 4),
    })
    tree.last_start[child_id] = after["last_restart_at"]
    if verify:
        try:
            order = await place_and_settle(client, account_for(tree.cfg, child_id))
            order["kill_to_settled_s"] = round(order["settled_at"] - t0, 4)
            order["restart_to_settled_s"] = round(order["settled_at"] - after["last_restart_at"], 4)
            trial["order"] = order
        except Exception as exc:
            trial["order"] = {"error": f"{type(exc).__name__}: {exc}"}
    if freeze_ref is not None:
        try:
            await asyncio.wait_for(freeze_ref, 10.0)
            trial["freeze_call"] = "returned (the child was not killed?)"
        except Exception as exc:
            trial["freeze_call"] = type(exc).__name__
    ev = tree.restart_events.get((child_id, after["restarts"]))
    if ev is None:  # the event is published asynchronously; give it a moment
        await asyncio.sleep(0.2)
        ev = tree.restart_events.get((child_id, after["restarts"]))
    trial["backoff_s"] = round(ev["backoff_s"], 4) if ev else None
    if kind == "hung":
        trial["reason_is_hung"] = bool(after["last_failure"]) and after["last_failure"].startswith("hung")
    return trial


async def measure_system(cfg: SystemConfig, args: argparse.Namespace, results: dict[str, Any]) -> None:
    tree = Tree(cfg)
    children = await tree.all_running()
    for cid, c in children.items():
        tree.last_start[cid] = c["last_restart_at"] or results["_deployed_at"]
    order = sorted((c for c in children if c.startswith(STAGE_PREFIXES)),
                   key=lambda c: (int(c.rsplit("-", 1)[1]) if c.rsplit("-", 1)[1].isdigit() else 0,
                                  STAGE_PREFIXES.index(next(p for p in STAGE_PREFIXES if c.startswith(p)))))
    results["rotation"] = order
    async with TradingClient.from_config(cfg) as client:
        sub = await tree.watch_events(client.nc)
        try:
            console.rule("steady state: orders through the healthy system")
            for _ in range(3):  # warm-up
                await place_and_settle(client, "ACC2")
            steady = [await place_and_settle(client, account_for(cfg, cid)) for cid in order]
            results["steady_order_settle_ms"] = stats([o["settle_ms"] for o in steady])
            console.log(f"steady order settle p50 {results['steady_order_settle_ms']['p50']} ms")

            k = 0
            for kind in ("kill", "hung"):
                console.rule(f"{kind}: {args.trials} trials over {', '.join(order)}")
                trials = []
                with _bar(f"{kind} trials", args.trials) as bar:
                    for i in range(args.trials):
                        cid = order[k % len(order)]
                        k += 1
                        trial = await fail_trial(tree, client, kind, cid, verify=i < args.verify)
                        trials.append(trial)
                        bar.advance(bar.task_ids[0])
                        o = trial.get("order", {})
                        console.log(
                            f"{kind} {cid}: detect {trial.get('detect_s')} s, ready {trial.get('ready_s')} s, "
                            f"backoff {trial.get('backoff_s')} s"
                            + (f", order settled {o.get('kill_to_settled_s')} s after t0" if o else "")
                            + (f" [red]{trial['error']}[/red]" if "error" in trial else ""))
                results[f"{kind}_trials"] = trials
            await tree.all_running()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


# ---- Ray baselines --------------------------------------------------------------------------------

@ray.remote
class Probe:
    """A trivial async actor."""

    async def pid(self) -> int:
        return os.getpid()

    async def block(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def ray_restart_trial() -> dict[str, Any]:
    actor = Probe.options(max_restarts=1, num_cpus=0.05).remote()
    try:
        old = await actor.pid.remote()
        t0 = time.monotonic()
        os.kill(old, signal.SIGKILL)
        pending: set[asyncio.Future[Any]] = set()
        errors: dict[str, int] = {}
        while time.monotonic() - t0 < 60:
            pending.add(asyncio.wrap_future(actor.pid.remote().future()))
            done, pending = await asyncio.wait(pending, timeout=0.05, return_when=asyncio.FIRST_COMPLETED)
            answered = time.monotonic()
            for fut in done:
                exc = fut.exception()
                if exc is not None:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                elif fut.result() != old:
                    for p in pending:
                        p.cancel()
                    return {"restart_s": round(answered - t0, 4), "old_pid": old, "new_pid": fut.result(),
                            "failed_calls": errors}
            if done and not pending:
                await asyncio.sleep(0.01)
        return {"error": "no answer within 60s", "failed_calls": errors}
    finally:
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)


async def ray_reveal_trial() -> dict[str, Any]:
    actor = Probe.options(max_restarts=0, num_cpus=0.05).remote()
    try:
        long_call = asyncio.wrap_future(actor.block.remote(3600).future())
        pid = await actor.pid.remote()  # same caller, submitted after: block() is running by now
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        try:
            await asyncio.wait_for(long_call, 60)
            return {"error": "the long call returned"}
        except TimeoutError:
            return {"error": "the long call did not raise within 60s"}
        except Exception as exc:
            return {"reveal_s": round(time.monotonic() - t0, 4), "error_type": type(exc).__name__}
    finally:
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)


async def ray_fresh_trial() -> dict[str, Any]:
    t0 = time.monotonic()
    actor = Probe.options(max_restarts=0, num_cpus=0.05).remote()
    try:
        await asyncio.wait_for(actor.pid.remote(), 60)
        return {"fresh_s": round(time.monotonic() - t0, 4)}
    finally:
        with contextlib.suppress(Exception):
            ray.kill(actor, no_restart=True)


async def measure_ray(args: argparse.Namespace, results: dict[str, Any]) -> None:
    console.rule(f"Ray baselines: {args.trials} trials each")
    for name, fn in (("ray_restart", ray_restart_trial), ("ray_reveal", ray_reveal_trial),
                     ("ray_fresh", ray_fresh_trial)):
        trials = []
        with _bar(name, args.trials) as bar:
            for _ in range(args.trials):
                trials.append(await fn())
                bar.advance(bar.task_ids[0])
                await asyncio.sleep(0.2)
        results[f"{name}_trials"] = trials


# ---- summary and output ---------------------------------------------------------------------------

def summarize(results: dict[str, Any]) -> dict[str, Any]:
    kill = [t for t in results["kill_trials"] if "error" not in t]
    hung = [t for t in results["hung_trials"] if "error" not in t]
    orders = [t["order"] for t in results["kill_trials"] + results["hung_trials"]
              if "order" in t and "error" not in t["order"]]
    kill_orders = [t["order"] for t in kill if "order" in t and "error" not in t["order"]]
    s: dict[str, Any] = {
        "detect_kill_s": stats([t["detect_s"] for t in kill]),
        "kill_to_ready_s": stats([t["ready_s"] for t in kill]),
        "kill_detect_to_ready_s": stats([t["restart_s"] for t in kill]),
        "kill_backoff_s": stats([t["backoff_s"] for t in kill if t.get("backoff_s") is not None]),
        "kill_to_order_settled_s": stats([o["kill_to_settled_s"] for o in kill_orders]),
        "order_after_restart_settle_ms": stats([o["settle_ms"] for o in orders]),
        "detect_hung_s": stats([t["detect_s"] for t in hung]),
        "hung_to_ready_s": stats([t["ready_s"] for t in hung]),
        "hung_backoff_s": stats([t["backoff_s"] for t in hung if t.get("backoff_s") is not None]),
        "ray_restart_s": stats([t["restart_s"] for t in results["ray_restart_trials"] if "restart_s" in t]),
        "ray_reveal_s": stats([t["reveal_s"] for t in results["ray_reveal_trials"] if "reveal_s" in t]),
        "ray_fresh_s": stats([t["fresh_s"] for t in results["ray_fresh_trials"] if "fresh_s" in t]),
    }
    by_stage: dict[str, Any] = {}
    for kind, trials in (("kill", kill), ("hung", hung)):
        for prefix in STAGE_PREFIXES:
            sel = [t for t in trials if t["child"].startswith(prefix)]
            by_stage[f"{kind}:{prefix.rstrip('-')}"] = {"detect_s": stats([t["detect_s"] for t in sel]),
                                                       "ready_s": stats([t["ready_s"] for t in sel])}
    s["by_stage"] = by_stage
    failures = {
        "kill_trials_failed": [t for t in results["kill_trials"] if "error" in t],
        "hung_trials_failed": [t for t in results["hung_trials"] if "error" in t],
        "hung_reason_not_hung": [t["child"] for t in hung if not t.get("reason_is_hung")],
        "orders_not_settled": [t["order"] for t in results["kill_trials"] + results["hung_trials"]
                               if "order" in t and ("error" in t["order"] or t["order"].get("status") != "filled")],
        "ray_trials_failed": [t for n in ("ray_restart", "ray_reveal", "ray_fresh")
                              for t in results[f"{n}_trials"] if "error" in t],
    }
    s["problems"] = {k: v for k, v in failures.items() if v}

    def below(value: float | None, limit: float | None) -> bool | None:
        return None if value is None or limit is None else value < limit

    ray_p99 = s["ray_restart_s"]["p99"]
    ready_p99 = s["kill_to_ready_s"]["p99"]
    s["verdicts"] = {
        "detect_kill_p99_below_0.2s": below(s["detect_kill_s"]["p99"], TARGETS["detect_kill_p99_s"]),
        "detect_hung_max_below_2s": below(s["detect_hung_s"]["max"], TARGETS["detect_hung_s"]),
        "detect_hung_p50_below_2s": below(s["detect_hung_s"]["p50"], TARGETS["detect_hung_s"]),
        "kill_to_consuming_p99_below_1s": below(ready_p99, TARGETS["kill_to_consuming_p99_s"]),
        "kill_to_consuming_p99_below_ray_restart_p99": below(ready_p99, ray_p99),
        "kill_to_consuming_p50_below_ray_restart_p50": below(s["kill_to_ready_s"]["p50"], s["ray_restart_s"]["p50"]),
        "warm_standby_below_0.3s": (below(s["kill_to_ready_s"]["p99"], TARGETS["warm_standby_s"])
                                    if STANDBY_CONFIGURED else "not measured: standby is 0 in the config"),
    }
    return s


def _s(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _ok(v: bool | str | None) -> str:
    if v is True:
        return "[green]met[/green]"
    if v is False:
        return "[red]missed[/red]"
    return "-"


def render(results: dict[str, Any]) -> None:
    s = results["summary"]
    v = s["verdicts"]
    t = Table(title=f"Recovery (seconds; nearest-rank percentiles, {results['parameters']['trials']} trials each; "
                    "t0 = SIGKILL / freeze issued)")
    for col, just in (("measure", "left"), ("n", "right"), ("min", "right"), ("p50", "right"), ("p99", "right"),
                      ("max", "right"), ("target", "left"), ("", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]

    def row(label: str, key: str, target: str = "", verdict: Any = None, style: str | None = None) -> None:
        d = s[key]
        t.add_row(label, str(d["n"]), _s(d["min"]), _s(d["p50"]), _s(d["p99"]), _s(d["max"]), target,
                  _ok(verdict), style=style)

    row("detect killed process (last_failure_at - t0)", "detect_kill_s", "p99 < 0.2",
        v["detect_kill_p99_below_0.2s"])
    row("kill -> replacement consuming (last_restart_at - t0)", "kill_to_ready_s",
        "p99 < 1 and < Ray restart", v["kill_to_consuming_p99_below_1s"] and v[
            "kill_to_consuming_p99_below_ray_restart_p99"])
    row("  of which detection -> consuming", "kill_detect_to_ready_s", style="dim")
    row("  of which restart backoff (ChildRestarted.backoff_s)", "kill_backoff_s", style="dim")
    row("kill -> verification order settled (e2e)", "kill_to_order_settled_s")
    t.add_row("order placed after restart: settle (ms)", str(s["order_after_restart_settle_ms"]["n"]),
              *(_f_ms(s["order_after_restart_settle_ms"][q]) for q in ("min", "p50", "p99", "max")),
              f"steady p50 {_f_ms(results['steady_order_settle_ms']['p50'])} ms", "", style="dim")
    row("detect hung actor (freeze; last_failure_at - t0)", "detect_hung_s", "< 2 (every trial)",
        v["detect_hung_max_below_2s"])
    row("hung -> replacement consuming", "hung_to_ready_s")
    t.add_section()
    row("Ray restart (max_restarts=1): SIGKILL -> answers again", "ray_restart_s")
    row("Ray: SIGKILL -> outstanding call raises", "ray_reveal_s")
    row("Ray: fresh actor created -> answers", "ray_fresh_s")
    t.add_section()
    if STANDBY_CONFIGURED:
        row("warm standby takeover (kill -> spare consuming)", "kill_to_ready_s", "p99 < 0.3",
            v["warm_standby_below_0.3s"])
    else:
        t.add_row("warm standby takeover", "-", "-", "-", "-", "-", "< 0.3", "not measured (standby: 0 in the config)")
    console.print(t)

    t = Table(title="By stage (seconds, p50 / max)")
    for col in ("kind:stage", "n", "detect p50 / max", "ready p50 / max"):
        t.add_column(col, justify="right" if col != "kind:stage" else "left")
    for key, d in s["by_stage"].items():
        if d["detect_s"]["n"]:
            t.add_row(key, str(d["detect_s"]["n"]), f"{_s(d['detect_s']['p50'])} / {_s(d['detect_s']['max'])}",
                      f"{_s(d['ready_s']['p50'])} / {_s(d['ready_s']['max'])}")
    console.print(t)
    rp, kp = s["ray_restart_s"]["p99"], s["kill_to_ready_s"]["p99"]
    if rp is not None and kp is not None:
        word = "beats" if kp < rp else "does NOT beat"
        console.print(f"kill -> consuming p99 {kp:.3f} s {word} Ray's own restart p99 {rp:.3f} s "
                      f"(p50 {s['kill_to_ready_s']['p50']:.3f} s vs {s['ray_restart_s']['p50']:.3f} s)")
    for name, items in s["problems"].items():
        console.print(f"[red]{name}[/red]: {json.dumps(items, default=str)[:1500]}")


def _f_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


# ---- processes ------------------------------------------------------------------------------------

class RecoveryStack(Stack):
    """bench.throughput's Stack with one nats-server (no relay)."""

    def start_nats(self) -> str:  # type: ignore[override]
        self.nats_system = NatsServer(self.base / "nats", log_file=self.logs / "nats.log")
        self.nats_system.start()
        return self.nats_system.url

    def start_ray(self, namespace: str) -> None:
        # The raylet's notice for every worker this benchmark kills ("A worker died or was killed ...") is
        # pushed to the driver, which prints it on stdout: write it to a log file instead.
        import ray._private.worker as ray_worker

        log_path = self.logs / "ray-driver-notices.log"

        def to_log(data: dict[str, Any], ignore_prefix: bool = False) -> None:
            with contextlib.suppress(Exception), open(log_path, "a") as log:
                for line in data.get("lines", []):
                    log.write(f"{time.strftime('%H:%M:%S')} ({data.get('pid')}) {line}\n")

        ray_worker.print_to_stdstream = to_log  # type: ignore[assignment]
        super().start_ray(namespace)



def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/recovery.py", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials per measure (default 20)")
    parser.add_argument("--verify", type=int, default=5,
                        help="kill and hung trials (the first N of each) that also place an order (default 5)")
    parser.add_argument("--out", default="bench/results/recovery.json", help="JSON output file")
    parser.add_argument("--config", default=str(ROOT / "examples" / "local.yaml"), help="the system's config")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temp dir with Ray's and NATS's logs")
    parser.add_argument("--standby", type=int, help="override every stage's warm standby count (0: none)")
    parser.add_argument("--spares", type=int, help="override supervision.spares, the any-kind spare processes "
                                                   "(0 with --standby 0: every replacement starts cold)")
    args = parser.parse_args(argv)
    if args.trials < 1 or args.verify < 0:
        parser.error("--trials must be >= 1 and --verify >= 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    base = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    stack = RecoveryStack(base)
    cfg = bench_config(args.config, "bench-recovery")
    if args.standby is not None:
        cfg = cfg.model_copy(update={"stages": cfg.stages.model_copy(update={
            stage: getattr(cfg.stages, stage).model_copy(update={"standby": args.standby})
            for stage in ("risk", "gateway", "allocator")})})
    if args.spares is not None:
        cfg = cfg.model_copy(update={"supervision": cfg.supervision.model_copy(update={"spares": args.spares})})
    global STANDBY_CONFIGURED
    STANDBY_CONFIGURED = all(getattr(cfg.stages, stage).standby >= 1 for stage in ("risk", "gateway", "allocator"))
    sup = cfg.supervision
    results: dict[str, Any] = {
        "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.orig_argv),
        "cwd": os.getcwd(),
        "machine": machine(),
        "parameters": {"trials": args.trials, "verify_orders": args.verify, "freeze_s": FREEZE_S,
                       "status_poll_s": POLL_S, "config": args.config},
        "targets": TARGETS,
        "setup": {
            "nats": "one nats-server on loopback",
            "ray": "one local Ray head (num_cpus=4); system and baselines on the same head",
            "system": {"name": cfg.name, "partitions": cfg.partitions, "venue_mode": "fill_all",
                       "risk_replicas": cfg.stages.risk.replicas, "allocator_replicas": cfg.stages.allocator.replicas,
                       "supervision": {"strategy": sup.strategy, "heartbeat_s": sup.heartbeat,
                                       "heartbeat_misses": sup.heartbeat_misses, "intensity": sup.intensity,
                                       "period_s": sup.period, "backoff": sup.backoff.model_dump()}},
            "method": ("trials sequential; before each, the tree is all running and the chosen child has been up "
                       "for backoff.reset_after (so each restart uses the minimum backoff); t0 is the driver's "
                       "time.time() right before SIGKILL / issuing call_child(freeze); detect and ready are the "
                       "supervisor's last_failure_at / last_restart_at (time.time(), same machine) minus t0; "
                       "the status is polled every 20 ms only to notice the restart (not for timing). "
                       "Verification orders: one per trial for the first N trials, on an account whose partition "
                       "the restarted child owns, placed as soon as the restart is seen; settle = filled and "
                       "allocated (it crosses risk, gateway + venue and allocator). Ray baselines use a trivial "
                       "async actor (num_cpus=0.05); restart: calls issued every 50 ms until one answers from the "
                       "new process; reveal: block() outstanding when SIGKILLed; fresh: creation -> first answer. "
                       "Percentiles are nearest-rank (with 20 samples p99 = max)."),
            "warm_standby": ("every stage has a warm standby; each trial waits until the spare is ready"
                             if STANDBY_CONFIGURED else "standby: 0 in the config"),
            "spares": (f"{cfg.supervision.spares} spare process(es) that can become any child; each trial waits "
                       "until they are ready" if cfg.supervision.spares else
                       "spares: 0 (with no standby, every replacement is a new Ray actor process)"),
        },
    }
    console.print(f"logs: {stack.logs} (Ray's session logs under {base / 'ray'})")

    def body() -> None:
        nonlocal cfg
        with console.status("starting nats-server and a Ray head ..."):
            url = stack.start_nats()
            stack.start_ray(cfg.name)
            signal.signal(signal.SIGTERM, raise_interrupt)  # ray.init may install its own
        cfg = cfg.with_nats_url(url)
        with console.status("deploying the system ..."):
            tree = stack.deploy(cfg)
        results["_deployed_at"] = time.time()
        results["setup"]["children"] = [c["id"] for c in tree.get("children", [])]
        started = time.monotonic()

        async def measure() -> None:
            await measure_system(cfg, args, results)
            await measure_ray(args, results)

        event_loop.run(measure())
        results["measure_s"] = round(time.monotonic() - started, 1)
        results.pop("_deployed_at", None)
        results["summary"] = summarize(results)
        render(results)
        write_results(console, results, args.out, f" (measuring took {results['measure_s']:.0f} s)")

    return run_guarded(console, stack, base, args.keep_logs, body,
                       'stopping the system, Ray and the nats-server ...')


if __name__ == "__main__":
    sys.exit(main())
