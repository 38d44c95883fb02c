"""Pure allocation maths: split a block order's fills across accounts by percentage.

No Ray or NATS here. Allocation is cumulative: after every fill the whole cumulative quantity is
split again, and the fill's delta is the change from the split before it. So a sequence of partial
fills always ends at exactly the split of the final quantity, whatever the sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from cluster.config import AllocationProfile

__all__ = ["FillAllocation", "allocate_fill", "split_percent"]


def split_percent(total: int, split: Mapping[str, Decimal], lot: int = 1) -> dict[str, int]:
    """Split `total` shares by percentages (summing to 100) with the largest-remainder method.

    Whole lots (``total // lot``) are shared out first: each account gets the floor of its quota,
    and the lots left over go one each to the largest remainders (ties: larger percentage first,
    then account name ascending). The odd-lot leftover (``total % lot`` shares) goes to the account
    with the largest percentage (ties: name ascending). Every account is in the result (0 allowed)
    and the result sums exactly to `total`.
    """
    if total < 0:
        raise ValueError(f"total must be >= 0, not {total}")
    if lot < 1:
        raise ValueError(f"lot must be >= 1, not {lot}")
    if not split:
        raise ValueError("split needs at least one account")
    percents = {account: Fraction(pct) for account, pct in split.items()}
    if any(pct < 0 for pct in percents.values()):
        raise ValueError("split percentages cannot be negative")
    if sum(percents.values()) != 100:
        raise ValueError(f"split percentages must sum to 100, not {sum(split.values())}")

    lots = total // lot
    quotas = {account: lots * pct / 100 for account, pct in percents.items()}
    shares = {account: int(quota) for account, quota in quotas.items()}  # floor: quotas are >= 0
    leftover = lots - sum(shares.values())
    by_remainder = sorted(percents, key=lambda a: (-(quotas[a] - shares[a]), -percents[a], a))
    for account in by_remainder[:leftover]:
        shares[account] += 1

    result = {account: n * lot for account, n in shares.items()}
    odd = total % lot
    if odd:
        first = min(percents, key=lambda a: (-percents[a], a))
        result[first] += odd
    return result


@dataclass(frozen=True)
class FillAllocation:
    """One fill's allocation: the cumulative lines and this fill's change to them."""

    lines: dict[str, int]
    """Cumulative quantity per account; sums to cum_qty."""
    delta: dict[str, int]
    """This fill's change per account; sums to last_qty (negative where the split re-balances)."""


def allocate_fill(
    cum_qty: int, last_qty: int, profile: AllocationProfile | None, block_account: str
) -> FillAllocation:
    """Allocate a fill of `last_qty` that brings an order's cumulative fill to `cum_qty`.

    With no profile, everything goes to `block_account`.
    """
    if not 0 < last_qty <= cum_qty:
        raise ValueError(f"need 0 < last_qty <= cum_qty, got last_qty={last_qty}, cum_qty={cum_qty}")
    if profile is None:
        return FillAllocation(lines={block_account: cum_qty}, delta={block_account: last_qty})
    lines = split_percent(cum_qty, profile.split, profile.lot)
    before = split_percent(cum_qty - last_qty, profile.split, profile.lot)
    delta = {account: qty - before[account] for account, qty in lines.items()}
    return FillAllocation(lines=lines, delta=delta)
