"""The one config file: streams, partitions, venues, stages, replicas, supervision, risk, allocation.

Validated by pydantic; unknown keys are errors that name the key's path.
"""

from __future__ import annotations

import os
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from actors.domain.venue_calendar import parse_end_of_day
from actors.runtime.units import ByteSize, Duration

__all__ = [
    "EMBEDDED_URL_ENV",
    "AllocationMethod",
    "AllocationProfile",
    "BackoffConfig",
    "ConfigError",
    "DeliveryConfig",
    "GatewayStage",
    "NatsConfig",
    "RiskConfig",
    "RiskLimits",
    "RiskStage",
    "StageConfig",
    "StagesConfig",
    "SupervisionConfig",
    "SystemConfig",
    "VenueConfig",
    "VenueMode",
    "load_config",
    "parse_config",
    "resolve_nats_url",
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
    #: How long the broker recognises a copy of an order-path event by its id (None: as long as the
    #: streams keep it, max_age). The broker keeps each id of the window in memory (a few hundred bytes
    #: per message): shorten it to trade that memory for copies older than it reaching the stages.
    duplicate_window: Duration | None = None


class VenueMode(StrEnum):
    FILL_ALL = "fill_all"
    BOOK = "book"


class VenueConfig(_Strict):
    mode: VenueMode = VenueMode.FILL_ALL
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "TSLA")
    num_cpus: float = Field(0.1, gt=0, le=64)
    #: Book mode: how often the reference prices take a random-walk step and the quotes move.
    tick: Duration = Field(0.5, gt=0)
    #: Book mode: the random walk's seed (the same seed gives the same prices).
    seed: int = 7
    #: Book mode: the liquidity provider's price levels per side and quantity per level.
    levels: int = Field(3, ge=1, le=50)
    quote_qty: int = Field(500, ge=1)
    #: End of the trading day, HH:MM UTC on the venue host's clock: every resting DAY order expires, and
    #: the orders that finished before the previous end of day are forgotten.
    end_of_day: str = "21:00"
    #: When set, a trading day lasts this long from the venue's start instead (tests and soak runs).
    day_length: Duration | None = None
    #: A snapshot of the venue's state (object store VENUE_SNAPSHOTS) every this many journal records,
    #: or every `snapshot_interval` when anything changed, and at every end of day; the journal is
    #: trimmed up to the snapshot, so a restart replays only what came after it.
    snapshot_every: int = Field(5000, ge=1)
    snapshot_interval: Duration = Field(60.0, gt=0)

    @field_validator("end_of_day")
    @classmethod
    def _hh_mm(cls, value: str) -> str:
        parse_end_of_day(value)
        return value

    @field_validator("day_length")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("day_length must be positive")
        return value


class DeliveryConfig(_Strict):
    ack_wait: Duration = 5.0
    max_deliver: int = Field(5, ge=1)
    backoff: tuple[Duration, ...] = (0.1, 0.2, 0.4)
    max_ack_pending: int = Field(1000, ge=1)
    batch: int = Field(128, ge=1, le=4096)


class StageConfig(_Strict):
    replicas: int = Field(1, ge=1, le=64)
    num_cpus: float = Field(0.1, gt=0, le=64)
    #: Warm spares: started and connected, each takes a dead replica's consumers over at once.
    standby: int = Field(0, ge=0, le=8)
    delivery: DeliveryConfig = DeliveryConfig()


class BreakerConfig(_Strict):
    """A venue's circuit breaker (see supervision.breaker)."""

    failure_rate: float = Field(0.5, gt=0, le=1)
    window: int = Field(20, ge=1)
    min_calls: int = Field(5, ge=1)
    consecutive_failures: int | None = Field(None, ge=1)
    slow_call: Duration | None = None
    open_timeout: Duration = 1.0
    max_open_timeout: Duration = 30.0
    half_open_calls: int = Field(1, ge=1)

    def settings(self, call_timeout: float) -> Any:
        from supervision.breaker import BreakerSettings

        return BreakerSettings(failure_rate=self.failure_rate, window=self.window, min_calls=self.min_calls,
                               consecutive_failures=self.consecutive_failures, slow_call_s=self.slow_call,
                               call_timeout=call_timeout, open_timeout=self.open_timeout,
                               max_open_timeout=self.max_open_timeout, half_open_calls=self.half_open_calls)


class GatewayStage(StageConfig):
    #: How long one send to the venue may take before it counts as failed.
    call_timeout: Duration = 2.0
    #: How long an order may wait for an unavailable venue before it is rejected with VENUE_UNAVAILABLE.
    max_hold: Duration = 30.0
    #: Retries of a failed send: exponential from `retry_min` to `retry_max`, with +-20% jitter.
    retry_min: Duration = 0.1
    retry_max: Duration = 2.0
    breaker: BreakerConfig = BreakerConfig()

    @model_validator(mode="after")
    def _one_active(self) -> Self:
        if self.replicas != 1:
            raise ValueError("gateway.replicas must be 1: one active gateway per venue")
        return self


class RiskStage(StageConfig):
    #: Decided order ids each partition remembers (the latest, beside every working order): the risk
    #: stage's own check for a re-used order id. Copies of an order are dropped before that by the
    #: broker, for as long as the streams keep the original (`nats.duplicate_window`).
    remember_order_ids: int = Field(10_000, ge=1)


class StagesConfig(_Strict):
    risk: RiskStage = RiskStage(replicas=2)
    gateway: GatewayStage = GatewayStage()
    allocator: StageConfig = StageConfig(replicas=2)


class BackoffConfig(_Strict):
    min: Duration = 0.05
    max: Duration = 5.0
    jitter: float = Field(0.2, ge=0, le=1)
    reset_after: Duration = 30.0


_STRATEGY = "^(one_for_one|one_for_all|rest_for_one)$"


class SubtreeConfig(_Strict):
    """One supervisor below the root. Unset values are the root's (the venue subtrees default to
    rest_for_one: a restarted venue session restarts its gateway, which reconciles)."""

    strategy: str | None = Field(None, pattern=_STRATEGY)
    intensity: int | None = Field(None, ge=0)
    period: Duration | None = None


class ChildConfig(_Strict):
    """A child spec's policy: restart permanent (always), transient (after an abnormal exit) or
    temporary (never); `shutdown`: how long it may drain before it is killed."""

    restart: str = Field("permanent", pattern="^(permanent|transient|temporary)$")
    shutdown: Duration = 10.0


_SUBTREES = Literal["venue", "risk", "allocator"]
_CHILD_KINDS = Literal["venue", "gateway", "risk", "allocator", "positions"]
_DIRECTIVE = "^(resume|restart|stop|escalate)$"


class SupervisionConfig(_Strict):
    strategy: str = Field("one_for_one", pattern=_STRATEGY)
    intensity: int = Field(3, ge=0)
    period: Duration = 5.0
    #: The supervisors under the root: one per venue (venue session + gateway), risk, allocator.
    supervisors: dict[_SUBTREES, SubtreeConfig] = {}
    #: Child specs by kind.
    children: dict[_CHILD_KINDS, ChildConfig] = {}
    #: Handler exceptions by type name -> resume (retry / dead-letter the message, the default),
    #: restart (replace the actor), stop (stop it for good) or escalate (fail its supervisor).
    deciders: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.]*$")],
                   Annotated[str, StringConstraints(pattern=_DIRECTIVE)]] = {}
    #: Each child is asked for a heartbeat this often; `heartbeat_misses` missed (or no progress with
    #: work pending for as long) means hung: it is killed and restarted.
    heartbeat: Duration = 0.5
    heartbeat_misses: int = Field(3, ge=1)
    backoff: BackoffConfig = BackoffConfig()
    num_cpus: float = Field(0.1, gt=0, le=64)
    #: Spare processes kept started (Ray worker up, code imported) that can become a child of any kind:
    #: a replacement then skips the process start and imports. 0 = every replacement starts cold.
    spares: int = Field(1, ge=0, le=8)
    #: The resources a spare reserves; it hosts only children that need no more than this.
    spare_num_cpus: float = Field(0.1, gt=0, le=64)
    #: A used standby or spare is replaced this long after it took over, so that starting a process
    #: (about 0.7 s of CPU) does not compete with the replacement's rebuild and catch-up. 0 = at once.
    spare_refill_delay: Duration = 3.0
    #: Unix nice value of every process the tree runs in (supervisor, children, spares). Ray starts its
    #: worker processes at 15 unless told otherwise, below the broker and the drivers (0): on a busy
    #: machine the stages then get a small share of the CPU and the order path queues behind the
    #: processes that feed it. 0 runs them at the same priority as everything else on the path.
    niceness: int = Field(0, ge=0, le=19)
    #: Every process of the tree leads its own session, so the kernel's autogroup scheduling weighs each
    #: one like the broker or a driver instead of lumping the whole tree (and Ray's daemons) into one
    #: group (see supervision.scheduling). False leaves the processes in Ray's session.
    own_session: bool = True


class RiskLimits(_Strict):
    """One account's pre-trade limits. A limit that is None is not checked."""

    #: The longest `rate_window` a throttle may use (risk state keeps no older order timestamps).
    MAX_RATE_WINDOW: ClassVar[float] = 3600.0

    max_order_qty: int | None = Field(None, gt=0)
    max_notional: Decimal | None = Field(None, gt=0, allow_inf_nan=False)
    #: Price collar in percent: a limit price must be within +-collar_pct % of the reference price.
    collar_pct: Decimal | None = Field(None, gt=0, allow_inf_nan=False)
    #: Per symbol: |position + working orders on the order's side + the order| may not exceed this.
    max_position: int | None = Field(None, gt=0)
    #: Per account: sum of |position| * price plus working and new order notional.
    max_gross_exposure: Decimal | None = Field(None, gt=0, allow_inf_nan=False)
    #: Sliding-window order-rate throttle per account: at most this many approved orders per window.
    max_orders_per_window: int | None = Field(None, gt=0)
    rate_window: Duration = 1.0
    restricted_symbols: tuple[Annotated[str, StringConstraints(pattern=r"^[A-Z0-9.\-]{1,16}$")], ...] = ()

    @field_validator("rate_window")
    @classmethod
    def _window_in_range(cls, value: float) -> float:
        if not 0 < value <= cls.MAX_RATE_WINDOW:
            raise ValueError(f"rate_window must be above 0s and at most {cls.MAX_RATE_WINDOW:g}s, not {value:g}s")
        return value


class AllocationMethod(StrEnum):
    """How a profile's `split` values are read.

    percent: percentages summing to 100; ratio: positive integer weights (e.g. {A: 2, B: 1});
    fixed: positive integer share quantities, filled in the profile's account order.
    """

    PERCENT = "percent"
    RATIO = "ratio"
    FIXED = "fixed"


class AllocationProfile(_Strict):
    method: AllocationMethod = AllocationMethod.PERCENT
    split: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,32}$")], Decimal]
    lot: int = Field(1, ge=1)
    #: Receives the odd-lot leftover (total % lot), and with method fixed any fill beyond the fixed total.
    odd_lot_account: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,32}$")] | None = None

    @field_validator("split")
    @classmethod
    def _split_fits_method(cls, split: dict[str, Decimal], info: ValidationInfo) -> dict[str, Decimal]:
        method = info.data.get("method")
        if method is None:
            return split  # the method itself is invalid and reported on its own
        if not split:
            raise ValueError("split needs at least one account")
        if any(not v.is_finite() for v in split.values()):
            raise ValueError("every split value must be a finite number")
        if method is AllocationMethod.PERCENT:
            if any(v <= 0 for v in split.values()):
                raise ValueError("every split percentage must be positive")
            if sum(split.values()) != 100:
                raise ValueError(f"percent split must sum to 100, not {sum(split.values())}")
        else:
            what = "ratio weight" if method is AllocationMethod.RATIO else "fixed quantity"
            for account, value in split.items():
                if value <= 0 or value != value.to_integral_value():
                    raise ValueError(f"every {what} must be a positive whole number, not {value} for {account}")
        return split

    @field_validator("lot")
    @classmethod
    def _lot_fits_method(cls, lot: int, info: ValidationInfo) -> int:
        if lot != 1 and info.data.get("method") is AllocationMethod.FIXED:
            raise ValueError("lot must be 1 with method fixed (the quantities are already whole shares)")
        return lot


class RiskConfig(_Strict):
    default: RiskLimits = RiskLimits(max_order_qty=10_000, max_notional=Decimal(1_000_000))
    accounts: dict[str, RiskLimits] = {}

    def limits_for(self, account: str) -> RiskLimits:
        """The default limits overlaid with the keys the account sets itself.

        A key the account leaves out or sets to null keeps the default. `restricted_symbols` adds up:
        an account is restricted in the default's symbols and in its own.
        """
        own = self.accounts.get(account)
        if own is None:
            return self.default
        merged = self.default.model_dump() | own.model_dump(exclude_unset=True, exclude_none=True)
        merged["restricted_symbols"] = tuple(
            dict.fromkeys((*self.default.restricted_symbols, *own.restricted_symbols))
        )
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


#: Where `trade up` puts its server's URL, for configs that say `nats: {url: embedded}`.
EMBEDDED_URL_ENV = "TRADE_NATS_URL"


def resolve_nats_url(cfg: SystemConfig) -> SystemConfig:
    """`url: embedded` means the local stack's server, whose URL `trade up` puts in TRADE_NATS_URL."""
    if cfg.nats.url != "embedded":
        return cfg
    url = os.environ.get(EMBEDDED_URL_ENV)
    if not url:
        raise ConfigError("nats.url is 'embedded' but no local stack is running here: run `trade up` first, "
                          f"set {EMBEDDED_URL_ENV}, or set nats.url to a nats:// URL")
    return cfg.with_nats_url(url)
