"""`make demo` / `trade demo`: the whole system on the embedded stack, with a crash in the middle.

Starts nats-server and Ray, deploys, places 1,000 orders of several accounts and symbols (about one in
ten breaks a risk limit), kills one stage actor's process part-way, waits for every outcome, prints
the summary, and stops everything it started, also when something fails.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import ray
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from actors.runtime import event_loop
from actors.runtime.refprices import wait_reference_prices
from cluster.client.load import LoadReport, order_mix, run_load
from cluster.client.trading import TradingClient
from cluster.config import SystemConfig, VenueMode, load_config
from cluster.demo.scenario import ScenarioResult, run_scenario
from cluster.job import submit_deploy, teardown
from cluster.local.ray_env import init_ray
from cluster.local.stack import STATE_DIR, LocalStack
from cluster.ops.render import console, print_json, render_load, render_tree
from supervision.supervisor import SUPERVISOR_NAME

__all__ = ["run_demo"]

VICTIM = "risk-0"


def _supervisor(namespace: str) -> Any:
    return ray.get_actor(SUPERVISOR_NAME, namespace=namespace)


def _kill_child(namespace: str, child_id: str, record: dict[str, Any]) -> None:
    status = ray.get(_supervisor(namespace).status.remote())
    child = next(c for c in status["children"] if c["id"] == child_id)
    record.update(child=child_id, pid=child["pid"], killed_at=time.time())
    os.kill(child["pid"], signal.SIGKILL)
    console.log(f"killed {child_id} (pid {child['pid']}) with SIGKILL")


def _await_restart(namespace: str, child_id: str, record: dict[str, Any], timeout: float = 30.0) -> None:
    """Detection and recovery times, from the supervisor's own wall-clock records of the failure."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = ray.get(_supervisor(namespace).status.remote())
        child = next(c for c in status["children"] if c["id"] == child_id)
        if child["restarts"] > 0 and child["state"] == "running":
            record.update(new_pid=child["pid"],
                          detected_in_s=child["last_failure_at"] - record["killed_at"],
                          restarted_in_s=child["last_restart_at"] - record["killed_at"])
            return
        time.sleep(0.05)


def run_demo(config_path: str, orders: int = 1000, rate: float = 250.0, as_json: bool = False) -> int:
    cfg = load_config(config_path)
    stack = LocalStack(base=STATE_DIR / "demo", logs=STATE_DIR / "logs" / "demo")
    try:
        cfg = _start(stack, cfg, config_path, as_json)
        book = next((v for v, vc in cfg.venues.items() if vc.mode is VenueMode.BOOK), None)
        kill: dict[str, Any] = {}
        report = event_loop.run(_load(cfg, book, orders, rate, as_json, kill))
        if kill:
            _await_restart(cfg.name, VICTIM, kill)
        scenario = event_loop.run(_scenario(cfg, book)) if book is not None else None
        ok = report.lost == 0 and report.duplicated == 0 and report.allocation_mismatches == 0
        ok &= scenario is None or scenario.ok
        _summary(cfg, report, kill, scenario, ok, orders, as_json)
        return 0 if ok else 1
    finally:
        with console.status("stopping everything the demo started ..."):
            try:
                if ray.is_initialized():
                    teardown(cfg, timeout=30)
            except Exception as exc:  # still stop the processes below
                console.print(f"teardown: {exc!r}")
            finally:
                ray.shutdown()
                stack.stop()


def _start(stack: LocalStack, cfg: SystemConfig, config_path: str, as_json: bool) -> SystemConfig:
    """nats-server and Ray, then the system deployed as `ray job submit` does; the config, on that server."""
    with console.status("starting nats-server and Ray (logs in .trade/logs/demo/) ..."):
        state = stack.start(str(Path(config_path).resolve()), fresh_store=True)
    cfg = cfg.with_nats_url(state.nats_url)
    with console.status("deploying the supervision tree (ray job submit) ..."):
        status = submit_deploy(state.dashboard_url, str(Path(config_path).resolve()), state.nats_url)
        init_ray(state.ray_address, namespace=cfg.name)
    if not as_json:
        render_tree(status)
    return cfg


async def _load(cfg: SystemConfig, book: str | None, orders: int, rate: float, as_json: bool,
                kill: dict[str, Any]) -> LoadReport:
    """The orders, with a progress bar; a stage process is killed once 40% are sent."""
    async with TradingClient.from_config(cfg) as client:
        reference = None
        if book is not None:  # price the orders around the venue's own reference prices
            reference = await wait_reference_prices(client.nc.jetstream(), book) or None
        mix = order_mix(orders, seed=int(time.time()), reference=reference)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, disable=as_json) as progress:
            sent = progress.add_task("sent   ", total=len(mix))
            done = progress.add_task("settled", total=len(mix))
            loop = asyncio.get_running_loop()
            return await run_load(
                client, mix, rate=rate, timeout=120.0,
                on_sent=lambda n: progress.advance(sent, n),
                on_settled=lambda n: progress.advance(done, n),
                at_fraction=(0.4, lambda: loop.run_in_executor(None, _kill_child, cfg.name, VICTIM, kill)),
            )


async def _scenario(cfg: SystemConfig, book: str) -> ScenarioResult:
    async with TradingClient.from_config(cfg) as client:
        return await run_scenario(client, book, cfg.venues[book])


def _summary(cfg: SystemConfig, report: LoadReport, kill: dict[str, Any], scenario: ScenarioResult | None, ok: bool,
             orders: int, as_json: bool) -> None:
    final = ray.get(_supervisor(cfg.name).status.remote())
    if as_json:
        print_json({"report": report.to_dict(), "fault": kill, "tree": final, "ok": ok,
                    "scenario": scenario.lines if scenario else None})
        return
    render_tree(final)
    if kill.get("restarted_in_s") is not None:
        console.print(f"fault: {kill['child']} pid {kill['pid']} killed; failure detected after "
                      f"{kill['detected_in_s'] * 1000:.0f} ms; replaced by pid {kill['new_pid']}, consuming "
                      f"again {kill['restarted_in_s'] * 1000:.0f} ms after the kill")
    render_load(report, title=f"demo: {orders} orders, one stage process killed part-way")
    if scenario is not None:
        console.print("[bold]trading scenario[/bold] (order book venue)")
        for line in scenario.lines:
            console.print(f"  {line}")
    if ok:
        console.print("[green]OK[/green]: every order has exactly one outcome")
    elif scenario is not None and not scenario.ok:
        console.print("[red]FAILED[/red]: a step of the trading scenario did not hold")
    else:
        console.print("[red]FAILED[/red]: orders lost or duplicated")
