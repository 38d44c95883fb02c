"""A new stage is one module and one registry entry: a toy stage that exists only in the tests
(tests/toy_stage.py) is registered, deployed beside the others, and sees every order end to end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import ray

from actors.runtime.nats_conn import connect
from actors.runtime.streams import read_stream
from cluster import stages
from cluster.client import TradingClient
from cluster.config import StageConfig, SystemConfig
from supervision.supervisor import SUPERVISOR_NAME
from tests.conftest import async_wait_until, module_nats, running_system, small_config
from tests.toy_stage import ToySettings

pytestmark = pytest.mark.integration

ORDERS = 6


@pytest.fixture
def toy_system(tmp_path_factory: pytest.TempPathFactory, ray_head: Any) -> Iterator[SystemConfig]:
    stages.register(stages.StageEntry(
        "toy", "tests.toy_stage:TOY", deployment=lambda cfg: StageConfig(replicas=1, num_cpus=0.05),
        settings=lambda cfg: ToySettings(tag="seen", partitions=cfg.partitions)))
    try:
        with module_nats(tmp_path_factory, "toy") as server, \
                running_system(small_config(server.url, name="toy"), ray_head) as cfg:
            yield cfg
    finally:
        stages.unregister("toy")


async def test_a_registered_stage_runs_beside_the_others_and_sees_every_order(toy_system: SystemConfig) -> None:
    cfg = toy_system
    async with TradingClient.from_config(cfg) as client:
        ids = [await client.place_order(f"ACC{2 + i % 4}", "AAPL", "BUY", 1 + i, "100") for i in range(ORDERS)]
        assert {(await client.wait(i, timeout=30)).status for i in ids} == {"filled"}, "the others still trade"
    nc = await connect(cfg.nats.url, name="toy")
    try:
        seen = await async_wait_until(lambda: _seen(nc.jetstream()), 30, what="the toy stage's events")
    finally:
        await nc.close()
    assert sorted(m.subject.split(".")[1] for m in seen) == ["seen"] * ORDERS
    tree = await ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name).status.remote()
    assert "root.toy" in {n["path"] for n in tree["supervisors"]}
    assert "toy-0" in {c["id"] for c in tree["children"] if c["state"] == "running"}


async def _seen(js: Any) -> list[Any] | None:
    stored = await read_stream(js, "TOY")
    return stored if len(stored) >= ORDERS else None
