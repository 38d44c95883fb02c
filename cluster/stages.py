"""The stages the system runs: one entry per stage, naming its definition (a `StageDef`, by
`module:attribute`, loaded where it runs) and how its deployment (replicas, CPU, standbys, delivery)
and its own settings come out of the system's config. Consumer specs (cluster.topology) and the
supervision tree (cluster.plan) are generated from these entries: a new stage is its module plus one
`register(StageEntry(...))`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from actors.domain.settings import Settings
from actors.stages.allocator import AllocatorSettings
from actors.stages.definition import StageDef, load_stage
from actors.stages.gateway.stage import GatewayStageSettings
from actors.stages.risk_settings import RiskStageSettings
from cluster.config import StageConfig, SystemConfig

__all__ = ["StageEntry", "definition", "entries", "register", "stage_settings", "unregister"]


@dataclass(frozen=True)
class StageEntry:
    name: str
    #: `module:attribute` of its StageDef.
    definition: str
    deployment: Callable[[SystemConfig], StageConfig]
    settings: Callable[[SystemConfig], Settings]


def _risk(cfg: SystemConfig) -> Settings:
    return RiskStageSettings(remember_order_ids=cfg.stages.risk.remember_order_ids, partitions=cfg.partitions,
                             risk=cfg.risk, venues=tuple(cfg.venues),
                             allocation_profiles=tuple(cfg.allocation_profiles))


def _gateway(cfg: SystemConfig) -> Settings:
    gw = cfg.stages.gateway
    return GatewayStageSettings(call_timeout=gw.call_timeout, max_hold=gw.max_hold, retry_min=gw.retry_min,
                                retry_max=gw.retry_max, breaker=gw.breaker, partitions=cfg.partitions)


def _allocator(cfg: SystemConfig) -> Settings:
    return AllocatorSettings(partitions=cfg.partitions, allocation_profiles=cfg.allocation_profiles)


#: In start order: a venue's stages start with its session (venue scope), then the partitioned ones.
_REGISTRY: dict[str, StageEntry] = {e.name: e for e in (
    StageEntry("gateway", "actors.stages.gateway.stage:STAGE", lambda cfg: cfg.stages.gateway, _gateway),
    StageEntry("risk", "actors.stages.risk_stage:STAGE", lambda cfg: cfg.stages.risk, _risk),
    StageEntry("allocator", "actors.stages.allocator:STAGE", lambda cfg: cfg.stages.allocator, _allocator),
)}


def register(entry: StageEntry) -> None:
    """Add a stage (or replace the one of that name)."""
    _REGISTRY[entry.name] = entry


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def entries() -> list[StageEntry]:
    return list(_REGISTRY.values())


def definition(entry: StageEntry) -> StageDef:
    return load_stage(entry.definition)


def stage_settings(cfg: SystemConfig, name: str) -> Settings:
    """The settings the stage named `name` gets from this config."""
    return _REGISTRY[name].settings(cfg)
