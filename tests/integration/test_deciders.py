"""Handler-exception deciders end to end: a real risk replica's handler raises an injected exception of
a chosen type (FaultPoints.arm_error), and `supervision.deciders` says what the supervisor does about
it: restart the replica, stop it for good, escalate to the parent supervisor, or (no entry: the
default) resume, dead-lettering the message. Whatever the directive, the order is done exactly once
(or, resumed, dead-lettered and nothing else)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator
from typing import Any

import pytest
import ray

from actors.runtime.nats_conn import connect
from actors.runtime.streams import decoded, read_stream
from actors.stages.payload import ChildPayload
from cluster.client.outcome import OrderTrack
from cluster.client.trading import TradingClient
from cluster.config import SystemConfig
from cluster.job import deploy, teardown
from cluster.plan import tree_plan
from messages import DeadLettered, Event, OrderApproved, subjects
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import _kill_leftovers, async_wait_until, small_config

pytestmark = pytest.mark.integration

FAULT = "InjectedFault"
VICTIM = "risk-0"
ACCOUNTS = ("ACC2", "ACC3", "ACC4", "ACC5", "ACC6", "ACC7", "X1", "X2", "X3", "X4")


@contextlib.asynccontextmanager
async def _system(nats_url: str, ray_head: Any, name: str, deciders: dict[str, str]) -> AsyncIterator[SystemConfig]:
    cfg = small_config(nats_url, name=name, supervision={"intensity": 10, "period": "5s", "num_cpus": 0.05,
                                                         "deciders": deciders})
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, deploy, cfg)
    try:
        yield cfg
    finally:
        try:
            await loop.run_in_executor(None, functools.partial(teardown, cfg, timeout=30))
        finally:
            _kill_leftovers(cfg.name, ray_head.dashboard_url)


def _partition_of_victim(cfg: SystemConfig) -> tuple[int, str]:
    """An order partition the victim replica owns (from its child spec's durables), and an account on it."""
    spec = next(s for s in tree_plan(cfg).root.walk() if s.id == VICTIM)
    owned = sorted(c.partition for c in ChildPayload.model_validate_json(spec.payload).consumers  # type: ignore[type-var]
                   if c.stream == "ORDERS_RECEIVED")
    account = next(a for a in ACCOUNTS if subjects.partition_of(a, cfg.partitions) in owned)
    return subjects.partition_of(account, cfg.partitions), account


async def _tree(supervisor: Any) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in (await supervisor.status.remote())["children"]}


async def _restarted(supervisor: Any, ids: list[str], before: dict[str, dict[str, Any]]) -> bool:
    now = await _tree(supervisor)
    return all(now[i]["state"] == "running" and now[i]["restarts"] > before[i]["restarts"] for i in ids)


async def _stream(cfg: SystemConfig, stream: str, subject: str | None = None) -> list[tuple[str, Event]]:
    nc = await connect(cfg.nats.url, name="check")
    try:
        return [(env.type, ev) for _, env, ev in decoded(await read_stream(nc.jetstream(), stream, subject))]
    finally:
        await nc.close()


async def _supervision(cfg: SystemConfig, path: str) -> list[tuple[str, Event]]:
    return await _stream(cfg, "SUPERVISION", subjects.supervision(path))


async def _dead_letters(cfg: SystemConfig, order_id: str) -> list[tuple[str, DeadLettered]]:
    """The order's dead letters on any stage's DLQ subject (dlq.>), with their subjects."""
    nc = await connect(cfg.nats.url, name="check")
    try:
        return [(m.subject, ev) for m, _, ev in decoded(await read_stream(nc.jetstream(), "DLQ", "dlq.>"))
                if isinstance(ev, DeadLettered) and ev.order_id == order_id]
    finally:
        await nc.close()


async def _approved(cfg: SystemConfig, order_id: str) -> int:
    return sum(isinstance(ev, OrderApproved) and ev.order_id == order_id
               for _, ev in await _stream(cfg, "ORDERS_APPROVED"))


async def _assert_done_exactly_once(cfg: SystemConfig, order_id: str) -> None:
    """From the streams themselves: one approval, one terminal outcome, no duplicated execution, no
    dead letter for the order anywhere."""
    track = OrderTrack(order_id)
    nc = await connect(cfg.nats.url, name="check")
    try:
        js = nc.jetstream()
        for stream in ("ORDERS_REJECTED", "EXECUTIONS", "ALLOCATIONS"):
            for _, env, ev in decoded(await read_stream(js, stream)):
                if ev.order_id == order_id:
                    track.add(env, ev)
    finally:
        await nc.close()
    assert track.terminal_count() == 1, "exactly one terminal outcome"
    assert track.duplicated_executions() == 0
    assert await _approved(cfg, order_id) == 1, "approved once"
    assert await _dead_letters(cfg, order_id) == [], "not dead-lettered"


async def test_a_handler_error_the_decider_maps_to_restart_replaces_the_replica_and_the_order_fills_once(
        nats_server, ray_head):
    async with _system(nats_server.url, ray_head, "decider-restart", {FAULT: "restart"}) as cfg:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        before = await _tree(supervisor)
        _, account = _partition_of_victim(cfg)
        await supervisor.call_child.remote(VICTIM, "arm_error", FAULT, 1)
        async with TradingClient.from_config(cfg) as client:
            oid = await client.place_order(account, "AAPL", "BUY", 5, "100")
            await async_wait_until(lambda: _restarted(supervisor, [VICTIM], before), 30,
                                   what=f"{VICTIM} to be restarted")
            assert (await client.wait(oid, timeout=30)).status == "filled"
        after = await _tree(supervisor)
        assert after[VICTIM]["pid"] != before[VICTIM]["pid"], "a new process"
        assert after["risk-1"]["pid"] == before["risk-1"]["pid"], "one_for_one: the other replica was left alone"
        events = await _supervision(cfg, f"root.risk.{VICTIM}")
        assert [t for t, _ in events] == ["ChildStarted", "ChildFailed", "ChildRestarted"]
        await _assert_done_exactly_once(cfg, oid)
        detail = events[1][1].detail  # type: ignore[attr-defined]
        assert detail.startswith(f"restart (decider): {FAULT}"), detail


async def test_a_handler_error_the_decider_maps_to_stop_stops_the_replica_for_good_and_holds_the_order(
        nats_server, ray_head):
    async with _system(nats_server.url, ray_head, "decider-stop", {FAULT: "stop"}) as cfg:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        before = await _tree(supervisor)
        partition, account = _partition_of_victim(cfg)
        await supervisor.call_child.remote(VICTIM, "arm_error", FAULT, 1)
        async with TradingClient.from_config(cfg) as client:
            oid = await client.place_order(account, "AAPL", "BUY", 5, "100")

            async def stopped() -> dict[str, Any] | None:
                child = (await _tree(supervisor))[VICTIM]
                return child if child["state"] == "stopped" else None

            child = await async_wait_until(stopped, 30, what=f"{VICTIM} to be stopped")
            assert child["restarts"] == 0 and child["last_failure"].startswith(f"stop (decider): {FAULT}")
            events = await _supervision(cfg, f"root.risk.{VICTIM}")
            assert [t for t, _ in events] == ["ChildStarted", "ChildFailed"], "not restarted"
            assert events[-1][1].detail.startswith(f"stop (decider): {FAULT}")  # type: ignore[attr-defined]

            # Held, not lost: unacknowledged in its partition's consumer, nothing downstream.
            nc = await connect(cfg.nats.url, name="check")
            try:
                info = await nc.jetstream().consumer_info("ORDERS_RECEIVED", f"risk-p{partition}")
            finally:
                await nc.close()
            assert info.num_ack_pending + info.num_pending == 1
            assert await _approved(cfg, oid) == 0
            assert str(client.outcome(oid).status) == "pending"
            assert (await _tree(supervisor))[VICTIM]["state"] == "stopped", "still stopped: nobody restarted it"

            assert await supervisor.start_children.remote(VICTIM) == [VICTIM]  # the operator starts it
            assert (await client.wait(oid, timeout=30)).status == "filled"
        after = (await _tree(supervisor))[VICTIM]
        assert (after["state"], after["restarts"]) == ("running", 0)
        assert after["pid"] != before[VICTIM]["pid"]
        events = await _supervision(cfg, f"root.risk.{VICTIM}")
        assert [t for t, _ in events] == ["ChildStarted", "ChildFailed", "ChildStarted"]
        assert events[-1][1].detail == "started by operator"  # type: ignore[attr-defined]
        await _assert_done_exactly_once(cfg, oid)


async def test_a_handler_error_the_decider_maps_to_escalate_makes_the_parent_restart_every_risk_replica(
        nats_server, ray_head):
    async with _system(nats_server.url, ray_head, "decider-escalate", {FAULT: "escalate"}) as cfg:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        before = await _tree(supervisor)
        replicas = [c for c in before if c.startswith("risk-")]
        assert len(replicas) == 2
        _, account = _partition_of_victim(cfg)
        await supervisor.call_child.remote(VICTIM, "arm_error", FAULT, 1)
        async with TradingClient.from_config(cfg) as client:
            oid = await client.place_order(account, "AAPL", "BUY", 5, "100")
            await async_wait_until(lambda: _restarted(supervisor, replicas, before), 30,
                                   what="the root to restart the risk subtree")
            assert (await client.wait(oid, timeout=30)).status == "filled"
        after = await _tree(supervisor)
        for replica in replicas:
            assert after[replica]["restarts"] == before[replica]["restarts"] + 1
            assert after[replica]["pid"] != before[replica]["pid"], f"{replica}: a new process"
        assert after["allocator-0"]["pid"] == before["allocator-0"]["pid"], "the root's other children were left alone"
        risk = next(n for n in (await supervisor.status.remote())["supervisors"] if n["path"] == "root.risk")
        assert (risk["state"], risk["restarts"]) == ("running", 1)

        subtree = await _supervision(cfg, "root.risk")
        assert [t for t, _ in subtree] == ["Escalated", "ChildRestarted"]
        assert subtree[0][1].detail.startswith(f"{VICTIM} asked to escalate: escalate (decider): {FAULT}")  # type: ignore[attr-defined]
        victim = await _supervision(cfg, f"root.risk.{VICTIM}")
        assert [t for t, _ in victim] == ["ChildStarted", "ChildFailed", "ChildRestarted"]
        assert victim[1][1].detail.startswith(f"escalate (decider): {FAULT}")  # type: ignore[attr-defined]
        other = await _supervision(cfg, "root.risk.risk-1")
        assert [t for t, _ in other] == ["ChildStarted", "ChildRestarted"], "stopped by the subtree, not failed"
        await _assert_done_exactly_once(cfg, oid)


async def test_a_handler_error_with_no_decider_entry_is_resumed_and_the_message_is_dead_lettered(
        nats_server, ray_head):
    async with _system(nats_server.url, ray_head, "decider-resume", {}) as cfg:
        supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
        before = await _tree(supervisor)
        partition, account = _partition_of_victim(cfg)
        await supervisor.call_child.remote(VICTIM, "arm_error", FAULT, 1)
        async with TradingClient.from_config(cfg) as client:
            poisoned = await client.place_order(account, "AAPL", "BUY", 5, "100")
            letters = await async_wait_until(lambda: _dead_letters(cfg, poisoned), 30, what="the dead letter")
            following = await client.place_order(account, "AAPL", "BUY", 6, "100")
            assert (await client.wait(following, timeout=30)).status == "filled"
            assert str(client.outcome(poisoned).status) == "pending"
        assert len(letters) == 1
        subject, letter = letters[0]
        assert subject == subjects.dlq("risk")
        assert (letter.stage, letter.reason) == ("risk", "handler_error")
        assert letter.error.startswith(f"{FAULT}: ")
        assert letter.original_subject == subjects.orders_received(partition)
        after = await _tree(supervisor)
        assert (after[VICTIM]["pid"], after[VICTIM]["restarts"]) == (before[VICTIM]["pid"], 0), "not restarted"
        assert [t for t, _ in await _supervision(cfg, f"root.risk.{VICTIM}")] == ["ChildStarted"]
        assert await _approved(cfg, poisoned) == 0
        await _assert_done_exactly_once(cfg, following)
