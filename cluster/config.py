"""The one config file: streams, partitions, venues, stages, replicas, supervision, risk, allocation.

Validated by pydantic; unknown keys are errors that name the key's path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from actors.domain.allocation_profile import AllocationMethod, AllocationProfile
from actors.domain.risk_limits import RiskConfig, RiskLimits
from actors.runtime.settings import DeliveryConfig
from actors.stages.gateway.settings import BreakerConfig, GatewaySettings
from actors.stages.risk_settings import RiskSettings
from actors.stages.venue.settings import VenueConfig, VenueMode
from cluster.errors import TradingError
from cluster.local.procs import pid_alive
from cluster.local.stack import STACK_ENV, STATE_DIR, load_state
from messages.units import ByteSize, Duration
from supervision.settings import BackoffConfig, ChildConfig, SubtreeConfig, SupervisionConfig

__all__ = [
    "EMBEDDED_URL_ENV",
    "AllocationMethod",
    "AllocationProfile",
    "BackoffConfig",
    "BreakerConfig",
    "ChildConfig",
    "ConfigError",
    "DeliveryConfig",
    "GatewayStage",
    "NatsConfig",
    "RiskConfig",
    "RiskLimits",
    "RiskStage",
    "StageConfig",
    "StagesConfig",
    "SubtreeConfig",
    "SupervisionConfig",
    "SystemConfig",
    "VenueConfig",
    "VenueMode",
    "load_config",
    "parse_config",
    "resolve_nats_url",
]


#: The supervisors under the root (`supervision.supervisors`) and the kinds of child
#: (`supervision.children`) a config may set policies for.
SUBTREE_KINDS = ("venue", "risk", "allocator")
CHILD_KINDS = ("venue", "gateway", "risk", "allocator", "positions")


class ConfigError(TradingError, ValueError):
    """A config file that cannot be used; the message names each bad key's path."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NatsConfig(_Strict):
    url: str = "embedded"
    stream_replicas: int = Field(1, ge=1, le=5)
    max_age: Duration = 7 * 86400.0
    max_bytes: ByteSize = 10 * 2**30
    connect_timeout: Duration = 5.0
    #: How long the broker recognises a copy of an order-path event by its id (None: as long as the
    #: streams keep it, max_age). The broker keeps each id of the window in memory (a few hundred bytes
    #: per message): shorten it to trade that memory for copies older than it reaching the stages.
    duplicate_window: Duration | None = None


class StageConfig(_Strict):
    replicas: int = Field(1, ge=1, le=64)
    num_cpus: float = Field(0.1, gt=0, le=64)
    #: Warm spares: started and connected, each takes a dead replica's consumers over at once.
    standby: int = Field(0, ge=0, le=8)
    delivery: DeliveryConfig = DeliveryConfig()


class GatewayStage(StageConfig, GatewaySettings):
    """A venue's gateway: one active per venue, its own settings beside the deployment's."""

    @model_validator(mode="after")
    def _one_active(self) -> Self:
        if self.replicas != 1:
            raise ValueError("gateway.replicas must be 1: one active gateway per venue")
        return self


class RiskStage(StageConfig, RiskSettings):
    """The risk replicas: deployment beside the stage's own settings."""


class StagesConfig(_Strict):
    risk: RiskStage = RiskStage(replicas=2)
    gateway: GatewayStage = GatewayStage()
    allocator: StageConfig = StageConfig(replicas=2)


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
        for key, known in (("supervisors", SUBTREE_KINDS), ("children", CHILD_KINDS)):
            unknown = sorted(set(getattr(self.supervision, key)) - set(known))
            if unknown:
                raise ValueError(f"supervision.{key}: unknown kind {unknown[0]!r}; known: {', '.join(known)}")
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


#: Where `trade up` puts its server's URL, for configs that say `nats: {url: embedded}`.
EMBEDDED_URL_ENV = "TRADE_NATS_URL"


def resolve_nats_url(cfg: SystemConfig) -> SystemConfig:
    """`url: embedded` means the local stack's server: the URL `trade up` puts in TRADE_NATS_URL (in the
    environment of everything it starts), else the one in the state of the stack running here
    (`.trade/`, or the directory TRADE_STACK_DIR names)."""
    if cfg.nats.url != "embedded":
        return cfg
    url = os.environ.get(EMBEDDED_URL_ENV) or _running_stack_url()
    if not url:
        raise ConfigError("nats.url is 'embedded' but no local stack is running here: run `trade up` first, "
                          f"set {EMBEDDED_URL_ENV}, or set nats.url to a nats:// URL")
    return cfg.with_nats_url(url)


def _running_stack_url() -> str | None:
    state = load_state(Path(os.environ.get(STACK_ENV) or STATE_DIR))
    return state.nats_url if state is not None and pid_alive(state.nats_pid) else None
