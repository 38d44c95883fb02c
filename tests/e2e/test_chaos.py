"""Chaos, bounded to about a minute per run: orders while processes are killed at random and the broker
is killed and restarted once. Afterwards the audit finds nothing lost, nothing done twice, and every
order agreeing with the venue's own record.

Two venues: the fill-everything venue (stage processes killed), and the order-book venue over several
seeds, where the venue session and the positions projection are among the processes killed too."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import ray

from actors.runtime.nats_conn import connect
from actors.runtime.refprices import wait_reference_prices
from cluster.client.load import order_mix, run_load
from cluster.client.trading import TradingClient
from cluster.config import SystemConfig
from cluster.local.nats_server import NatsServer
from cluster.ops.audit import audit
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import async_wait_until, running_system, small_config

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ORDERS = int(os.environ.get("TRADE_TEST_CHAOS_ORDERS", "2000"))
BOOK_ORDERS = int(os.environ.get("TRADE_TEST_CHAOS_BOOK_ORDERS", "900"))
STAGES = ("risk-", "gateway-", "allocator-")
BOOK_VICTIMS = (*STAGES, "venue-", "positions")


async def _chaos(cfg: SystemConfig, server: NatsServer, rng: random.Random, victims: tuple[str, ...],
                 stop: asyncio.Event, kills: list[str]) -> None:
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    started = time.monotonic()
    broker_restarted = False
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(0.8, 1.6))
        if not broker_restarted and time.monotonic() - started > 3:
            broker_restarted = True
            server.kill()
            await asyncio.sleep(1.0)
            await asyncio.get_running_loop().run_in_executor(None, server.start)
            kills.append("nats-server")
            continue
        children = [c for c in (await supervisor.status.remote())["children"]
                    if c["state"] == "running" and c["id"].startswith(victims)]
        if children:
            victim = rng.choice(children)
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim["pid"], signal.SIGKILL)
                kills.append(victim["id"])


async def _run_with_chaos(cfg: SystemConfig, server: NatsServer, seed: int, victims: tuple[str, ...], orders: int,
                          reference: dict[str, Any] | None = None) -> None:
    rng = random.Random(seed)
    kills: list[str] = []
    stop = asyncio.Event()
    sent = 0

    def _sent(n: int) -> None:  # the chaos lasts as long as orders are being sent; then the system settles
        nonlocal sent
        sent += n
        if sent >= orders:
            stop.set()

    async with TradingClient.from_config(cfg, publish_timeout=2.0) as client:
        chaos = asyncio.create_task(_chaos(cfg, server, rng, victims, stop, kills))
        try:
            report = await run_load(client, order_mix(orders, seed=seed, reference=reference), rate=150, timeout=120,
                                    on_sent=_sent)
        finally:
            stop.set()
            await chaos
    supervisor = ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    await async_wait_until(lambda: _all_running(supervisor), 60, what="every child to run again")
    nc = await connect(cfg.nats.url, name="audit")
    result = await audit(nc.jetstream(), grace_s=0, nc=nc)
    await nc.close()
    tree = await supervisor.status.remote()
    diagnosis = f"kills={kills} audit={result.counts()} tree={tree}"
    assert "nats-server" in kills and len(kills) >= 4, diagnosis
    assert report.lost == 0, f"{report.lost_order_ids[:5]} {diagnosis}"
    assert result.ok, result.violations[:10]


async def _all_running(supervisor: Any) -> bool:
    return all(c["state"] == "running" for c in (await supervisor.status.remote())["children"])


async def test_random_stage_kills_and_a_broker_restart_lose_nothing_and_duplicate_nothing(deployed, nats_server):
    await _run_with_chaos(deployed, nats_server, 2026, STAGES, ORDERS)


@pytest.fixture(scope="module")
def book_chaos(tmp_path_factory: pytest.TempPathFactory, ray_head: Any) -> Iterator[tuple[SystemConfig, NatsServer]]:
    tmp = tmp_path_factory.mktemp("book-chaos")
    server = NatsServer(tmp / "store", log_file=tmp / "nats-server.log")
    server.start()
    try:
        cfg = small_config(server.url, name="chaosbook",
                           venues={"SIM": {"mode": "book", "symbols": ["AAPL", "MSFT", "TSLA"], "tick": "1s"}},
                           risk={"default": {"max_order_qty": 10000, "max_notional": 1000000, "collar_pct": 5},
                                 "accounts": {"ACC1": {"max_order_qty": 500}}})
        with running_system(cfg, ray_head):
            yield cfg, server
    finally:
        server.stop()


@pytest.mark.parametrize("seed", [1, 2])
async def test_on_the_order_book_venue_killing_the_venue_positions_and_stages_at_random_loses_nothing(
        book_chaos: tuple[SystemConfig, NatsServer], seed: int) -> None:
    cfg, server = book_chaos
    nc = await connect(cfg.nats.url, name="reference")
    reference = await wait_reference_prices(nc.jetstream(), "SIM")
    await nc.close()
    await _run_with_chaos(cfg, server, seed, BOOK_VICTIMS, BOOK_ORDERS, reference)
