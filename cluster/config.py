"""The one config file: streams, partitions, venues, stages, replicas, supervision, risk, allocation.

Validated by pydantic; unknown keys are errors that name the key's path.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cluster.units import ByteSize, Duration

__all__ = [
    "AllocationProfile",
    "BackoffConfig",
    "ConfigError",
    "DeliveryConfig",
    "GatewayStage",
    "NatsConfig",
    "RiskLimits",
    "StageConfig",
    "StagesConfig",
    "SupervisionConfig",
    "SystemConfig",
    "VenueConfig",
    "VenueMode",
    "load_config",
    "parse_config",
]


class ConfigError(ValueError):
    """A config file that cannot be used; the message names each bad key's path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NatsConfig(_Strict):
    url: str = "embedded"
    stream_replicas: int = Field(1, ge=1, le=5)
    max_age: Duration = 7 * 86400.0
    max_bytes: ByteSize = 10 * 2**30
    connect_timeout: Duration = 5.0


class VenueMode(StrEnum):
    FILL_ALL = "fill_all"
    BOOK = "book"


class VenueConfig(_Strict):
    mode: VenueMode = VenueMode.FILL_ALL
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "TSLA")
    num_cpus: float = Field(0.1, gt=0, le=64)


class DeliveryConfig(_Strict):
    ack_wait: Duration = 5.0
    max_deliver: int = Field(5, ge=1)
    backoff: tuple[Duration, ...] = (0.1, 0.2, 0.4)
    max_ack_pending: int = Field(1000, ge=1)
    batch: int = Field(128, ge=1, le=4096)


class StageConfig(_Strict):
    replicas: int = Field(1, ge=1, le=64)
    num_cpus: float = Field(0.1, gt=0, le=64)
    delivery: DeliveryConfig = DeliveryConfig()


class GatewayStage(StageConfig):
    call_timeout: Duration = 2.0

    @model_validator(mode="after")
    def _one_active(self) -> Self:
        if self.replicas != 1:
            raise ValueError("gateway.replicas must be 1: one active gateway per venue")
        return self


class StagesConfig(_Strict):
    risk: StageConfig = StageConfig(replicas=2)
    gateway: GatewayStage = GatewayStage()
    allocator: StageConfig = StageConfig(replicas=2)


class BackoffConfig(_Strict):
    min: Duration = 0.05
    max: Duration = 5.0
    jitter: float = Field(0.2, ge=0, le=1)
    reset_after: Duration = 30.0


class SupervisionConfig(_Strict):
    strategy: str = Field("one_for_one", pattern="^one_for_one$")
    intensity: int = Field(3, ge=0)
    period: Duration = 5.0
    backoff: BackoffConfig = BackoffConfig()
    num_cpus: float = Field(0.1, gt=0, le=64)


class RiskLimits(_Strict):
    max_order_qty: int | None = Field(None, gt=0)
    max_notional: Decimal | None = Field(None, gt=0)


class AllocationMethod(StrEnum):
    PERCENT = "percent"


class AllocationProfile(_Strict):
    method: AllocationMethod = AllocationMethod.PERCENT
    split: dict[str, Decimal]
    lot: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _split_is_whole(self) -> Self:
        if not self.split:
            raise ValueError("split needs at least one account")
        if any(v <= 0 for v in self.split.values()):
            raise ValueError("every split percentage must be positive")
        if sum(self.split.values()) != 100:
            raise ValueError(f"percent split must sum to 100, not {sum(self.split.values())}")
        return self


class RiskConfig(_Strict):
    default: RiskLimits = RiskLimits(max_order_qty=10_000, max_notional=Decimal(1_000_000))
    accounts: dict[str, RiskLimits] = {}

    def limits_for(self, account: str) -> RiskLimits:
        """The default limits overlaid with the account's own."""
        own = self.accounts.get(account)
        if own is None:
            return self.default
        merged = self.default.model_dump() | own.model_dump(exclude_none=True)
        return RiskLimits(**merged)


class SystemConfig(_Strict):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9\-]{0,30}$")] = "trading"
    nats: NatsConfig = NatsConfig()
    partitions: int = Field(16, ge=1, le=1024)
    venues: dict[str, VenueConfig] = {"SIM": VenueConfig()}
    stages: StagesConfig = StagesConfig()
    supervision: SupervisionConfig = SupervisionConfig()
    risk: RiskConfig = RiskConfig()
    allocation_profiles: dict[str, AllocationProfile] = {}

    @model_validator(mode="after")
    def _names(self) -> Self:
        if not self.venues:
            raise ValueError("at least one venue is needed")
        for venue in self.venues:
            if not venue.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"venue name {venue!r} must be letters, digits, '_' or '-'")
        return self

    def with_nats_url(self, url: str) -> SystemConfig:
        return self.model_copy(update={"nats": self.nats.model_copy(update={"url": url})})


def _format(exc: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
        if err["type"] == "extra_forbidden":
            lines.append(f"  {loc}: unknown key")
        else:
            lines.append(f"  {loc or '<root>'}: {err['msg']}")
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> SystemConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping")
    try:
        return SystemConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format(exc, source)) from None


def load_config(path: str | Path) -> SystemConfig:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid config {path}: not valid YAML: {exc}") from None
    return parse_config(data, str(path))
