"""Pre-trade risk limits per account, with a default: the settings the risk rules read."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints, field_validator

from actors.domain.settings import Settings
from messages.units import Duration

__all__ = ["RiskConfig", "RiskLimits"]


class RiskLimits(Settings):
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


class RiskConfig(Settings):
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
