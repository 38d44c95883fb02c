"""Supervision on a real Ray and a real nats-server: restart strategies and hung-actor detection."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
import ray

from cluster.client import TradingClient
from cluster.job import deploy, teardown
from cluster.nats_conn import connect
from cluster.streams import decoded, read_stream
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import async_wait_until, small_config

pytestmark = pytest.mark.integration


async def _tree(supervisor: Any) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in (await supervisor.status.remote())["children"]}


async def _restarted(supervisor: Any, ids: list[str], before: dict[str, dict[str, Any]]) -> bool:
    now = await _tree(supervisor)
    return all(now[i]["state"] == "running" and now[i]["restarts"] > before[i]["restarts"] for i in ids)


async def _deploy(nats_url: str, name: str, **supervision: Any) -> Any:
    cfg = small_config(nats_url, name=name, supervision={"intensity": 10, "period": "5s", "num_cpus": 0.05,
                                                         **supervision})
    await asyncio.get_running_loop().run_in_executor(None, deploy, cfg)
    return cfg


@pytest.mark.parametrize(
    ("strategy", "victim", "expected"),
    [
        ("one_for_one", "risk-0", ["risk-0"]),
        ("rest_for_one", "risk-1", ["risk-1", "allocator-0", "positions"]),
        ("one_for_all", "risk-1", ["venue-SIM", "gateway-SIM", "risk-0", "risk-1", "allocator-0", "positions"]),
    ],
)
async def test_each_strategy_restarts_the_right_children(nats_server, ray_head, strategy, victim, expected):
    cfg = await _deploy(nats_server.url, f"strategy-{strategy.replace('_', '-')}", strategy=strategy)
    try:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        before = await _tree(supervisor)
        os.kill(before[victim]["pid"], signal.SIGKILL)
        await async_wait_until(lambda: _restarted(supervisor, expected, before), 60,
                               what=f"{expected} to be restarted")
        after = await _tree(supervisor)
        untouched = [i for i in before if i not in expected]
        assert all(after[i]["pid"] == before[i]["pid"] for i in untouched), "the others were left alone"
        async with TradingClient.from_config(cfg) as client:
            oid = await client.place_order("ACC2", "AAPL", "BUY", 3, "100")
            assert (await client.wait(oid, timeout=30)).status == "filled"
    finally:
        teardown(cfg, timeout=30)


async def test_a_stage_stuck_in_its_handler_with_work_pending_is_killed_and_replaced(nats_server, ray_head):
    cfg = await _deploy(nats_server.url, "stalled")
    try:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        before = await _tree(supervisor)
        for child in ("risk-0", "risk-1"):
            await supervisor.call_child.remote(child, "arm_fault", "during_handle")
        async with TradingClient.from_config(cfg) as client:
            oid = await client.place_order("ACC2", "AAPL", "BUY", 4, "100")
            async def either_replaced() -> bool:
                return (await _restarted(supervisor, ["risk-0"], before)
                        or await _restarted(supervisor, ["risk-1"], before))

            await async_wait_until(either_replaced, 30, what="the stalled replica")
            outcome = await client.wait(oid, timeout=60)
        assert outcome.status == "filled", "the replacement took the order over"
        reasons = [c["last_failure"] for c in (await _tree(supervisor)).values() if c["last_failure"]]
        assert any(r.startswith("hung (stalled") for r in reasons), reasons
    finally:
        teardown(cfg, timeout=30)


async def test_a_stage_whose_event_loop_is_frozen_misses_heartbeats_and_is_replaced(nats_server, ray_head):
    cfg = await _deploy(nats_server.url, "frozen")
    try:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        before = await _tree(supervisor)
        supervisor.call_child.remote("allocator-0", "freeze", 60.0)  # never answers again
        await async_wait_until(lambda: _restarted(supervisor, ["allocator-0"], before), 30,
                               what="the frozen child to be replaced")
        child = (await _tree(supervisor))["allocator-0"]
        assert child["pid"] != before["allocator-0"]["pid"]
        assert child["last_failure"].startswith("hung (hung")
        nc = await connect(cfg.nats.url, name="check")
        events = [env.type for _, env, _ in decoded(await read_stream(nc.jetstream(), "SUPERVISION",
                                                                      "supervision.root.allocator-0"))]
        await nc.close()
        assert events[-2:] == ["ChildFailed", "ChildRestarted"]
    finally:
        teardown(cfg, timeout=30)


async def test_a_warm_standby_takes_a_killed_replicas_partitions_over(nats_server, ray_head):
    cfg = small_config(nats_server.url, name="standby")
    cfg = cfg.model_copy(update={"stages": cfg.stages.model_copy(update={
        "risk": cfg.stages.risk.model_copy(update={"standby": 1})})})
    await asyncio.get_running_loop().run_in_executor(None, deploy, cfg)
    try:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        status = await supervisor.status.remote()
        spare_pid = status["standby"]["risk"][0]
        before = await _tree(supervisor)
        os.kill(before["risk-0"]["pid"], signal.SIGKILL)
        await async_wait_until(lambda: _restarted(supervisor, ["risk-0"], before), 30, what="the takeover")
        assert (await _tree(supervisor))["risk-0"]["pid"] == spare_pid, "the spare took over"

        async def refilled() -> bool:
            pids = (await supervisor.status.remote())["standby"].get("risk", [])
            return len(pids) == 1 and pids[0] != spare_pid

        await async_wait_until(refilled, 60, what="a new spare")
        async with TradingClient.from_config(cfg) as client:
            outcomes = [await client.wait(await client.place_order(a, "AAPL", "BUY", 2, "100"), timeout=30)
                        for a in ("ACC2", "ACC3", "ACC4", "ACC5", "ACC6")]
        assert {o.status for o in outcomes} == {"filled"}, "every partition is consumed"
    finally:
        teardown(cfg, timeout=30)
