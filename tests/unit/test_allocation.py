"""Allocation maths: percent, ratio and fixed splits, lots and odd lots, tie-breaks, cumulative fill
allocation and the block average price."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.domain.allocation import (
    FillAllocation,
    allocate_fill,
    block_average_price,
    split_percent,
    split_profile,
    split_ratio,
)
from cluster.config import AllocationProfile

FUND3 = {"A": Decimal(33), "B": Decimal(33), "C": Decimal(34)}


def profile(split: dict[str, Decimal], lot: int = 1) -> AllocationProfile:
    return AllocationProfile(split=split, lot=lot)


@pytest.mark.parametrize(
    ("total", "expected"),
    [
        (100, {"A": 33, "B": 33, "C": 34}),
        (1, {"A": 0, "B": 0, "C": 1}),
        (7, {"A": 2, "B": 2, "C": 3}),
        (0, {"A": 0, "B": 0, "C": 0}),
        (2, {"A": 1, "B": 0, "C": 1}),
        (3, {"A": 1, "B": 1, "C": 1}),
    ],
)
def test_a_33_33_34_split_rounds_by_largest_remainder(total: int, expected: dict[str, int]) -> None:
    assert split_percent(total, FUND3) == expected


@pytest.mark.parametrize(
    ("total", "lot", "expected"),
    [
        # 3 lots of 100 -> one each; the 50 odd shares go to C (largest percentage)
        (350, 100, {"A": 100, "B": 100, "C": 150}),
        # 1 lot -> C (largest remainder); 99 odd shares -> C
        (199, 100, {"A": 0, "B": 0, "C": 199}),
        # fewer shares than a lot: all odd-lot, to C
        (99, 100, {"A": 0, "B": 0, "C": 99}),
        # exact lots, no leftover
        (1000, 100, {"A": 300, "B": 300, "C": 400}),
    ],
)
def test_whole_lots_are_split_and_the_odd_lot_goes_to_the_largest_percentage(
    total: int, lot: int, expected: dict[str, int]
) -> None:
    assert split_percent(total, FUND3, lot) == expected


def test_the_odd_lot_goes_to_the_first_name_when_percentages_tie() -> None:
    split = {"Z": Decimal(50), "M": Decimal(50)}
    assert split_percent(250, split, lot=100) == {"Z": 100, "M": 150}


@pytest.mark.parametrize(
    ("split", "total", "expected"),
    [
        # equal remainders and equal percentages: names ascending win
        ({"B": Decimal(50), "A": Decimal(50)}, 1, {"B": 0, "A": 1}),
        (
            {"C": Decimal(25), "B": Decimal(25), "A": Decimal(25), "D": Decimal(25)},
            3,
            {"C": 1, "B": 1, "A": 1, "D": 0},
        ),
        # equal remainders (0.5 each): the larger percentage wins over the name
        ({"A": Decimal(10), "Z": Decimal(30), "M": Decimal(60)}, 5, {"A": 0, "Z": 2, "M": 3}),
        # a larger remainder (0.7 against 0.3) beats a larger percentage
        ({"A": Decimal(10), "B": Decimal(90)}, 7, {"A": 1, "B": 6}),
    ],
)
def test_ties_are_broken_by_remainder_then_percentage_then_name(
    split: dict[str, Decimal], total: int, expected: dict[str, int]
) -> None:
    assert split_percent(total, split) == expected


def test_the_split_does_not_depend_on_the_order_of_the_accounts() -> None:
    forward = {"A": Decimal(25), "B": Decimal(25), "C": Decimal(25), "D": Decimal(25)}
    backward = dict(reversed(forward.items()))
    assert split_percent(7, forward) == split_percent(7, backward)


def test_fractional_percentages_are_split_exactly() -> None:
    split = {"A": Decimal("33.33"), "B": Decimal("33.33"), "C": Decimal("33.34")}
    assert split_percent(10000, split) == {"A": 3333, "B": 3333, "C": 3334}


@pytest.mark.parametrize(
    ("total", "split", "lot", "message"),
    [
        (-1, FUND3, 1, "total must be >= 0"),
        (10, FUND3, 0, "lot must be >= 1"),
        (10, {}, 1, "at least one account"),
        (10, {"A": Decimal(50), "B": Decimal(40)}, 1, "must sum to 100"),
        (10, {"A": Decimal(110), "B": Decimal(-10)}, 1, "cannot be negative"),
    ],
)
def test_bad_split_arguments_raise_value_error(
    total: int, split: dict[str, Decimal], lot: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        split_percent(total, split, lot)


# --- properties ------------------------------------------------------------------------------------

ACCOUNTS = st.sampled_from(["A", "B", "C", "D", "E", "F", "G"])


@st.composite
def splits(draw: st.DrawFn) -> dict[str, Decimal]:
    """Positive percentages (in hundredths) that sum to exactly 100."""
    names = draw(st.lists(ACCOUNTS, min_size=1, max_size=7, unique=True))
    cuts = sorted(
        draw(st.lists(st.integers(1, 9999), min_size=len(names) - 1, max_size=len(names) - 1, unique=True))
    )
    bounds = [0, *cuts, 10000]
    return {name: Decimal(hi - lo) / 100 for name, lo, hi in zip(names, bounds, bounds[1:], strict=False)}


@st.composite
def fill_sequences(draw: st.DrawFn) -> list[int]:
    """Positive fill sizes of one order."""
    return draw(st.lists(st.integers(1, 5000), min_size=1, max_size=20))


@given(total=st.integers(0, 10**7), split=splits(), lot=st.integers(1, 1000))
def test_a_split_always_sums_to_the_total_with_no_negative_part(
    total: int, split: dict[str, Decimal], lot: int
) -> None:
    result = split_percent(total, split, lot)
    assert set(result) == set(split)
    assert sum(result.values()) == total
    assert all(qty >= 0 for qty in result.values())


@given(total=st.integers(0, 10**7), split=splits())
def test_each_part_is_within_one_share_of_its_exact_quota(total: int, split: dict[str, Decimal]) -> None:
    result = split_percent(total, split)
    for account, pct in split.items():
        assert abs(result[account] - total * pct / 100) < 1


@given(fills=fill_sequences(), split=splits(), lot=st.integers(1, 100))
def test_cumulative_lines_always_equal_the_split_of_the_cumulative_quantity(
    fills: list[int], split: dict[str, Decimal], lot: int
) -> None:
    cum = 0
    for last in fills:
        cum += last
        allocation = allocate_fill(cum, last, profile(split, lot), "BLOCK")
        assert allocation.lines == split_percent(cum, split, lot)
        assert sum(allocation.delta.values()) == last


@given(fills=fill_sequences(), split=splits(), lot=st.integers(1, 100))
def test_deltas_summed_over_the_fills_equal_the_final_split(
    fills: list[int], split: dict[str, Decimal], lot: int
) -> None:
    totals = dict.fromkeys(split, 0)
    for n in range(len(fills)):
        allocation = allocate_fill(sum(fills[: n + 1]), fills[n], profile(split, lot), "BLOCK")
        for account, qty in allocation.delta.items():
            totals[account] += qty
    assert totals == split_percent(sum(fills), split, lot)


# --- allocate_fill ---------------------------------------------------------------------------------


def test_with_no_profile_everything_goes_to_the_block_account() -> None:
    assert allocate_fill(70, 30, None, "ACC1") == FillAllocation(lines={"ACC1": 70}, delta={"ACC1": 30})


def test_a_fill_delta_is_the_change_in_the_cumulative_split() -> None:
    # 1 -> C; then 7 in total -> A=2, B=2, C=3
    allocation = allocate_fill(7, 6, profile(FUND3), "FUND3")
    assert allocation == FillAllocation(lines={"A": 2, "B": 2, "C": 3}, delta={"A": 2, "B": 2, "C": 2})


def test_a_delta_can_be_negative_when_the_split_rebalances() -> None:
    # 9 shares: A=0.36, B=1.35, C=7.29 -> A=1, B=1, C=7 (A has the largest remainder).
    # 10 shares: A=0.40, B=1.50, C=8.10 -> A=0, B=2, C=8 (now B has it): A gives one back.
    split = {"A": Decimal(4), "B": Decimal(15), "C": Decimal(81)}
    allocation = allocate_fill(10, 1, profile(split), "BLOCK")
    assert allocation == FillAllocation(lines={"A": 0, "B": 2, "C": 8}, delta={"A": -1, "B": 1, "C": 1})


@pytest.mark.parametrize(("cum_qty", "last_qty"), [(10, 0), (10, -1), (10, 11), (0, 0)])
def test_a_fill_with_last_qty_outside_zero_to_cum_qty_is_refused(cum_qty: int, last_qty: int) -> None:
    with pytest.raises(ValueError, match="0 < last_qty <= cum_qty"):
        allocate_fill(cum_qty, last_qty, None, "ACC1")


# --- ratio, fixed and the odd-lot account ----------------------------------------------------------


def ratio(weights: dict[str, int], lot: int = 1, odd_lot_account: str | None = None) -> AllocationProfile:
    return AllocationProfile(
        method="ratio", split={a: Decimal(w) for a, w in weights.items()}, lot=lot, odd_lot_account=odd_lot_account
    )


def fixed(quantities: dict[str, int], odd_lot_account: str | None = None) -> AllocationProfile:
    return AllocationProfile(
        method="fixed", split={a: Decimal(q) for a, q in quantities.items()}, odd_lot_account=odd_lot_account
    )


@pytest.mark.parametrize(
    ("weights", "total", "expected"),
    [
        ({"A": 2, "B": 1}, 300, {"A": 200, "B": 100}),
        # 10 * 2/3 = 6.67, 10 * 1/3 = 3.33: the leftover share goes to the larger remainder
        ({"A": 2, "B": 1}, 10, {"A": 7, "B": 3}),
        ({"A": 2, "B": 1}, 1, {"A": 1, "B": 0}),
        # equal remainders: the larger weight, then the name
        ({"A": 1, "B": 3}, 2, {"A": 0, "B": 2}),
        ({"B": 1, "A": 1}, 1, {"B": 0, "A": 1}),
        ({"A": 5, "B": 3, "C": 2}, 0, {"A": 0, "B": 0, "C": 0}),
    ],
)
def test_a_ratio_split_shares_by_integer_weights_with_largest_remainder(
    weights: dict[str, int], total: int, expected: dict[str, int]
) -> None:
    assert split_ratio(total, weights) == expected
    assert split_profile(total, ratio(weights)) == expected


@pytest.mark.parametrize(
    ("quantities", "odd_lot_account", "total", "expected"),
    [
        # filled in the profile's order: A first, then B
        ({"A": 100, "B": 50}, None, 0, {"A": 0, "B": 0}),
        ({"A": 100, "B": 50}, None, 60, {"A": 60, "B": 0}),
        ({"A": 100, "B": 50}, None, 100, {"A": 100, "B": 0}),
        ({"A": 100, "B": 50}, None, 130, {"A": 100, "B": 30}),
        ({"A": 100, "B": 50}, None, 150, {"A": 100, "B": 50}),
        ({"B": 50, "A": 100}, None, 60, {"B": 50, "A": 10}),
        # beyond the fixed total, the rest goes to the odd-lot account
        ({"A": 100, "B": 50}, "HOUSE", 150, {"A": 100, "B": 50, "HOUSE": 0}),
        ({"A": 100, "B": 50}, "HOUSE", 175, {"A": 100, "B": 50, "HOUSE": 25}),
        ({"A": 100, "B": 50}, "B", 175, {"A": 100, "B": 75}),
    ],
)
def test_a_fixed_split_fills_each_accounts_quantity_in_order(
    quantities: dict[str, int], odd_lot_account: str | None, total: int, expected: dict[str, int]
) -> None:
    assert split_profile(total, fixed(quantities, odd_lot_account)) == expected


def test_a_fill_beyond_the_fixed_total_without_an_odd_lot_account_raises() -> None:
    with pytest.raises(ValueError, match="exceed the fixed total of 150"):
        split_profile(151, fixed({"A": 100, "B": 50}))


def profile_with(split: dict[str, Decimal], lot: int, odd_lot_account: str | None) -> AllocationProfile:
    return AllocationProfile(split=split, lot=lot, odd_lot_account=odd_lot_account)


@pytest.mark.parametrize(
    ("make", "total", "expected"),
    [
        # 3 lots of 100 shared 33/33/34; the 50 odd shares go to the odd-lot account
        (lambda: profile_with(FUND3, 100, "ODD"), 350, {"A": 100, "B": 100, "C": 100, "ODD": 50}),
        (lambda: profile_with(FUND3, 100, "ODD"), 300, {"A": 100, "B": 100, "C": 100, "ODD": 0}),
        # the odd-lot account can be one of the split's accounts
        (lambda: profile_with(FUND3, 100, "A"), 350, {"A": 150, "B": 100, "C": 100}),
        # without one, the odd lot goes to the first-ranked account (largest share)
        (lambda: profile_with(FUND3, 100, None), 350, {"A": 100, "B": 100, "C": 150}),
        (lambda: ratio({"A": 1, "B": 2}, lot=10, odd_lot_account="ODD"), 37, {"A": 10, "B": 20, "ODD": 7}),
        (lambda: ratio({"A": 1, "B": 2}, lot=10), 37, {"A": 10, "B": 27}),
    ],
)
def test_the_odd_lot_goes_to_the_odd_lot_account_when_one_is_set(
    make: Callable[[], AllocationProfile], total: int, expected: dict[str, int]
) -> None:
    assert split_profile(total, make()) == expected


def test_a_ratio_fill_delta_is_the_change_in_the_cumulative_split() -> None:
    # 1 share -> A; 3 shares -> A=2, B=1
    assert allocate_fill(3, 2, ratio({"A": 2, "B": 1}), "BLOCK") == FillAllocation(
        lines={"A": 2, "B": 1}, delta={"A": 1, "B": 1}
    )


def test_a_fixed_fill_delta_moves_on_to_the_next_account() -> None:
    assert allocate_fill(130, 50, fixed({"A": 100, "B": 50}), "BLOCK") == FillAllocation(
        lines={"A": 100, "B": 30}, delta={"A": 20, "B": 30}
    )


@pytest.mark.parametrize(
    ("fills", "expected"),
    [
        ([(100, "10")], "10"),
        ([(100, "10"), (300, "10.04")], "10.03"),
        ([(1, "10"), (2, "10.01")], "10.00666667"),  # rounded half-even to 8 places
        ([(1, "0.00000001"), (1, "0.00000002")], "0.00000002"),  # 1.5e-8 rounds to even
    ],
)
def test_the_block_average_price_is_volume_weighted(fills: list[tuple[int, str]], expected: str) -> None:
    assert block_average_price([(q, Decimal(p)) for q, p in fills]) == Decimal(expected)


@pytest.mark.parametrize(("fills", "message"), [([], "at least one fill"), ([(0, Decimal(1))], "positive")])
def test_a_block_average_of_no_fills_or_empty_fills_is_refused(
    fills: list[tuple[int, Decimal]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        block_average_price(fills)


# --- properties for every method -------------------------------------------------------------------


@st.composite
def profiles(draw: st.DrawFn) -> AllocationProfile:
    """A valid profile of any method, with or without an odd-lot account."""
    method = draw(st.sampled_from(["percent", "ratio", "fixed"]))
    odd = draw(st.sampled_from([None, "ODD", "A"]))
    if method == "percent":
        return AllocationProfile(split=draw(splits()), lot=draw(st.integers(1, 100)), odd_lot_account=odd)
    names = draw(st.lists(ACCOUNTS, min_size=1, max_size=7, unique=True))
    values = {n: Decimal(draw(st.integers(1, 5000 if method == "fixed" else 20))) for n in names}
    if method == "fixed":
        return AllocationProfile(method="fixed", split=values, odd_lot_account=odd or "ODD")
    return AllocationProfile(method="ratio", split=values, lot=draw(st.integers(1, 100)), odd_lot_account=odd)


@given(total=st.integers(0, 10**6), profile_=profiles())
def test_every_method_splits_to_exactly_the_total_with_no_negative_part(
    total: int, profile_: AllocationProfile
) -> None:
    result = split_profile(total, profile_)
    assert sum(result.values()) == total
    assert all(qty >= 0 for qty in result.values())
    assert set(profile_.split) <= set(result)


@given(fills=fill_sequences(), profile_=profiles())
def test_every_method_ends_partial_fills_at_the_single_shot_split(
    fills: list[int], profile_: AllocationProfile
) -> None:
    totals: dict[str, int] = {}
    cum = 0
    for last in fills:
        cum += last
        allocation = allocate_fill(cum, last, profile_, "BLOCK")
        assert sum(allocation.lines.values()) == cum
        assert sum(allocation.delta.values()) == last
        for account, qty in allocation.delta.items():
            totals[account] = totals.get(account, 0) + qty
    assert allocation.lines == split_profile(cum, profile_)
    assert totals == allocation.lines


@given(fills=fill_sequences(), quantities=st.lists(st.integers(1, 5000), min_size=1, max_size=5))
def test_a_fixed_split_never_takes_shares_back(fills: list[int], quantities: list[int]) -> None:
    profile_ = fixed({f"F{n}": q for n, q in enumerate(quantities)}, odd_lot_account="ODD")
    cum = 0
    for last in fills:
        cum += last
        assert all(qty >= 0 for qty in allocate_fill(cum, last, profile_, "BLOCK").delta.values())
