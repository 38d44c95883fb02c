"""Prometheus metrics for the running system: `trade metrics --port 9464` serves /metrics.

On each scrape the exporter asks the root supervisor for the tree and each child's counters, and
JetStream for every durable consumer's lag. `families` is the pure part: snapshots in, metric
families out (tested without servers). Alert rules to go with it are in deploy/prometheus/.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["BREAKER_LEVELS", "LOOP_COUNTERS", "Snapshot", "SystemCollector", "families", "take_snapshot"]

#: Consumer-loop counters exported as `trade_consumer_<name>_total`.
LOOP_COUNTERS = ("handled", "published", "duplicates_skipped", "dead_lettered", "retried", "released",
                 "publish_failures")
BREAKER_LEVELS = {"closed": 0, "half_open": 1, "open": 2}


@dataclass
class Snapshot:
    """What one scrape saw: the supervisor's status and stats, and each consumer's lag."""

    status: Mapping[str, Any]
    stats: Mapping[str, Any]
    lag: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # durable -> (pending, ack pending)
    #: child -> its process's garbage collections (`WorkerBase.gc_stats`: collections, seconds, longest_s)
    gc: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def families(snap: Snapshot) -> list[Metric]:
    up = GaugeMetricFamily("trade_child_up", "1 when the child actor is running", labels=["child", "path"])
    restarts = CounterMetricFamily("trade_child_restarts", "restarts of the child so far", labels=["child", "path"])
    window = GaugeMetricFamily("trade_child_restarts_in_window", "restarts inside its supervisor's intensity "
                               "period", labels=["child", "path"])
    for child in snap.status.get("children", []):
        labels = [child["id"], child.get("path", child["id"])]
        up.add_metric(labels, 1.0 if child["state"] == "running" else 0.0)
        restarts.add_metric(labels, float(child["restarts"]))
        window.add_metric(labels, float(child.get("restarts_in_window", 0)))
    supervisors = GaugeMetricFamily("trade_supervisor_running", "1 when the supervisor runs (0: it escalated)",
                                    labels=["path", "strategy"])
    for node in snap.status.get("supervisors", []):
        supervisors.add_metric([node["path"], node["strategy"]], 1.0 if node["state"] == "running" else 0.0)
    gave_up = GaugeMetricFamily("trade_root_gave_up", "1 when the root supervisor gave up (trading halted)")
    gave_up.add_metric([], 1.0 if snap.status.get("gave_up") else 0.0)
    standby = GaugeMetricFamily("trade_standby_ready", "warm standby actors ready per stage", labels=["stage"])
    for stage, pids in (snap.status.get("standby") or {}).items():
        standby.add_metric([stage], float(len(pids)))
    spares = GaugeMetricFamily("trade_spares_ready", "spare processes ready to become a child of any kind")
    spares.add_metric([], float(len(snap.status.get("spares") or [])))
    breaker = GaugeMetricFamily("trade_breaker_state", "venue circuit breaker: 0 closed, 1 half-open, 2 open",
                                labels=["venue"])
    for venue, state in (snap.status.get("breakers") or {}).items():
        breaker.add_metric([venue], float(BREAKER_LEVELS.get(state.split(" ")[0], 2)))
    loops = {name: CounterMetricFamily(f"trade_consumer_{name}", f"consumer loop: {name.replace('_', ' ')}",
                                       labels=["child", "consumer"]) for name in LOOP_COUNTERS}
    for child, per_consumer in snap.stats.items():
        if not isinstance(per_consumer, Mapping):
            continue
        for consumer, counters in per_consumer.items():
            if not isinstance(counters, Mapping):
                continue
            for name in LOOP_COUNTERS:
                if name in counters:
                    loops[name].add_metric([child, consumer], float(counters[name]))
    pending = GaugeMetricFamily("trade_consumer_pending", "messages not yet delivered to the consumer (lag)",
                                labels=["consumer"])
    ack_pending = GaugeMetricFamily("trade_consumer_ack_pending", "messages delivered but not yet acknowledged",
                                    labels=["consumer"])
    for durable, (waiting, unacked) in sorted(snap.lag.items()):
        pending.add_metric([durable], float(waiting))
        ack_pending.add_metric([durable], float(unacked))
    return [up, restarts, window, supervisors, gave_up, standby, spares, breaker, *loops.values(), pending, ack_pending,
            *_gc_families(snap.gc), *_alarm_families(snap.stats)]


def _alarm_families(stats: Mapping[str, Any]) -> list[Metric]:
    """Alarms raised per child and kind; a gateway's orders in doubt and the corrections it published."""
    alarms = CounterMetricFamily("trade_alarms", "alarms raised (AlarmRaised on supervision.alarm.<kind>)",
                                 labels=["child", "kind"])
    in_doubt = GaugeMetricFamily("trade_orders_in_doubt", "orders that may be at the venue with no answer from it "
                                 "yet (pending until it answers)", labels=["child"])
    corrections = CounterMetricFamily("trade_execution_corrections", "venue reports published as corrections of "
                                      "what our books had closed", labels=["child"])
    for child, per_child in sorted(stats.items()):
        if not isinstance(per_child, Mapping):
            continue
        for kind, count in sorted((per_child.get("alarms") or {}).items()):
            alarms.add_metric([child, kind], float(count))
        orders = per_child.get("orders")
        if isinstance(orders, Mapping):
            in_doubt.add_metric([child], float(orders.get("in_doubt", 0)))
            corrections.add_metric([child], float(orders.get("corrections", 0)))
    return [alarms, in_doubt, corrections]


def _gc_families(per_child: Mapping[str, Mapping[str, Any]]) -> list[Metric]:
    collections = CounterMetricFamily("trade_gc_collections", "garbage collections of the child's process",
                                      labels=["child", "generation"])
    seconds = CounterMetricFamily("trade_gc_seconds", "seconds the child's process spent collecting garbage",
                                  labels=["child", "generation"])
    longest = GaugeMetricFamily("trade_gc_longest_pause_seconds", "the longest collection (an event-loop stall)",
                                labels=["child"])
    for child, gc in sorted(per_child.items()):
        for generation, (count, secs) in enumerate(zip(gc.get("collections", ()), gc.get("seconds", ()),
                                                       strict=False)):
            collections.add_metric([child, str(generation)], float(count))
            seconds.add_metric([child, str(generation)], float(secs))
        longest.add_metric([child], float(gc.get("longest_s", 0.0)))
    return [collections, seconds, longest]


async def take_snapshot(supervisor: Any, js: Any, consumers: Iterable[tuple[str, str]]) -> Snapshot:
    """Ask the root supervisor (a Ray actor handle) and JetStream; `consumers` are (stream, durable)."""
    status = await supervisor.status.remote()
    stats = await supervisor.stats.remote()
    running = [c["id"] for c in status.get("children", []) if c.get("state") == "running"]
    answers = await asyncio.gather(*(supervisor.call_child.remote(c, "gc_stats") for c in running),
                                   return_exceptions=True)
    # A child that is restarting (or has no GC clock) is left out of this scrape.
    gc = {c: a for c, a in zip(running, answers, strict=True) if not isinstance(a, BaseException)}
    lag: dict[str, tuple[int, int]] = {}
    for stream, durable in consumers:
        try:
            info = await js.consumer_info(stream, durable)
        except Exception:  # a consumer that is being recreated: left out of this scrape
            continue
        lag[durable] = (int(info.num_pending or 0), int(info.num_ack_pending or 0))
    return Snapshot(status, stats, lag, gc)


class SystemCollector:
    """A prometheus_client collector: each scrape runs `snapshot()` (a blocking call) and exports it."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterable[Metric]:
        try:
            snap = self._snapshot()
        except Exception:  # the system is away: say so instead of failing the scrape
            down = GaugeMetricFamily("trade_up", "1 when the exporter could reach the system")
            down.add_metric([], 0.0)
            return [down]
        up = GaugeMetricFamily("trade_up", "1 when the exporter could reach the system")
        up.add_metric([], 1.0)
        return [up, *families(snap)]


def run_coroutine(loop: asyncio.AbstractEventLoop, coro: Any, timeout: float) -> Any:
    """Run `coro` on `loop` (running in another thread) and wait for it."""
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)
