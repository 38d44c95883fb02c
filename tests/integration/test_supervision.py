"""Supervision on a real Ray and a real nats-server: restart strategies and hung-actor detection."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest
import ray

from actors.runtime.nats_conn import connect
from actors.runtime.streams import decoded, read_stream
from cluster.client.trading import TradingClient
from cluster.job import deploy, teardown
from cluster.plan import tree_plan
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
    ("subtree", "strategy", "victim", "expected"),
    [
        ("risk", "one_for_one", "risk-0", ["risk-0"]),
        ("risk", "one_for_all", "risk-1", ["risk-0", "risk-1"]),
        ("venue", "rest_for_one", "venue-SIM", ["venue-SIM", "gateway-SIM"]),
    ],
)
async def test_each_strategy_restarts_the_right_children(nats_server, ray_head, subtree, strategy, victim, expected):
    cfg = await _deploy(nats_server.url, f"strategy-{strategy.replace('_', '-')}",
                        supervisors={subtree: {"strategy": strategy}})
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


async def _events(cfg: Any, subject: str) -> list[tuple[str, str]]:
    nc = await connect(cfg.nats.url, name="check")
    try:
        return [(env.type, ev.detail) for _, env, ev in decoded(await read_stream(nc.jetstream(), "SUPERVISION",
                                                                                  subject))]
    finally:
        await nc.close()


async def test_a_child_that_keeps_crashing_escalates_and_the_parent_restarts_the_subtree(nats_server, ray_head):
    cfg = await _deploy(nats_server.url, "escalation", supervisors={"risk": {"intensity": 1, "period": "30s"}})
    try:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        first = await _tree(supervisor)
        os.kill(first["risk-0"]["pid"], signal.SIGKILL)  # within the risk supervisor's intensity of 1
        await async_wait_until(lambda: _restarted(supervisor, ["risk-0"], first), 60, what="the first restart")
        second = await _tree(supervisor)
        assert second["risk-1"]["pid"] == first["risk-1"]["pid"]
        os.kill(second["risk-0"]["pid"], signal.SIGKILL)  # one more in the period: the risk supervisor gives up
        await async_wait_until(lambda: _restarted(supervisor, ["risk-0", "risk-1"], second), 60,
                               what="the root to restart the risk subtree")
        after = await _tree(supervisor)
        assert after["allocator-0"]["pid"] == first["allocator-0"]["pid"], "the root's other children were left alone"
        risk = next(n for n in (await supervisor.status.remote())["supervisors"] if n["path"] == "root.risk")
        assert (risk["state"], risk["restarts"]) == ("running", 1)
        events = [t for t, _ in await _events(cfg, "supervision.root.risk")]
        assert events == ["Escalated", "ChildRestarted"]
        async with TradingClient.from_config(cfg) as client:
            oid = await client.place_order("ACC2", "AAPL", "BUY", 3, "100")
            assert (await client.wait(oid, timeout=30)).status == "filled"
    finally:
        teardown(cfg, timeout=30)


async def test_when_the_root_gives_up_every_stage_stops_and_new_orders_wait_in_their_stream(nats_server, ray_head):
    cfg = await _deploy(nats_server.url, "giveup", intensity=0, supervisors={"risk": {"intensity": 0}})
    try:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        before = await _tree(supervisor)
        os.kill(before["risk-0"]["pid"], signal.SIGKILL)

        async def gave_up() -> dict[str, Any] | None:
            status = await supervisor.status.remote()
            settled = all(c["state"] != "running" for c in status["children"])
            return status if status["gave_up"] and settled else None

        status = await async_wait_until(gave_up, 60, what="the root to give up")
        assert "risk escalated" in status["gave_up"]
        assert [t for t, _ in await _events(cfg, "supervision.root")] == ["GaveUp"]
        assert [t for t, _ in await _events(cfg, "supervision.root.risk")] == ["Escalated"]

        async with TradingClient.from_config(cfg) as client:
            oid = await client.place_order("ACC2", "AAPL", "BUY", 3, "100")
            nc = await connect(cfg.nats.url, name="check")
            try:
                info = await nc.jetstream().stream_info("ORDERS_RECEIVED")
            finally:
                await nc.close()
            assert info.state.messages >= 1 and str(client.outcome(oid).status) == "pending", "held, not lost"
            await supervisor.apply.remote(tree_plan(cfg).model_dump_json())  # an operator brings the system back
            assert (await client.wait(oid, timeout=30)).status == "filled"
    finally:
        teardown(cfg, timeout=30)


async def test_killing_the_root_leaves_the_stages_running_and_the_new_root_adopts_them(nats_server, ray_head):
    from ray.util import list_named_actors

    cfg = await _deploy(nats_server.url, "adoption")
    try:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        before = await _tree(supervisor)
        root_pid = await supervisor.pid.remote()
        os.kill(root_pid, signal.SIGKILL)
        async with TradingClient.from_config(cfg) as client:  # the stages trade on without their root
            oid = await client.place_order("ACC2", "AAPL", "BUY", 3, "100")
            assert (await client.wait(oid, timeout=30)).status == "filled"

        async def adopted() -> dict[str, Any] | None:
            try:
                status = await supervisor.status.remote()
            except Exception:
                return None  # Ray is still restarting the root
            return status if len(status["adopted"]) == len(before) else None

        status = await async_wait_until(adopted, 60, what="the restarted root to adopt its children")
        assert await supervisor.pid.remote() != root_pid
        assert {c["id"]: c["pid"] for c in status["children"]} == {i: c["pid"] for i, c in before.items()}
        names = [a["name"] for a in list_named_actors(all_namespaces=True) if a["namespace"] == cfg.name]
        for child_id in before:
            assert sum(n.startswith(f"{cfg.name}-{child_id}-") for n in names) == 1, f"one {child_id}"

        killed = status["children"][0]  # and the adopted children are supervised again
        os.kill(killed["pid"], signal.SIGKILL)
        await async_wait_until(lambda: _restarted(supervisor, [killed["id"]], before), 60,
                               what="an adopted child to be restarted")
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
                                                                      "supervision.root.allocator.allocator-0"))]
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


async def test_a_spare_process_becomes_a_killed_child_of_a_kind_without_a_standby(nats_server, ray_head):
    cfg = await _deploy(nats_server.url, "spare", spares=1, supervisors={"venue": {"strategy": "one_for_one"}})
    try:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        [spare_pid] = (await supervisor.status.remote())["spares"]
        before = await _tree(supervisor)
        os.kill(before["venue-SIM"]["pid"], signal.SIGKILL)
        await async_wait_until(lambda: _restarted(supervisor, ["venue-SIM"], before), 30, what="the replacement")
        assert (await _tree(supervisor))["venue-SIM"]["pid"] == spare_pid, "the spare became the venue session"

        async def refilled() -> bool:
            pids = (await supervisor.status.remote())["spares"]
            return len(pids) == 1 and pids[0] != spare_pid

        await async_wait_until(refilled, 60, what="a new spare")
        async with TradingClient.from_config(cfg) as client:
            assert (await client.wait(await client.place_order("ACC2", "AAPL", "BUY", 2, "100"),
                                      timeout=30)).status == "filled"
    finally:
        teardown(cfg, timeout=30)


async def test_with_no_spares_a_killed_child_is_replaced_by_a_new_process(nats_server, ray_head):
    cfg = await _deploy(nats_server.url, "no-spare", spares=0)
    try:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        assert (await supervisor.status.remote())["spares"] == []
        before = await _tree(supervisor)
        os.kill(before["positions"]["pid"], signal.SIGKILL)
        await async_wait_until(lambda: _restarted(supervisor, ["positions"], before), 30, what="the replacement")
        assert (await _tree(supervisor))["positions"]["pid"] != before["positions"]["pid"]
    finally:
        teardown(cfg, timeout=30)
