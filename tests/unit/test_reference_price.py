"""The seeded reference price walk and the liquidity provider quoting around it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.domain.order_book import Level, OrderBook
from actors.domain.reference_price import LIQUIDITY_OWNER, REASON_QUOTE_REPLACED, LiquidityProvider, RandomWalk
from messages.base import OrderType, Side, TimeInForce

CENT = Decimal("0.01")


def path(walk: RandomWalk, steps: int) -> list[Decimal]:
    return [walk.next() for _ in range(steps)]


# --- the walk ------------------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_path() -> None:
    assert path(RandomWalk(Decimal(100), seed=7), 500) == path(RandomWalk(Decimal(100), seed=7), 500)


def test_different_seeds_give_different_paths() -> None:
    assert path(RandomWalk(Decimal(100), seed=1), 50) != path(RandomWalk(Decimal(100), seed=2), 50)


def test_a_zero_step_walk_stays_at_its_start() -> None:
    assert path(RandomWalk(Decimal("100.00"), seed=1, step_bps=0), 5) == [Decimal("100.00")] * 5


@given(
    start=st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10000), places=2),
    seed=st.integers(0, 2**32),
    step_bps=st.integers(0, 9999),
    tick=st.sampled_from([Decimal("0.01"), Decimal("0.05"), Decimal("0.0001"), Decimal(1)]),
)
def test_the_price_stays_positive_and_on_the_tick(start: Decimal, seed: int, step_bps: int, tick: Decimal) -> None:
    walk = RandomWalk(start, seed, step_bps, tick)
    for price in path(walk, 50):
        assert price >= tick
        assert price % tick == 0


def test_a_walk_pressed_against_zero_stays_at_one_tick() -> None:
    walk = RandomWalk(Decimal("0.01"), seed=3, step_bps=9999)
    assert min(path(walk, 1000)) == CENT


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"start": Decimal(0)}, "start"),
        ({"start": Decimal(-1)}, "start"),
        ({"start": 100.0}, "start"),
        ({"tick": Decimal(0)}, "tick"),
        ({"step_bps": -1}, "step_bps"),
        ({"step_bps": 10000}, "step_bps"),
    ],
)
def test_a_walk_with_impossible_parameters_is_refused(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"start": Decimal(100), "seed": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        RandomWalk(**args)


# --- the liquidity provider ----------------------------------------------------------------------


def provider(book: OrderBook, start: str = "100.00", step_bps: int = 0) -> LiquidityProvider:
    return LiquidityProvider(book, RandomWalk(Decimal(start), seed=42, step_bps=step_bps), levels=3, qty=500)


def test_a_refresh_quotes_both_sides_around_the_reference_price() -> None:
    book = OrderBook("AAPL")
    lp = provider(book)
    reports = lp.refresh()
    assert [r.kind for r in reports] == ["accepted"] * 6
    depth = book.depth(5)
    assert depth.bids == tuple(Level(Decimal(p), 500, 1) for p in ["99.99", "99.98", "99.97"])
    assert depth.asks == tuple(Level(Decimal(p), 500, 1) for p in ["100.01", "100.02", "100.03"])
    assert book.open_orders(owner=LIQUIDITY_OWNER) == tuple(f"LP-AAPL-{n}" for n in range(1, 7))


def test_a_refresh_cancels_the_previous_quotes_and_places_new_ones() -> None:
    book = OrderBook("AAPL")
    lp = provider(book, step_bps=5)
    first = lp.refresh()
    first_ids = [r.cl_ord_id for r in first]
    second = lp.refresh()
    canceled = [r for r in second if r.kind == "canceled"]
    assert [r.cl_ord_id for r in canceled] == first_ids
    assert {r.reason for r in canceled} == {REASON_QUOTE_REPLACED}
    assert lp.quotes == tuple(f"LP-AAPL-{n}" for n in range(7, 13))
    assert book.open_orders() == lp.quotes
    assert lp.reference is not None
    assert book.best_bid() == lp.reference - CENT
    assert book.best_ask() == lp.reference + CENT


def test_a_refresh_trades_against_client_orders_its_quotes_cross_and_reports_their_fills() -> None:
    book = OrderBook("AAPL")
    book.submit("CLIENT", Side.BUY, 200, OrderType.LIMIT, TimeInForce.DAY, Decimal("100.05"))
    reports = provider(book).refresh()
    client_fills = [(r.last_qty, r.last_px) for r in reports if r.cl_ord_id == "CLIENT" and r.kind == "fill"]
    assert client_fills == [(200, Decimal("100.05"))]
    assert book.best_ask() == Decimal("100.01")
    assert book.depth(1).asks == (Level(Decimal("100.01"), 300, 1),)


def test_a_quote_filled_completely_is_not_canceled_on_the_next_refresh() -> None:
    book = OrderBook("AAPL")
    lp = provider(book)
    lp.refresh()
    book.submit("CLIENT", Side.BUY, 500, OrderType.MARKET, TimeInForce.IOC, None)
    reports = lp.refresh()
    assert [r.kind for r in reports] == ["canceled"] * 5 + ["accepted"] * 6


def test_the_same_seed_gives_the_same_quotes_and_ids() -> None:
    def session() -> list[Any]:
        lp = provider(OrderBook("AAPL"), step_bps=20)
        return [report for _ in range(10) for report in lp.refresh()]

    assert session() == session()


@pytest.mark.parametrize(("kwargs", "message"), [({"levels": 0}, "levels"), ({"qty": 0}, "qty"),
                                                 ({"spread_ticks": 0}, "spread_ticks")])
def test_a_provider_with_impossible_parameters_is_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LiquidityProvider(OrderBook("AAPL"), RandomWalk(Decimal(100), seed=1), **kwargs)


# --- snapshots -----------------------------------------------------------------------------------


def test_a_walk_restored_from_its_snapshot_continues_the_same_path() -> None:
    import json

    original, first = RandomWalk(Decimal(100), seed=9, step_bps=30), RandomWalk(Decimal(100), seed=9, step_bps=30)
    path(original, 25)
    path(first, 25)
    restored = RandomWalk.restore(json.loads(json.dumps(first.snapshot())))
    assert path(restored, 200) == path(original, 200)


def test_a_provider_restored_from_its_snapshot_quotes_the_same_ids_and_prices() -> None:
    import json

    original_book, first_book = OrderBook("AAPL"), OrderBook("AAPL")
    original, first = provider(original_book, step_bps=20), provider(first_book, step_bps=20)
    for _ in range(5):
        original.refresh()
        first.refresh()
    book = OrderBook.restore(json.loads(json.dumps(first_book.snapshot())))
    restored = LiquidityProvider.restore(json.loads(json.dumps(first.snapshot())), book)
    assert restored.quotes == original.quotes
    assert [restored.refresh() for _ in range(5)] == [original.refresh() for _ in range(5)]


def test_the_providers_replaced_quotes_are_forgotten_by_the_book() -> None:
    book = OrderBook("AAPL")
    lp = provider(book, step_bps=5)
    for _ in range(100):
        lp.refresh()
    assert book.remembered == 6
    assert not book.has("LP-AAPL-1")
