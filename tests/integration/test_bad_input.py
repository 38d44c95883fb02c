"""Bad input from the CLI, a config file or a driver gets a clear, typed error and publishes nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from actors.runtime.nats_conn import connect
from cluster.client.errors import BrokerUnavailable, OrderValidationError
from cluster.client.trading import TradingClient
from cluster.local.procs import free_port
from cluster.topology import ensure_topology
from tests.conftest import ROOT, small_config

pytestmark = pytest.mark.integration


def _config_file(tmp_path: Path, nats_url: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(f"nats: {{url: '{nats_url}'}}\npartitions: 4\n")
    return path


def _trade(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cluster.ops.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60)


async def _received_count(url: str) -> int:
    nc = await connect(url, name="count")
    try:
        return (await nc.jetstream().stream_info("ORDERS_RECEIVED")).state.messages
    finally:
        await nc.close()


@pytest.fixture
async def topology(nats_server):
    nc = await connect(nats_server.url, name="setup")
    await ensure_topology(nc.jetstream(), small_config(nats_server.url))
    await nc.close()
    return nats_server


@pytest.mark.parametrize(
    ("flag", "value", "field"),
    [("--qty", "-5", "qty"), ("--qty", "2.5", "qty"), ("--side", "HOLD", "side"), ("--price", "abc", "price"),
     ("--symbol", "bad symbol", "symbol")],
)
async def test_cli_order_with_a_bad_field_exits_non_zero_naming_it_and_publishes_nothing(
        topology, tmp_path, flag, value, field):
    cfg = _config_file(tmp_path, topology.url)
    args = {"--account": "ACC1", "--symbol": "AAPL", "--side": "BUY", "--qty": "10", "--price": "100"}
    args[flag] = value
    result = _trade("order", "--config", str(cfg), *[x for kv in args.items() for x in kv], cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert field in result.stderr
    assert await _received_count(topology.url) == 0


def test_a_config_with_an_unknown_key_exits_non_zero_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("nats: {url: 'nats://127.0.0.1:1'}\nstages:\n  risk: {replicaz: 3}\n")
    result = _trade("load", "--config", str(bad), "--orders", "1", cwd=tmp_path)
    assert result.returncode == 2
    assert "stages.risk.replicaz: unknown key" in result.stderr


def test_the_job_entrypoint_refuses_a_malformed_config_naming_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("partitions: 4\nsupervision: {strategy: one_for_one, intensityy: 3}\n")
    result = subprocess.run([sys.executable, "-m", "cluster.job", "--config", str(bad)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "supervision.intensityy: unknown key" in result.stderr


async def test_the_client_rejects_a_bad_order_before_publishing(topology):
    async with TradingClient(topology.url, 4) as client:
        with pytest.raises(OrderValidationError) as info:
            await client.place_order("ACC1", "AAPL", "BUY", 0, "10")
    assert info.value.fields == ("qty",)
    assert await _received_count(topology.url) == 0


async def test_the_client_raises_broker_unavailable_instead_of_hanging():
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        async with TradingClient(f"nats://127.0.0.1:{free_port()}", 4, connect_timeout=1.0):
            pass
    assert time.monotonic() - started < 10


async def test_the_client_raises_publish_rejected_when_the_orders_stream_is_full(nats_server):
    from cluster.client.errors import PublishRejected

    cfg = small_config(nats_server.url)
    cfg = cfg.model_copy(update={"nats": cfg.nats.model_copy(update={"max_bytes": 4096})})
    nc = await connect(nats_server.url, name="setup")
    await ensure_topology(nc.jetstream(), cfg)
    await nc.close()
    async with TradingClient(nats_server.url, cfg.partitions) as client:
        stored = 0
        with pytest.raises(PublishRejected, match="refused by the broker"):
            for i in range(100):
                await client.place_order("ACC2", "AAPL", "BUY", 1, "10", order_id=f"FULL-{i}")
                stored += 1
    assert 0 < stored < 100
    assert await _received_count(nats_server.url) == stored, "what was accepted before is kept"
