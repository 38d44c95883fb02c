"""A venue outage: the breaker opens, orders wait durably, the venue returns, the breaker goes
half-open then closed, and every order completes exactly once."""

from __future__ import annotations

import pytest
import ray

from actors.runtime.nats_conn import connect
from actors.runtime.streams import decoded, read_stream
from cluster.client.trading import TradingClient
from cluster.ops.audit import audit
from messages import BreakerChanged
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import async_wait_until

pytestmark = pytest.mark.e2e


async def test_orders_wait_through_a_venue_outage_and_complete_once_when_the_breaker_closes(deployed):
    cfg = deployed
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    assert await supervisor.stop_children.remote("venue-") == ["venue-SIM"]
    nc = await connect(cfg.nats.url, name="outage")
    js = nc.jetstream()

    async def transitions() -> list[tuple[str, str]]:
        stored = await read_stream(js, "SUPERVISION", "supervision.breaker.SIM")
        return [(ev.old, ev.new) for _, _, ev in decoded(stored) if isinstance(ev, BreakerChanged)]

    async with TradingClient.from_config(cfg) as client:
        ids = [await client.place_order(f"ACC{2 + i % 5}", "AAPL", "BUY", 10 + i, "100") for i in range(30)]
        await async_wait_until(lambda: _opened(transitions), 30, what="the breaker to open")
        assert not any(client.outcome(i).status == "filled" for i in ids), "nothing reached the venue"
        assert await supervisor.start_children.remote("venue-") == ["venue-SIM"]
        outcomes = [await client.wait(i, timeout=60) for i in ids]
    assert {o.status for o in outcomes} == {"filled"}
    seen = await transitions()
    assert seen[0] == ("closed", "open")
    assert ("open", "half_open") in seen and seen[-1] == ("half_open", "closed")
    report = await audit(js, grace_s=0)
    await nc.close()
    assert report.ok, report.violations[:5]


async def _opened(transitions) -> bool:
    return ("closed", "open") in await transitions()
