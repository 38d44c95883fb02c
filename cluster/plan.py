"""The supervision tree the config implies (`tree_plan`), for the root supervisor: generated from the
registered stages (cluster.stages), each child's payload written here, the only place that knows both
the system's config and what each child needs.

    root                      supervision.strategy / intensity / period
      <venue>                 per venue: the venue session, then its venue-scoped stages (rest_for_one)
      <stage>                 per partitioned stage: its replicas (one_for_one)
      positions               the positions projection (and the advisories' dead letters)
"""

from __future__ import annotations

from typing import Any

from actors.runtime.consumer_spec import ConsumerSpec
from actors.stages.payload import ChildPayload
from actors.stages.positions_worker import PositionsSettings
from cluster import stages
from cluster.config import SystemConfig
from cluster.topology import ADVISORIES_DURABLE, consumer_specs
from supervision.spec import ChildSpec, NodeSpec, Restart, StandbyPool, TreePlan

__all__ = ["HOST", "partitions_of_replica", "tree_plan"]

#: The Ray actor class every child runs in.
HOST = "actors.stages.host:ChildHost"


def partitions_of_replica(partitions: int, replicas: int, index: int) -> list[int]:
    """Partition p is owned by replica p % replicas: every partition has exactly one owner."""
    return [p for p in range(partitions) if p % replicas == index]


def _payload(cfg: SystemConfig, kind: str, **fields: Any) -> str:
    return ChildPayload(kind=kind, system=cfg.name, nats_url=cfg.nats.url,  # type: ignore[arg-type]
                        partitions=cfg.partitions, own_session=cfg.supervision.own_session,
                        deciders=dict(cfg.supervision.deciders), **fields).model_dump_json()


def _child(cfg: SystemConfig, child_id: str, kind: str, num_cpus: float, payload: str,
           pool: str | None = None) -> ChildSpec:
    policy = cfg.supervision.children.get(kind)
    return ChildSpec(id=child_id, kind=kind, num_cpus=num_cpus, payload=payload, pool=pool,
                     restart=Restart(policy.restart) if policy else Restart.PERMANENT,
                     shutdown=policy.shutdown if policy else 10.0)


def _node(cfg: SystemConfig, node_id: str, kind: str, default_strategy: str,
          members: list[ChildSpec | NodeSpec]) -> NodeSpec:
    sup = cfg.supervision
    own = sup.supervisors.get(kind)
    return NodeSpec(id=node_id, strategy=own.strategy if own and own.strategy else default_strategy,
                    intensity=own.intensity if own and own.intensity is not None else sup.intensity,
                    period=own.period if own and own.period is not None else sup.period, members=tuple(members))


def _stage_children(cfg: SystemConfig, entry: stages.StageEntry, specs: list[ConsumerSpec],
                    venue: str | None) -> list[ChildSpec]:
    defn = stages.definition(entry)
    deployment = entry.deployment(cfg)
    settings = entry.settings(cfg).model_dump(mode="json")
    mine = [s for s in specs if s.stage == defn.name]
    pool = defn.name if deployment.standby else None

    def child(child_id: str, consumers: list[ConsumerSpec]) -> ChildSpec:
        return _child(cfg, child_id, defn.name, deployment.num_cpus,
                      _payload(cfg, "stage", stage=entry.definition, settings=settings, consumers=tuple(consumers),
                               venue=venue), pool)

    if defn.scope == "venue":
        return [child(f"{defn.name}-{venue}", [s for s in mine if s.venue == venue])]
    out = []
    for i in range(deployment.replicas):
        owned = set(partitions_of_replica(cfg.partitions, deployment.replicas, i))
        consumers = [s for s in mine if s.partition in owned]
        if consumers:
            out.append(child(f"{defn.name}-{i}", consumers))
    return out


def _pools(cfg: SystemConfig) -> tuple[StandbyPool, ...]:
    pools = []
    for entry in stages.entries():
        deployment = entry.deployment(cfg)
        if deployment.standby:
            defn = stages.definition(entry)
            payload = _payload(cfg, "stage", stage=entry.definition,
                               settings=entry.settings(cfg).model_dump(mode="json"), standby=True)
            pools.append(StandbyPool(name=defn.name, count=deployment.standby, num_cpus=deployment.num_cpus,
                                     payload=payload))
    return tuple(pools)


def tree_plan(cfg: SystemConfig) -> TreePlan:
    """Start order: venues (each with its venue-scoped stages), the partitioned stages, positions;
    shutdown in reverse."""
    specs = consumer_specs(cfg)
    entries = stages.entries()
    venue_scoped = [e for e in entries if stages.definition(e).scope == "venue"]
    partitioned = [e for e in entries if stages.definition(e).scope == "partition"]
    members: list[ChildSpec | NodeSpec] = []
    for venue, vcfg in cfg.venues.items():
        session = _child(cfg, f"venue-{venue}", "venue", vcfg.num_cpus,
                         _payload(cfg, "venue", settings=vcfg.model_dump(mode="json"), venue=venue))
        scoped = [c for e in venue_scoped for c in _stage_children(cfg, e, specs, venue)]
        members.append(_node(cfg, venue, "venue", "rest_for_one", [session, *scoped]))
    for entry in partitioned:
        name = stages.definition(entry).name
        members.append(_node(cfg, name, name, "one_for_one", list(_stage_children(cfg, entry, specs, None))))
    advisories = next(s for s in specs if s.durable == ADVISORIES_DURABLE)
    positions_settings = PositionsSettings(stage_of={s.durable: s.stage for s in specs})
    members.append(_child(cfg, "positions", "positions", cfg.stages.allocator.num_cpus,
                          _payload(cfg, "projection", settings=positions_settings.model_dump(mode="json"),
                                   consumers=(advisories,))))
    sup = cfg.supervision
    root = NodeSpec(id="root", strategy=sup.strategy, intensity=sup.intensity, period=sup.period,
                    members=tuple(members))
    return TreePlan(system=cfg.name, nats_url=cfg.nats.url, supervision=sup, root=root, pools=_pools(cfg),
                    host=HOST, breakers=tuple(cfg.venues))
