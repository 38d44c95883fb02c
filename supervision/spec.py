"""Child specs: what a supervisor starts, in which order, with which resources."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cluster.config import SystemConfig
from cluster.topology import consumer_specs

__all__ = ["ChildKind", "ChildSpec", "NodeSpec", "Restart", "child_specs", "partitions_of_replica", "tree_spec"]


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
    #: How long the child may drain (finish and ack its batch in hand) before it is killed.
    shutdown: float = 10.0

    @property
    def policy_kind(self) -> str:
        """The key of its policy in `supervision.children`: venue, gateway, risk, allocator, positions."""
        return self.kwargs.get("stage") or ("venue" if self.kind is ChildKind.VENUE else "positions")


@dataclass(frozen=True)
class NodeSpec:
    """A supervisor: its strategy and restart intensity over its ordered members (children or supervisors)."""

    id: str
    strategy: str
    intensity: int
    period: float
    members: tuple[ChildSpec | NodeSpec, ...]

    def walk(self) -> list[ChildSpec]:
        """Every child under this supervisor, in start order."""
        out: list[ChildSpec] = []
        for member in self.members:
            out.extend(member.walk() if isinstance(member, NodeSpec) else [member])
        return out


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
        mine = (f"gateway-{venue}", f"gateway-{venue}-cancel", f"gateway-{venue}-dropcopy")
        owned = [c.durable for c in consumers if c.stage == "gateway" and c.durable in mine]
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
    return [_with_policy(cfg, spec) for spec in specs]


def _with_policy(cfg: SystemConfig, spec: ChildSpec) -> ChildSpec:
    policy = cfg.supervision.children.get(spec.policy_kind)  # type: ignore[call-overload]
    if policy is None:
        return spec
    return ChildSpec(spec.id, spec.kind, spec.num_cpus, spec.kwargs, Restart(policy.restart), policy.shutdown)


def tree_spec(cfg: SystemConfig) -> NodeSpec:
    """root -> one supervisor per venue (venue session, then its gateway), the risk supervisor (replicas),
    the allocator supervisor (replicas), and the positions projection."""
    sup = cfg.supervision
    children = {c.id: c for c in child_specs(cfg)}

    def node(node_id: str, kind: str, default_strategy: str, members: list[ChildSpec]) -> NodeSpec:
        own = sup.supervisors.get(kind)  # type: ignore[call-overload]
        return NodeSpec(node_id,
                        (own.strategy if own and own.strategy else default_strategy),
                        own.intensity if own and own.intensity is not None else sup.intensity,
                        own.period if own and own.period is not None else sup.period,
                        tuple(members))

    members: list[ChildSpec | NodeSpec] = []
    for venue in cfg.venues:
        members.append(node(venue, "venue", "rest_for_one",
                            [children[f"venue-{venue}"], children[f"gateway-{venue}"]]))
    for stage in ("risk", "allocator"):
        replicas = [c for c in children.values() if c.kwargs.get("stage") == stage]
        members.append(node(stage, stage, "one_for_one", replicas))
    members.append(children["positions"])
    return NodeSpec("root", sup.strategy, sup.intensity, sup.period, tuple(members))
