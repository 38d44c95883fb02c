"""Chaos, bounded to about a minute: 2,000 orders while stage processes are killed at random and the
broker is killed and restarted once. Afterwards the audit finds nothing lost, nothing done twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time

import pytest
import ray

from cluster.audit import audit
from cluster.client import TradingClient
from cluster.load import order_mix, run_load
from cluster.nats_conn import connect
from supervision.supervisor import SUPERVISOR_NAME

pytestmark = pytest.mark.e2e

ORDERS = int(os.environ.get("TRADE_TEST_CHAOS_ORDERS", "2000"))
VICTIMS = ("risk-", "gateway-", "allocator-")


async def test_random_stage_kills_and_a_broker_restart_lose_nothing_and_duplicate_nothing(deployed, nats_server):
    cfg = deployed
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    rng = random.Random(2026)
    kills: list[str] = []
    stop = asyncio.Event()

    async def chaos() -> None:
        started = time.monotonic()
        broker_restarted = False
        while not stop.is_set():
            await asyncio.sleep(rng.uniform(0.8, 1.6))
            if not broker_restarted and time.monotonic() - started > 4:
                broker_restarted = True
                nats_server.kill()
                await asyncio.sleep(1.0)
                await asyncio.get_running_loop().run_in_executor(None, nats_server.start)
                kills.append("nats-server")
                continue
            children = [c for c in (await supervisor.status.remote())["children"]
                        if c["state"] == "running" and c["id"].startswith(VICTIMS)]
            if children:
                victim = rng.choice(children)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(victim["pid"], signal.SIGKILL)
                    kills.append(victim["id"])

    async with TradingClient.from_config(cfg, publish_timeout=2.0) as client:
        chaos_task = asyncio.create_task(chaos())
        try:
            report = await run_load(client, order_mix(ORDERS, seed=99), rate=150, timeout=120)
        finally:
            stop.set()
            await chaos_task
    nc = await connect(cfg.nats.url, name="audit")
    result = await audit(nc.jetstream(), grace_s=0, nc=nc)
    await nc.close()
    tree = await supervisor.status.remote()
    diagnosis = f"kills={kills} audit={result.counts()} tree={tree}"
    assert "nats-server" in kills and len(kills) >= 5, diagnosis
    assert report.lost == 0, f"{report.lost_order_ids[:5]} {diagnosis}"
    assert result.orders == ORDERS
    assert result.ok, result.violations[:10]
