"""The event-sourced positions projection: a replay of the log equals the live projection, from the
start and from the last snapshot, also after the projection's process is killed."""

from __future__ import annotations

import os
import signal

import pytest
import ray

from actors.runtime.nats_conn import connect
from cluster.client.load import order_mix, run_load
from cluster.client.trading import TradingClient
from cluster.ops.positions import ProjectionUnavailable, query_positions, verify
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import async_wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(module_stack):
    """The tests of this module share one deployed system (each uses its own orders)."""
    return module_stack


async def _trade(cfg, n: int, seed: int) -> None:
    async with TradingClient.from_config(cfg) as client:
        report = await run_load(client, order_mix(n, seed=seed), timeout=60)
    assert report.lost == 0


async def _caught_up(nc, executions: int) -> bool:
    try:
        return (await query_positions(nc, timeout=1.0))["seq"] >= executions
    except ProjectionUnavailable:  # being restarted
        return False


async def test_a_replay_of_executions_from_the_start_equals_the_live_projection(deployed):
    await _trade(deployed, 150, seed=31)
    nc = await connect(deployed.nats.url, name="positions")
    last = (await nc.jetstream().stream_info("EXECUTIONS")).state.last_seq
    await async_wait_until(lambda: _caught_up(nc, last), 15, what="the projection to catch up")
    result = await verify(nc)
    await nc.close()
    assert result.equal, result.differences()[:3]
    assert result.rebuilt_rows, "there are positions to compare"


async def test_a_killed_projection_resumes_from_its_snapshot_and_still_equals_a_replay(deployed):
    cfg = deployed
    await _trade(cfg, 100, seed=32)
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    # A drained stop writes a snapshot; start again, then kill the process outright.
    assert await supervisor.stop_children.remote("positions") == ["positions"]
    assert await supervisor.start_children.remote("positions") == ["positions"]
    pid = next(c["pid"] for c in (await supervisor.status.remote())["children"] if c["id"] == "positions")
    os.kill(pid, signal.SIGKILL)
    await _trade(cfg, 100, seed=33)
    nc = await connect(cfg.nats.url, name="positions")
    last = (await nc.jetstream().stream_info("EXECUTIONS")).state.last_seq
    await async_wait_until(lambda: _caught_up(nc, last), 30, what="the restarted projection to catch up")
    from_start = await verify(nc)
    from_snapshot = await verify(nc, from_snapshot=True)
    await nc.close()
    assert from_snapshot.from_snapshot_seq > 0, "the rebuild started at the snapshot"
    assert from_start.equal and from_snapshot.equal
