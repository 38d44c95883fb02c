"""Fixtures: a real nats-server on a free port with a temp store, and a real local Ray head.

Everything a fixture starts is stopped in its finalizer, also when the test fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.config import SystemConfig, parse_config
from cluster.local.nats_server import NatsServer

ROOT = Path(__file__).resolve().parent.parent


def _interrupt_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# A terminated test run still runs its fixtures' finalizers, so no nats-server or Ray is left behind.
signal.signal(signal.SIGTERM, _interrupt_on_sigterm)


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05,
                           what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "store", log_file=tmp_path / "nats-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One local Ray head (with the jobs API) for the whole session; this process joins it as a driver."""
    import ray

    from cluster.local.ray_env import init_ray
    from cluster.local.ray_head import RayHead

    logs = tmp_path_factory.mktemp("ray")
    head = RayHead(logs / "ray.log", num_cpus=4)
    head.start()
    try:
        init_ray(head.address, namespace="tests")
        yield head
    finally:
        ray.shutdown()
        head.stop()
        shutil.rmtree(head.temp_dir, ignore_errors=True)  # Ray's session dir (its own logs: ray.log is kept)


def small_config(nats_url: str, name: str = "trading", **overrides: Any) -> SystemConfig:
    """A config that fits the test machine: 4 partitions, small replicas, fast redelivery."""
    data: dict[str, Any] = {
        "name": name,
        "nats": {"url": nats_url, "max_bytes": "256MiB"},
        "partitions": 4,
        "venues": {"SIM": {"mode": "fill_all"}},
        "stages": {
            "risk": {"replicas": 2, "num_cpus": 0.05, "delivery": {"ack_wait": "2s", "max_deliver": 5}},
            "gateway": {"num_cpus": 0.05, "delivery": {"ack_wait": "2s"}},
            "allocator": {"replicas": 1, "num_cpus": 0.05, "delivery": {"ack_wait": "2s"}},
        },
        "supervision": {"intensity": 10, "period": "5s", "num_cpus": 0.05},
        "risk": {"default": {"max_order_qty": 10000, "max_notional": 1000000},
                 "accounts": {"ACC1": {"max_order_qty": 500}}},
        "allocation_profiles": {"FUND3": {"method": "percent", "split": {"A": 33, "B": 33, "C": 34}}},
    }
    data.update(overrides)
    return parse_config(data)


@contextlib.contextmanager
def running_system(cfg: SystemConfig, ray_head: Any) -> Iterator[SystemConfig]:
    """Deploy `cfg` on the session's Ray head; tear it down (and kill what is left) afterwards."""
    from cluster.job import deploy, teardown

    deploy(cfg)
    try:
        yield cfg
    finally:
        try:
            teardown(cfg, timeout=30)
        finally:
            _kill_leftovers(cfg.name, ray_head.dashboard_url)


@contextlib.contextmanager
def module_nats(tmp_path_factory: pytest.TempPathFactory, what: str) -> Iterator[NatsServer]:
    tmp = tmp_path_factory.mktemp(what)
    server = NatsServer(tmp / "store", log_file=tmp / "nats-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def deployed(nats_server: NatsServer, ray_head: Any) -> Iterator[SystemConfig]:
    """The whole system deployed on the session's Ray head against this test's nats-server."""
    with running_system(small_config(nats_server.url), ray_head) as cfg:
        yield cfg


@pytest.fixture(scope="module")
def module_stack(tmp_path_factory: pytest.TempPathFactory, ray_head: Any) -> Iterator[SystemConfig]:
    """One deployed system (own nats-server) for a whole test module whose tests do not disturb each
    other: a deploy takes ~10 s, so modules of several tests share one (`deployed = module_stack`)."""
    with module_nats(tmp_path_factory, "stack") as server, \
            running_system(small_config(server.url, name=f"m{uuid.uuid4().hex[:8]}"), ray_head) as cfg:
        yield cfg


def _kill_leftovers(namespace: str, dashboard_url: str) -> None:
    """Whatever a failed teardown left alive must not reconnect to the next test's broker."""
    import ray
    from ray.util.state import list_actors

    for actor in list_actors(address=dashboard_url, filters=[("state", "=", "ALIVE")], limit=1000):
        name = getattr(actor, "name", None)
        if getattr(actor, "ray_namespace", None) == namespace and name:
            with contextlib.suppress(Exception):
                ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)
