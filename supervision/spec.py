"""Child specs: what a supervisor starts, in which order, with which resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cluster.config import SystemConfig
from cluster.topology import consumer_specs

__all__ = ["ChildKind", "ChildSpec", "Restart", "child_specs", "partitions_of_replica"]


class ChildKind(StrEnum):
    STAGE = "stage"
    VENUE = "venue"
    PROJECTION = "projection"


class Restart(StrEnum):
    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal exit
    TEMPORARY = "temporary"  # never restarted


@dataclass(frozen=True)
class ChildSpec:
    id: str
    kind: ChildKind
    num_cpus: float
    kwargs: dict[str, Any] = field(default_factory=dict)
    restart: Restart = Restart.PERMANENT


def partitions_of_replica(partitions: int, replicas: int, index: int) -> list[int]:
    """Partition p is owned by replica p % replicas: every partition has exactly one owner."""
    return [p for p in range(partitions) if p % replicas == index]


def child_specs(cfg: SystemConfig) -> list[ChildSpec]:
    """Start order: venues, gateways, risk replicas, allocator replicas, positions (shutdown: reverse)."""
    specs: list[ChildSpec] = []
    consumers = consumer_specs(cfg)
    by_partition: dict[tuple[str, int], list[str]] = {}
    for c in consumers:
        if c.partition is not None:
            by_partition.setdefault((c.stage, c.partition), []).append(c.durable)
    for venue, vcfg in cfg.venues.items():
        specs.append(ChildSpec(f"venue-{venue}", ChildKind.VENUE, vcfg.num_cpus, {"venue": venue}))
    for venue in cfg.venues:
        # The venue's approved orders first (the loop that places orders), then cancels and drop copy.
        owned = [c.durable for c in consumers if c.stage == "gateway" and c.durable.startswith(f"gateway-{venue}")
                 and c.durable in (f"gateway-{venue}", f"gateway-{venue}-cancel", f"gateway-{venue}-dropcopy")]
        specs.append(ChildSpec(f"gateway-{venue}", ChildKind.STAGE, cfg.stages.gateway.num_cpus,
                               {"stage": "gateway", "venue": venue, "durables": owned}))
    for stage in ("risk", "allocator"):
        scfg = getattr(cfg.stages, stage)
        for i in range(scfg.replicas):
            owned = [d for p in partitions_of_replica(cfg.partitions, scfg.replicas, i)
                     for d in by_partition[(stage, p)]]
            if owned:
                specs.append(ChildSpec(f"{stage}-{i}", ChildKind.STAGE, scfg.num_cpus,
                                       {"stage": stage, "durables": owned}))
    specs.append(ChildSpec("positions", ChildKind.PROJECTION, cfg.stages.allocator.num_cpus))
    return specs
