"""`trade audit` passes on a clean run and catches violations planted on purpose."""

from __future__ import annotations

import uuid

import pytest

from actors.runtime.nats_conn import connect
from actors.runtime.streams import decoded, read_stream
from cluster.client.load import order_mix, run_load
from cluster.client.trading import TradingClient
from cluster.ops.audit import audit
from messages import MSG_ID_HEADER, OrderFilled, encode, wrap

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def deployed(module_stack):
    """The tests of this module share one deployed system (each uses its own orders)."""
    return module_stack


async def _run_orders(cfg, n: int = 60) -> str:
    """`n` orders of a run of their own; returns the run's order id prefix."""
    run = f"A{uuid.uuid4().hex[:8]}"
    async with TradingClient.from_config(cfg) as client:
        report = await run_load(client, order_mix(n, seed=3, run_id=run), timeout=60)
    assert report.lost == 0
    return run


async def _audit(cfg):
    nc = await connect(cfg.nats.url, name="audit")
    try:
        return await audit(nc.jetstream(), grace_s=0, nc=nc)
    finally:
        await nc.close()


async def test_the_audit_of_a_clean_run_reports_no_violation(deployed):
    before = await _audit(deployed)
    run = await _run_orders(deployed)
    after = await _audit(deployed)
    assert [v for v in after.violations if v.order_id.startswith(run) or v.order_id == "-"] == []
    assert (after.orders - before.orders, after.settled - before.settled) == (60, 60)
    filled, executions = after.filled - before.filled, after.executions - before.executions
    assert executions == filled and after.allocations - before.allocations == filled


async def test_the_audit_catches_a_venue_execution_published_twice(deployed):
    await _run_orders(deployed)
    nc = await connect(deployed.nats.url, name="plant")
    js = nc.jetstream()
    msg, fill = next((m, ev) for m, _, ev in decoded(await read_stream(js, "EXECUTIONS"))
                          if isinstance(ev, OrderFilled))
    planted = wrap(fill, event_id=uuid.uuid4())  # the same execution under a new event id: a double execution
    await js.publish(msg.subject, encode(planted), headers={MSG_ID_HEADER: str(planted.event_id)})
    report = await audit(js, grace_s=0)
    await nc.close()
    assert not report.ok
    kinds = report.counts()
    assert kinds.get("execution_duplicated") == 1
    assert kinds.get("terminal_twice") == 1
    # The allocator may or may not have split the planted fill yet: either way the allocations disagree.
    assert kinds.get("allocation_mismatch", 0) + kinds.get("allocation_duplicated", 0) == 1
    assert {v.order_id for v in report.violations} == {fill.order_id}
