"""Risk state from a snapshot plus the log after it equals risk state from the whole log (real nats-server)."""

from __future__ import annotations

import json
import zlib
from decimal import Decimal

import pytest

from actors.runtime.nats_conn import connect
from actors.stages.risk import RiskHandler
from actors.stages.risk_snapshots import RISK_BUCKET, rebuild_risk_states, save_risk_snapshots
from cluster.stages import stage_settings
from cluster.topology import ensure_topology
from messages import MSG_ID_HEADER, OrderApproved, OrderFilled, OrderRejected, encode, subjects, wrap
from messages.ids import order_received_id
from tests.conftest import small_config

pytestmark = pytest.mark.integration


def _settings(cfg):
    return stage_settings(cfg, "risk")


async def _snapshot(js, cfg, owned) -> None:
    """Rebuild the owned partitions from the log, then snapshot them."""
    states = await rebuild_risk_states(js, _settings(cfg), owned)
    await save_risk_snapshots(js, RiskHandler(_settings(cfg), states=states), owned)


async def _publish(js, subject: str, event) -> None:
    envelope = wrap(event, event_id=order_received_id(f"{event.TYPE}-{event.order_id}-{getattr(event, 'exec_id', '')}"))
    await js.publish(subject, encode(envelope), headers={MSG_ID_HEADER: str(envelope.event_id)})


async def _trade(js, cfg, n: int, account: str = "ACC2") -> None:
    p = subjects.partition_of(account, cfg.partitions)
    approved = OrderApproved(order_id=f"O{n}", account=account, symbol="AAPL", side="BUY", qty=100, price=Decimal(10))
    await _publish(js, subjects.orders_approved("SIM"), approved)
    fill = OrderFilled(order_id=f"O{n}", account=account, symbol="AAPL", side="BUY", venue="SIM", order_qty=100,
                       exec_id=f"E{n}", last_qty=60, last_px=Decimal(10), cum_qty=60, avg_px=Decimal(10),
                       leaves_qty=40)
    await _publish(js, subjects.executions("SIM", p), fill)
    rejected = OrderRejected(order_id=f"R{n}", account=account, symbol="AAPL", rule="max_order_qty", reason="x")
    await _publish(js, subjects.orders_rejected(p), rejected)


@pytest.fixture
async def streams(nats_server):
    """The system's streams and buckets on a fresh nats-server: (config, JetStream context)."""
    cfg = small_config(nats_server.url)
    nc = await connect(cfg.nats.url, name="snapshots")
    try:
        await ensure_topology(nc.jetstream(), cfg)
        yield cfg, nc.jetstream()
    finally:
        await nc.close()


async def test_a_snapshot_plus_the_log_after_it_gives_the_same_state_as_the_whole_log(streams):
    cfg, js = streams
    owned = list(range(cfg.partitions))
    for n in range(5):
        await _trade(js, cfg, n)
    at_snapshot = await rebuild_risk_states(js, _settings(cfg), owned)
    assert await save_risk_snapshots(js, RiskHandler(_settings(cfg), states=at_snapshot), owned) == cfg.partitions
    for n in range(5, 8):  # after the snapshot
        await _trade(js, cfg, n)

    from_snapshot = await rebuild_risk_states(js, _settings(cfg), owned)
    kv = await js.key_value(RISK_BUCKET)
    for p in owned:
        await kv.delete(f"p{p}")
    from_the_start = await rebuild_risk_states(js, _settings(cfg), owned)
    p = subjects.partition_of("ACC2", cfg.partitions)
    assert from_snapshot[p] == from_the_start[p]
    assert from_snapshot[p].position("ACC2", "AAPL") == 8 * 60
    assert from_snapshot[p].working("ACC2", "AAPL") == (8 * 40, 0)
    assert from_snapshot[p].outcome("R7") == "rejected" and from_snapshot[p].outcome("O7") == "approved"


async def test_a_takeover_reads_only_the_log_after_the_snapshot(streams):
    cfg, js = streams
    owned = list(range(cfg.partitions))
    for n in range(3):
        await _trade(js, cfg, n)
    await _snapshot(js, cfg, owned)
    await js.purge_stream("ORDERS_APPROVED")  # what the snapshot covers is gone from the log
    await _trade(js, cfg, 3)
    states = await rebuild_risk_states(js, _settings(cfg), owned)
    state = states[subjects.partition_of("ACC2", cfg.partitions)]
    assert [state.outcome(f"O{n}") for n in range(4)] == ["approved"] * 4


async def test_a_quiet_partitions_snapshot_covers_the_executions_stored_before_it(streams):
    cfg, js = streams
    owned = list(range(cfg.partitions))
    for n in range(3):
        await _trade(js, cfg, n)  # all on ACC2's partition, whose consumer has not taken them yet
    await _snapshot(js, cfg, owned)
    kv = await js.key_value(RISK_BUCKET)
    busy = subjects.partition_of("ACC2", cfg.partitions)
    quiet = next(p for p in owned if p != busy)
    last = (await js.stream_info("EXECUTIONS")).state.last_seq
    covered = {p: json.loads(zlib.decompress((await kv.get(f"p{p}")).value))["exec_seq"] for p in (busy, quiet)}
    assert covered == {busy: 0, quiet: last}, "a quiet partition's next owner does not replay the whole stream"
