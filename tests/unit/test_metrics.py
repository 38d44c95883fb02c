"""Prometheus metric families from a snapshot of the system (no servers)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from cluster.ops.metrics import Snapshot, SystemCollector, families


def snapshot() -> Snapshot:
    status = {
        "gave_up": None,
        "standby": {"risk": [101]},
        "breakers": {"SIM": "open (forced)"},
        "supervisors": [{"path": "root.risk", "strategy": "one_for_one", "state": "running"}],
        "children": [
            {"id": "risk-0", "path": "root.risk.risk-0", "state": "running", "restarts": 2, "restarts_in_window": 1},
            {"id": "risk-1", "path": "root.risk.risk-1", "state": "failed", "restarts": 0, "restarts_in_window": 0},
        ],
    }
    stats = {"risk-0": {"risk-p0": {"handled": 40, "dead_lettered": 1, "progress": 99}}}
    return Snapshot(status, stats, {"risk-p0": (5, 2)})


def scrape(snap: Snapshot) -> str:
    registry = CollectorRegistry()
    registry.register(SystemCollector(lambda: snap))
    return generate_latest(registry).decode()


def test_children_are_up_or_down_with_their_restart_counts() -> None:
    text = scrape(snapshot())
    assert 'trade_child_up{child="risk-0",path="root.risk.risk-0"} 1.0' in text
    assert 'trade_child_up{child="risk-1",path="root.risk.risk-1"} 0.0' in text
    assert 'trade_child_restarts_total{child="risk-0",path="root.risk.risk-0"} 2.0' in text


def test_consumer_counters_and_lag_are_exported_per_consumer() -> None:
    text = scrape(snapshot())
    assert 'trade_consumer_handled_total{child="risk-0",consumer="risk-p0"} 40.0' in text
    assert 'trade_consumer_dead_lettered_total{child="risk-0",consumer="risk-p0"} 1.0' in text
    assert 'trade_consumer_pending{consumer="risk-p0"} 5.0' in text
    assert 'trade_consumer_ack_pending{consumer="risk-p0"} 2.0' in text


def test_an_open_breaker_reads_two() -> None:
    assert 'trade_breaker_state{venue="SIM"} 2.0' in scrape(snapshot())


def test_a_scrape_that_cannot_reach_the_system_says_so_instead_of_failing() -> None:
    def unreachable() -> Snapshot:
        raise TimeoutError("no supervisor")

    registry = CollectorRegistry()
    registry.register(SystemCollector(unreachable))
    assert "trade_up 0.0" in generate_latest(registry).decode()


def test_every_family_has_a_trade_prefix() -> None:
    assert all(f.name.startswith("trade_") for f in families(snapshot()))


def test_garbage_collections_are_exported_per_child_and_generation() -> None:
    snap = snapshot()
    snap.gc = {"risk-0": {"collections": [12, 3, 1], "seconds": [0.01, 0.02, 0.2], "longest_s": 0.2}}
    text = scrape(snap)
    assert 'trade_gc_collections_total{child="risk-0",generation="2"} 1.0' in text
    assert 'trade_gc_seconds_total{child="risk-0",generation="0"} 0.01' in text
    assert 'trade_gc_longest_pause_seconds{child="risk-0"} 0.2' in text


def test_alarms_are_counted_per_child_and_kind() -> None:
    snap = snapshot()
    snap.stats = {"gateway-SIM": {"alarms": {"order_in_doubt": 3}, "orders": {"in_doubt": 2, "corrections": 1}}}
    text = scrape(snap)
    assert 'trade_alarms_total{child="gateway-SIM",kind="order_in_doubt"} 3.0' in text


def test_a_gateways_orders_in_doubt_and_its_corrections_are_exported() -> None:
    snap = snapshot()
    snap.stats = {"gateway-SIM": {"alarms": {}, "orders": {"in_doubt": 2, "corrections": 1}}}
    text = scrape(snap)
    assert 'trade_orders_in_doubt{child="gateway-SIM"} 2.0' in text
    assert 'trade_execution_corrections_total{child="gateway-SIM"} 1.0' in text
