"""The risk stage's own settings (`stages.risk` in the config, beside replicas and delivery)."""

from __future__ import annotations

from pydantic import Field

from actors.domain.risk_limits import RiskConfig
from actors.domain.settings import Settings

__all__ = ["RiskSettings", "RiskStageSettings"]


class RiskSettings(Settings):
    #: Decided order ids each partition remembers (the latest, beside every working order): the risk
    #: stage's own check for a re-used order id. Copies of an order are dropped before that by the
    #: broker, for as long as the streams keep the original (`nats.duplicate_window`).
    remember_order_ids: int = Field(10_000, ge=1)


class RiskStageSettings(RiskSettings):
    """What a risk replica needs: its own settings, the limits, and the names it checks orders against."""

    partitions: int = Field(ge=1)
    risk: RiskConfig = RiskConfig()
    venues: tuple[str, ...] = ()
    allocation_profiles: tuple[str, ...] = ()
