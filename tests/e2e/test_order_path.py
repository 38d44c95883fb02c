"""The whole system on a real nats-server and a real local Ray."""

from __future__ import annotations

import base64
import os
import signal
from collections import defaultdict

import pytest
import ray

from actors.runtime.nats_conn import connect
from actors.runtime.streams import decoded, read_stream
from cluster.client.load import order_mix, run_load
from cluster.client.trading import TradingClient
from messages import (
    AllocationCompleted,
    DeadLettered,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    OrderVenueRejected,
    subjects,
)
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import async_wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(module_stack):
    """The tests of this module share one deployed system (each uses its own orders)."""
    return module_stack


async def test_200_orders_each_get_exactly_one_terminal_outcome_and_allocations_sum_to_fills(deployed):
    cfg = deployed
    async with TradingClient.from_config(cfg) as client:
        report = await run_load(client, order_mix(200, seed=11), rate=0, timeout=60)
    assert report.sent == 200
    assert report.lost == 0 and report.duplicated == 0, report.line()
    assert report.rejected > 0 and report.filled > 0, "the mix has risk rejections and fills"

    # Prove it from the streams, not from the client's view.
    nc = await connect(cfg.nats.url, name="audit")
    js = nc.jetstream()
    terminal: dict[str, int] = defaultdict(int)
    filled: dict[str, int] = defaultdict(int)
    allocated: dict[str, int] = defaultdict(int)
    for _, _, ev in decoded(await read_stream(js, "ORDERS_REJECTED")):
        assert isinstance(ev, OrderRejected)
        terminal[ev.order_id] += 1
    for _, _, ev in decoded(await read_stream(js, "EXECUTIONS")):
        if isinstance(ev, OrderFilled):
            filled[ev.order_id] += ev.last_qty
            terminal[ev.order_id] += ev.leaves_qty == 0
        elif isinstance(ev, OrderCanceled | OrderVenueRejected):
            terminal[ev.order_id] += 1
    for _, _, ev in decoded(await read_stream(js, "ALLOCATIONS")):
        assert isinstance(ev, AllocationCompleted)
        assert sum(line.qty for line in ev.lines) == ev.cum_qty
        allocated[ev.order_id] += sum(line.qty for line in ev.delta)
    await nc.close()
    assert len(terminal) == 200
    assert set(terminal.values()) == {1}, "every order has exactly one terminal outcome"
    assert dict(allocated) == dict(filled), "allocations sum to the filled quantity of every order"


async def test_garbage_bytes_go_to_the_risk_dead_letter_queue_and_the_next_order_still_fills(deployed):
    cfg = deployed
    garbage = b"\x00\xffnot json at all{"
    nc = await connect(cfg.nats.url, name="garbage")
    js = nc.jetstream()
    await js.publish(subjects.orders_received(0), garbage)
    account = next(a for a in ("ACC2", "ACC3", "ACC4", "ACC5", "ACC6", "ACC7", "X1", "X2", "X3", "X4")
                   if subjects.partition_of(a, cfg.partitions) == 0)
    async with TradingClient.from_config(cfg) as client:
        oid = await client.place_order(account, "AAPL", "BUY", 10, "100.5")
        outcome = await client.wait(oid, timeout=30)
    assert outcome.status == "filled"

    async def dead_letters() -> list[DeadLettered]:
        return [e for _, _, e in decoded(await read_stream(js, "DLQ", subjects.dlq("risk")))
                if isinstance(e, DeadLettered)]

    letters = await async_wait_until(dead_letters, 10, what="the dead letter")
    await nc.close()
    assert len(letters) == 1
    letter = letters[0]
    assert letter.reason == "undecodable" and letter.error
    assert letter.original_subject == subjects.orders_received(0)
    assert base64.b64decode(letter.payload_b64) == garbage


async def test_every_process_of_the_tree_runs_at_the_configured_niceness_not_rays_default(deployed):
    cfg = deployed
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    children = (await supervisor.status.remote())["children"]
    pids = {c["id"]: c["pid"] for c in children} | {"supervisor": await supervisor.pid.remote()}
    assert len(pids) >= 5
    niceness = {name: os.getpriority(os.PRIO_PROCESS, pid) for name, pid in pids.items()}
    assert niceness == dict.fromkeys(pids, cfg.supervision.niceness), "Ray's workers default to 15"


async def test_every_process_of_the_tree_leads_its_own_session_not_rays(deployed):
    cfg = deployed
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    children = (await supervisor.status.remote())["children"]
    pids = {c["id"]: c["pid"] for c in children} | {"supervisor": await supervisor.pid.remote()}
    sessions = {name: os.getsid(pid) for name, pid in pids.items()}
    assert sessions == pids, "each process leads its own session (its own autogroup)"


async def test_a_killed_stage_process_is_replaced_and_the_replacement_consumes(deployed):
    cfg = deployed
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    before = {c["id"]: c for c in (await supervisor.status.remote())["children"]}
    victim = before["allocator-0"]
    os.kill(victim["pid"], signal.SIGKILL)

    async def replaced() -> dict | None:
        now = {c["id"]: c for c in (await supervisor.status.remote())["children"]}["allocator-0"]
        return now if now["restarts"] == 1 and now["state"] == "running" else None

    child = await async_wait_until(replaced, 30, what="the replacement")
    assert child["pid"] != victim["pid"]
    async with TradingClient.from_config(cfg) as client:
        oid = await client.place_order("ACC3", "MSFT", "SELL", 30, "400", allocation_profile="FUND3")
        outcome = await client.wait(oid, timeout=30)
    assert outcome.allocated == {"A": 10, "B": 10, "C": 10}

    nc = await connect(cfg.nats.url, name="supervision")
    events = [env.type for _, env, _ in decoded(await read_stream(nc.jetstream(), "SUPERVISION",
                                                                  "supervision.root.allocator.allocator-0"))]
    await nc.close()
    assert events == ["ChildStarted", "ChildFailed", "ChildRestarted"]


async def test_the_same_order_id_placed_twice_is_one_order(deployed):
    cfg = deployed
    async with TradingClient.from_config(cfg) as client:
        first = await client.place_order("ACC4", "TSLA", "BUY", 5, "240", order_id="SAME-1")
        second = await client.place_order("ACC4", "TSLA", "BUY", 5, "240", order_id="SAME-1")
        outcome = await client.wait(first, timeout=30)
    assert first == second
    assert [e.type for e in outcome.events].count("OrderFilled") == 1
    nc = await connect(cfg.nats.url, name="check")
    received = [ev for _, _, ev in decoded(await read_stream(nc.jetstream(), "ORDERS_RECEIVED"))
                if ev.order_id == "SAME-1"]
    await nc.close()
    assert len(received) == 1, "the broker dropped the second copy (same Nats-Msg-Id)"


async def test_trade_trace_shows_every_event_of_an_order_in_time_order(deployed, tmp_path):
    import json as _json
    import subprocess
    import sys

    import yaml

    cfg = deployed
    async with TradingClient.from_config(cfg) as client:
        oid = await client.place_order("ACC6", "MSFT", "BUY", 9, "400", allocation_profile="FUND3")
        await client.wait(oid, timeout=30)
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(_json.loads(cfg.model_dump_json())))
    result = subprocess.run([sys.executable, "-m", "cluster.ops.cli", "trace", oid, "--json", "--config",
                             str(cfg_file)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    types = [e["type"] for e in _json.loads(result.stdout)]
    assert types == ["OrderReceived", "OrderApproved", "OrderAccepted", "OrderFilled", "AllocationCompleted"]
