"""Allocation profiles: how a block order's fills are split across accounts (the allocator's settings)."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from actors.domain.settings import Settings

__all__ = ["AllocationMethod", "AllocationProfile"]


class AllocationMethod(StrEnum):
    """How a profile's `split` values are read.

    percent: percentages summing to 100; ratio: positive integer weights (e.g. {A: 2, B: 1});
    fixed: positive integer share quantities, filled in the profile's account order.
    """

    PERCENT = "percent"
    RATIO = "ratio"
    FIXED = "fixed"


class AllocationProfile(Settings):
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
