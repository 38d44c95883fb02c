"""A venue simulator's own settings (`venues.<V>` in the config)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, field_validator

from actors.domain.settings import Settings
from actors.domain.venue_calendar import parse_end_of_day
from messages.units import Duration

__all__ = ["VenueConfig", "VenueMode"]


class VenueMode(StrEnum):
    FILL_ALL = "fill_all"
    BOOK = "book"


class VenueConfig(Settings):
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
