"""Pure allocation maths: split a block order's fills across accounts by percent, ratio or fixed quantity.

No Ray or NATS here. Allocation is cumulative: after every fill the whole cumulative quantity is
split again, and the fill's delta is the change from the split before it. So a sequence of partial
fills always ends at exactly the split of the final quantity, whatever the sequence. Every account
gets the block's average price (`block_average_price`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from fractions import Fraction

from actors.domain.allocation_profile import AllocationMethod, AllocationProfile

__all__ = [
    "FillAllocation",
    "allocate_fill",
    "block_average_price",
    "split_fixed",
    "split_percent",
    "split_profile",
    "split_ratio",
]


def _largest_remainder(
    total: int, weights: Mapping[str, Fraction], lot: int, odd_lot_account: str | None
) -> dict[str, int]:
    """Share `total // lot` whole lots in proportion to `weights` (positive, any sum) by largest
    remainder; ties go to the larger weight, then the name ascending. The odd-lot leftover
    (``total % lot``) goes to `odd_lot_account`, else to the largest weight (ties: name ascending).
    """
    whole = sum(weights.values())
    lots = total // lot
    quotas = {account: lots * w / whole for account, w in weights.items()}
    shares = {account: int(quota) for account, quota in quotas.items()}  # floor: quotas are >= 0
    leftover = lots - sum(shares.values())
    by_remainder = sorted(weights, key=lambda a: (-(quotas[a] - shares[a]), -weights[a], a))
    for account in by_remainder[:leftover]:
        shares[account] += 1

    result = {account: n * lot for account, n in shares.items()}
    if odd_lot_account is not None:
        result.setdefault(odd_lot_account, 0)
    odd = total % lot
    if odd:
        target = odd_lot_account or min(weights, key=lambda a: (-weights[a], a))
        result[target] += odd
    return result


def _check_args(total: int, split: Mapping[str, object], lot: int) -> None:
    if total < 0:
        raise ValueError(f"total must be >= 0, not {total}")
    if lot < 1:
        raise ValueError(f"lot must be >= 1, not {lot}")
    if not split:
        raise ValueError("split needs at least one account")


def split_percent(
    total: int, split: Mapping[str, Decimal], lot: int = 1, odd_lot_account: str | None = None
) -> dict[str, int]:
    """Split `total` shares by percentages (summing to 100) with the largest-remainder method.

    Whole lots (``total // lot``) are shared out first: each account gets the floor of its quota,
    and the lots left over go one each to the largest remainders (ties: larger percentage first,
    then account name ascending). The odd-lot leftover (``total % lot`` shares) goes to
    `odd_lot_account` if given, else to the account with the largest percentage (ties: name
    ascending). Every account (and the odd-lot account) is in the result, 0 allowed, and the result
    sums exactly to `total`.
    """
    _check_args(total, split, lot)
    percents = {account: Fraction(pct) for account, pct in split.items()}
    if any(pct < 0 for pct in percents.values()):
        raise ValueError("split percentages cannot be negative")
    if sum(percents.values()) != 100:
        raise ValueError(f"split percentages must sum to 100, not {sum(split.values())}")
    return _largest_remainder(total, percents, lot, odd_lot_account)


def split_ratio(
    total: int, weights: Mapping[str, Decimal | int], lot: int = 1, odd_lot_account: str | None = None
) -> dict[str, int]:
    """Split `total` shares by positive integer weights ({A: 2, B: 1} gives A two thirds).

    Same largest-remainder rules, tie-breaks and odd-lot handling as `split_percent`.
    """
    _check_args(total, weights, lot)
    fractions = {account: Fraction(w) for account, w in weights.items()}
    if any(w <= 0 or w.denominator != 1 for w in fractions.values()):
        raise ValueError("ratio weights must be positive whole numbers")
    return _largest_remainder(total, fractions, lot, odd_lot_account)


def split_fixed(
    total: int, quantities: Mapping[str, Decimal | int], odd_lot_account: str | None = None
) -> dict[str, int]:
    """Fill fixed quantities in the mapping's order: each account gets min(its quantity, what is left).

    Shares beyond the sum of the quantities go to `odd_lot_account`; with none, that is a
    ValueError (the block was over-filled for this profile). Every account (and the odd-lot
    account) is in the result, 0 allowed.
    """
    _check_args(total, quantities, 1)
    fixed = {account: Fraction(q) for account, q in quantities.items()}
    if any(q <= 0 or q.denominator != 1 for q in fixed.values()):
        raise ValueError("fixed quantities must be positive whole numbers")
    result: dict[str, int] = {}
    left = total
    for account, qty in fixed.items():
        result[account] = min(int(qty), left)
        left -= result[account]
    if odd_lot_account is not None:
        result.setdefault(odd_lot_account, 0)
        result[odd_lot_account] += left
    elif left:
        raise ValueError(
            f"{total} shares exceed the fixed total of {total - left} and there is no odd_lot_account"
        )
    return result


def split_profile(total: int, profile: AllocationProfile) -> dict[str, int]:
    """Split `total` shares the way `profile` says."""
    if profile.method is AllocationMethod.PERCENT:
        return split_percent(total, profile.split, profile.lot, profile.odd_lot_account)
    if profile.method is AllocationMethod.RATIO:
        return split_ratio(total, profile.split, profile.lot, profile.odd_lot_account)
    if profile.method is AllocationMethod.FIXED:
        return split_fixed(total, profile.split, profile.odd_lot_account)
    raise ValueError(f"unknown allocation method {profile.method!r}")


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

    ``lines = split(cum_qty)`` and ``delta = split(cum_qty) - split(cum_qty - last_qty)``. With no
    profile, everything goes to `block_account`.
    """
    if not 0 < last_qty <= cum_qty:
        raise ValueError(f"need 0 < last_qty <= cum_qty, got last_qty={last_qty}, cum_qty={cum_qty}")
    if profile is None:
        return FillAllocation(lines={block_account: cum_qty}, delta={block_account: last_qty})
    lines = split_profile(cum_qty, profile)
    before = split_profile(cum_qty - last_qty, profile)
    delta = {account: qty - before[account] for account, qty in lines.items()}
    return FillAllocation(lines=lines, delta=delta)


_PRECISE = Context(prec=60, rounding=ROUND_HALF_EVEN)


def block_average_price(fills: Sequence[tuple[int, Decimal]], places: int = 8) -> Decimal:
    """The volume-weighted average price of a block's fills ``(qty, price)``, rounded half-even to
    `places` decimals: the price every account of the block is allocated at."""
    if not fills:
        raise ValueError("need at least one fill to average")
    if any(qty <= 0 for qty, _ in fills):
        raise ValueError("fill quantities must be positive")
    with localcontext(_PRECISE):
        value = sum((qty * Decimal(price) for qty, price in fills), Decimal(0))
        return (value / sum(qty for qty, _ in fills)).quantize(Decimal(1).scaleb(-places))
