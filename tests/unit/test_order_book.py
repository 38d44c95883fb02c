"""The order book: price-time priority, partial fills, IOC and MARKET remainders, cancels, refusals,
end of day, deterministic ids, and properties over random order flow."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.domain.order_book import (
    REASON_DUPLICATE,
    REASON_EXPIRED,
    REASON_IOC_REMAINDER,
    REASON_NO_LIQUIDITY,
    REASON_NO_MORE_LIQUIDITY,
    REASON_NOT_OPEN,
    REASON_UNKNOWN_ORDER,
    Depth,
    InvalidOrder,
    Level,
    OrderBook,
)
from messages.base import OrderType, Side, TimeInForce
from messages.venue import ExecReport

BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET = OrderType.LIMIT, OrderType.MARKET
DAY, IOC = TimeInForce.DAY, TimeInForce.IOC


def px(value: str) -> Decimal:
    return Decimal(value)


def limit(book: OrderBook, cl_ord_id: str, side: Side, qty: int, price: str, tif: TimeInForce = DAY,
          ) -> list[ExecReport]:
    return book.submit(cl_ord_id, side, qty, LIMIT, tif, px(price))


def market(book: OrderBook, cl_ord_id: str, side: Side, qty: int, tif: TimeInForce = DAY) -> list[ExecReport]:
    return book.submit(cl_ord_id, side, qty, MARKET, tif, None)


def fills(reports: list[ExecReport]) -> list[tuple[str, int, Decimal | None]]:
    return [(r.cl_ord_id, r.last_qty, r.last_px) for r in reports if r.kind == "fill"]


def kinds(reports: list[ExecReport]) -> list[tuple[str, str]]:
    return [(r.cl_ord_id, r.kind) for r in reports]


@pytest.fixture
def book() -> OrderBook:
    return OrderBook("AAPL")


# --- priority ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resting_side", "prices", "aggressor_price", "expected_order"),
    [
        (SELL, ["10.02", "10.01", "10.03"], "10.05", ["R1", "R0", "R2"]),
        (BUY, ["9.98", "9.99", "9.97"], "9.95", ["R1", "R0", "R2"]),
    ],
)
def test_the_best_price_trades_first_whatever_order_the_orders_arrived_in(
    book: OrderBook, resting_side: Side, prices: list[str], aggressor_price: str, expected_order: list[str]
) -> None:
    for n, price in enumerate(prices):
        limit(book, f"R{n}", resting_side, 100, price)
    aggressor = SELL if resting_side is BUY else BUY
    reports = limit(book, "AGG", aggressor, 300, aggressor_price)
    assert [cl for cl, _, _ in fills(reports) if cl != "AGG"] == expected_order


def test_at_the_same_price_the_oldest_order_trades_first(book: OrderBook) -> None:
    for name in ["FIRST", "SECOND", "THIRD"]:
        limit(book, name, SELL, 100, "10.00")
    reports = limit(book, "AGG", BUY, 150, "10.00")
    assert [f for f in fills(reports) if f[0] != "AGG"] == [("FIRST", 100, px("10.00")), ("SECOND", 50, px("10.00"))]


def test_a_fill_is_at_the_resting_orders_price_not_the_aggressors_limit(book: OrderBook) -> None:
    limit(book, "S1", SELL, 100, "10.00")
    reports = limit(book, "B1", BUY, 100, "10.50")
    assert {r.last_px for r in reports if r.kind == "fill"} == {px("10.00")}


# --- partial fills -------------------------------------------------------------------------------


def test_a_partly_filled_resting_order_keeps_its_remainder_in_the_book(book: OrderBook) -> None:
    limit(book, "S1", SELL, 100, "10.00")
    limit(book, "B1", BUY, 40, "10.00")
    last = book.status("S1")[-1]
    assert (last.kind, last.cum_qty, last.leaves_qty) == ("fill", 40, 60)
    assert book.is_open("S1")
    assert book.depth(1).asks == (Level(price=px("10.00"), qty=60, orders=1),)


def test_the_unfilled_remainder_of_a_day_limit_order_rests_at_its_limit(book: OrderBook) -> None:
    limit(book, "S1", SELL, 100, "10.00")
    reports = limit(book, "B1", BUY, 150, "10.01")
    assert kinds(reports) == [("B1", "accepted"), ("B1", "fill"), ("S1", "fill")]
    assert reports[1].leaves_qty == 50
    assert book.best_bid() == px("10.01")
    assert book.best_ask() is None
    assert book.depth(1).bids == (Level(price=px("10.01"), qty=50, orders=1),)


@pytest.mark.parametrize(
    ("resting_qty", "expected_cum"),
    [
        (0, 0),  # nothing to trade against
        (60, 60),  # partly filled, the rest canceled
    ],
)
def test_the_unfilled_remainder_of_an_ioc_order_is_canceled_not_rested(
    book: OrderBook, resting_qty: int, expected_cum: int
) -> None:
    if resting_qty:
        limit(book, "S1", SELL, resting_qty, "10.00")
    limit(book, "S2", SELL, 100, "10.05")  # beyond the IOC limit
    reports = limit(book, "B1", BUY, 100, "10.00", tif=IOC)
    final = reports[-1]
    assert (final.kind, final.cl_ord_id, final.reason) == ("canceled", "B1", REASON_IOC_REMAINDER)
    assert (final.cum_qty, final.leaves_qty) == (expected_cum, 0)
    assert book.best_bid() is None
    assert not book.is_open("B1")


def test_an_ioc_order_that_fills_completely_has_no_cancel(book: OrderBook) -> None:
    limit(book, "S1", SELL, 100, "10.00")
    reports = limit(book, "B1", BUY, 100, "10.00", tif=IOC)
    assert "canceled" not in [r.kind for r in reports]
    assert book.status("B1")[-1].cum_qty == 100


# --- market orders -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qty", "expected_fills", "expected_avg", "expected_cancel_reason"),
    [
        (50, [(50, "10.00")], "10.00", None),
        (250, [(100, "10.00"), (100, "10.01"), (50, "10.03")], "10.01", None),
        (300, [(100, "10.00"), (100, "10.01"), (100, "10.03")], "10.01333333", None),
        (350, [(100, "10.00"), (100, "10.01"), (100, "10.03")], "10.01333333", REASON_NO_MORE_LIQUIDITY),
    ],
)
def test_a_market_order_walks_the_levels_and_reports_the_volume_weighted_average_price(
    book: OrderBook,
    qty: int,
    expected_fills: list[tuple[int, str]],
    expected_avg: str,
    expected_cancel_reason: str | None,
) -> None:
    for n, price in enumerate(["10.03", "10.00", "10.01"]):
        limit(book, f"S{n}", SELL, 100, price)
    reports = market(book, "B1", BUY, qty)
    own = [r for r in reports if r.cl_ord_id == "B1"]
    assert [(r.last_qty, r.last_px) for r in own if r.kind == "fill"] == [(q, px(p)) for q, p in expected_fills]
    assert own[-1].avg_px == px(expected_avg)
    assert own[-1].cum_qty == min(qty, 300)
    if expected_cancel_reason is None:
        assert own[-1].kind == "fill"
    else:
        assert (own[-1].kind, own[-1].reason) == ("canceled", expected_cancel_reason)


@pytest.mark.parametrize("tif", [DAY, IOC])
@pytest.mark.parametrize("side", [BUY, SELL])
def test_a_market_order_on_an_empty_book_is_accepted_then_canceled_for_lack_of_liquidity(
    book: OrderBook, side: Side, tif: TimeInForce
) -> None:
    reports = market(book, "M1", side, 100, tif)
    assert [(r.kind, r.reason) for r in reports] == [("accepted", ""), ("canceled", REASON_NO_LIQUIDITY)]
    assert (reports[-1].cum_qty, reports[-1].leaves_qty, reports[-1].avg_px) == (0, 0, None)


def test_a_market_order_does_not_trade_against_its_own_side(book: OrderBook) -> None:
    limit(book, "B0", BUY, 100, "10.00")
    reports = market(book, "M1", BUY, 100)
    assert reports[-1].reason == REASON_NO_LIQUIDITY
    assert book.depth(1).bids == (Level(price=px("10.00"), qty=100, orders=1),)


# --- cancels -------------------------------------------------------------------------------------


def test_canceling_a_resting_order_removes_it_and_keeps_its_cum_qty(book: OrderBook) -> None:
    limit(book, "S1", SELL, 100, "10.00")
    limit(book, "B1", BUY, 30, "10.00")
    [report] = book.cancel("S1")
    assert (report.kind, report.exec_id, report.cum_qty, report.leaves_qty) == ("canceled", "SIM-1-C", 30, 0)
    assert report.avg_px == px("10.00")
    assert book.best_ask() is None
    assert not book.is_open("S1")
    assert book.status("S1")[-1] == report


def _unknown(book: OrderBook) -> None:
    pass


def _filled(book: OrderBook) -> None:
    limit(book, "X", SELL, 100, "10.00")
    limit(book, "B", BUY, 100, "10.00")


def _canceled(book: OrderBook) -> None:
    limit(book, "X", SELL, 100, "10.00")
    book.cancel("X")


def _ioc_done(book: OrderBook) -> None:
    limit(book, "X", SELL, 100, "10.00", tif=IOC)


def _rejected(book: OrderBook) -> None:
    book.submit("X", SELL, 100, LIMIT, DAY, None)


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        (_unknown, REASON_UNKNOWN_ORDER),
        (_filled, REASON_NOT_OPEN),
        (_canceled, REASON_NOT_OPEN),
        (_ioc_done, REASON_NOT_OPEN),
        (_rejected, REASON_NOT_OPEN),
    ],
    ids=["unknown", "filled", "canceled", "ioc-finished", "rejected"],
)
def test_canceling_an_unknown_or_finished_order_is_rejected_and_changes_nothing(
    book: OrderBook, setup: Callable[[OrderBook], None], reason: str
) -> None:
    setup(book)
    limit(book, "OTHER", BUY, 10, "9.00")
    before = (book.status("X"), book.depth(10), book.open_orders())
    [report] = book.cancel("X")
    assert (report.kind, report.cl_ord_id, report.reason) == ("rejected", "X", reason)
    assert (book.status("X"), book.depth(10), book.open_orders()) == before


# --- refusals ------------------------------------------------------------------------------------


def test_a_duplicate_client_order_id_is_rejected_and_not_executed(book: OrderBook) -> None:
    limit(book, "O1", SELL, 100, "10.00")
    history = book.status("O1")
    reports = limit(book, "O1", BUY, 100, "10.00")  # would cross the first if executed
    assert [(r.kind, r.reason, r.venue_order_id) for r in reports] == [("rejected", REASON_DUPLICATE, "SIM-1")]
    assert book.status("O1") == history
    assert book.depth(5) == Depth(bids=(), asks=(Level(price=px("10.00"), qty=100, orders=1),))


def test_a_duplicate_of_a_finished_order_is_still_rejected(book: OrderBook) -> None:
    market(book, "O1", BUY, 100)
    limit(book, "S1", SELL, 100, "10.00")
    reports = market(book, "O1", BUY, 100)
    assert [(r.kind, r.reason) for r in reports] == [("rejected", REASON_DUPLICATE)]
    assert book.is_open("S1")


@pytest.mark.parametrize(
    ("order_type", "price", "reason"),
    [
        (LIMIT, None, "price is required for a LIMIT order"),
        (MARKET, px("10.00"), "price must be empty for a MARKET order"),
        (LIMIT, px("0"), "greater than 0"),
        (LIMIT, px("-1.00"), "greater than 0"),
        (LIMIT, px("10.123456789"), "decimal places"),
        (LIMIT, px("NaN"), "finite"),
        (LIMIT, 10.5, "instance of Decimal"),
        ("STOP", px("10.00"), "invalid order type"),
    ],
)
def test_an_invalid_order_is_rejected_with_a_reason_and_never_rests(
    book: OrderBook, order_type: Any, price: Any, reason: str
) -> None:
    reports = book.submit("O1", BUY, 100, order_type, DAY, price)
    assert [r.kind for r in reports] == ["rejected"]
    assert reason in reports[0].reason
    assert reports[0].exec_id == "SIM-1-R"
    assert book.has("O1")
    assert not book.is_open("O1")
    assert book.best_bid() is None


@pytest.mark.parametrize(
    ("cl_ord_id", "side", "qty"),
    [
        ("O1", BUY, 0),
        ("O1", BUY, -5),
        ("O1", BUY, 1.5),
        ("O1", BUY, True),
        ("", BUY, 100),
        ("has space", BUY, 100),
        ("O1", "HOLD", 100),
    ],
)
def test_input_no_report_can_carry_raises_invalid_order_and_changes_nothing(
    book: OrderBook, cl_ord_id: str, side: Any, qty: Any
) -> None:
    with pytest.raises(InvalidOrder):
        book.submit(cl_ord_id, side, qty, LIMIT, DAY, px("10.00"))
    assert not book.has(cl_ord_id)
    assert limit(book, "NEXT", BUY, 1, "1.00")[0].venue_order_id == "SIM-1"


# --- reports for both sides ----------------------------------------------------------------------


def test_each_trade_is_reported_to_the_aggressor_and_to_the_resting_order_with_its_own_exec_id(
    book: OrderBook,
) -> None:
    limit(book, "S1", SELL, 100, "10.00")
    reports = limit(book, "B1", BUY, 100, "10.00")
    buy_fill, sell_fill = reports[1:]
    assert (buy_fill.cl_ord_id, buy_fill.side, buy_fill.exec_id) == ("B1", BUY, "SIM-2-F1")
    assert (sell_fill.cl_ord_id, sell_fill.side, sell_fill.exec_id) == ("S1", SELL, "SIM-1-F1")
    for fill in (buy_fill, sell_fill):
        assert (fill.last_qty, fill.last_px, fill.cum_qty, fill.leaves_qty) == (100, px("10.00"), 100, 0)
    assert book.status("S1")[-1] == sell_fill


def test_the_status_of_an_order_is_every_report_it_had_in_order(book: OrderBook) -> None:
    limit(book, "S1", SELL, 100, "10.00")
    limit(book, "B1", BUY, 30, "10.00")
    limit(book, "B2", BUY, 30, "10.00")
    book.cancel("S1")
    assert [r.exec_id for r in book.status("S1")] == ["SIM-1-A", "SIM-1-F1", "SIM-1-F2", "SIM-1-C"]
    assert book.status("NEVER") == ()


# --- end of day ----------------------------------------------------------------------------------


def test_expire_day_cancels_every_resting_order_with_reason_expired_oldest_first(book: OrderBook) -> None:
    limit(book, "S1", SELL, 100, "10.05")
    limit(book, "B1", BUY, 100, "9.95")
    limit(book, "S2", SELL, 50, "10.00")
    limit(book, "B2", BUY, 20, "10.00")  # partly fills S2
    reports = book.expire_day()
    assert [(r.cl_ord_id, r.kind, r.reason) for r in reports] == [
        ("S1", "canceled", REASON_EXPIRED),
        ("B1", "canceled", REASON_EXPIRED),
        ("S2", "canceled", REASON_EXPIRED),
    ]
    assert reports[-1].cum_qty == 20
    assert book.depth(10) == Depth(bids=(), asks=())
    assert book.open_orders() == ()
    assert book.expire_day() == []


# --- depth and ids -------------------------------------------------------------------------------


def test_depth_aggregates_each_price_level_best_first_up_to_the_requested_levels(book: OrderBook) -> None:
    limit(book, "B1", BUY, 100, "9.99")
    limit(book, "B2", BUY, 50, "9.99")
    limit(book, "B3", BUY, 10, "9.98")
    limit(book, "B4", BUY, 10, "9.97")
    limit(book, "S1", SELL, 70, "10.01")
    assert book.depth(2) == Depth(
        bids=(Level(px("9.99"), 150, 2), Level(px("9.98"), 10, 1)),
        asks=(Level(px("10.01"), 70, 1),),
    )


def _session(book: OrderBook) -> list[ExecReport]:
    out = limit(book, "S1", SELL, 100, "10.00")
    out += limit(book, "S2", SELL, 100, "10.01")
    out += market(book, "B1", BUY, 150)
    out += limit(book, "B2", BUY, 80, "9.00", tif=IOC)
    out += book.cancel("S2")
    out += book.cancel("S2")
    return out


def test_the_same_inputs_give_the_same_reports_and_ids(book: OrderBook) -> None:
    assert _session(book) == _session(OrderBook("AAPL"))


def test_books_that_share_a_counter_never_reuse_a_venue_order_id() -> None:
    counter = itertools.count(1)
    aapl, msft = OrderBook("AAPL", order_ids=counter), OrderBook("MSFT", order_ids=counter)
    ids = [limit(b, cl, BUY, 1, "1.00")[0].venue_order_id for cl in ("O1", "O2") for b in (aapl, msft)]
    assert ids == ["SIM-1", "SIM-2", "SIM-3", "SIM-4"]


# --- properties ----------------------------------------------------------------------------------

PRICES = [px("9.97"), px("9.98"), px("9.99"), px("10.00"), px("10.01"), px("10.02"), px("10.03")]

submits = st.tuples(
    st.just("submit"),
    st.integers(0, 20).map(lambda n: f"O{n}"),
    st.sampled_from([BUY, SELL]),
    st.integers(1, 300),
    st.sampled_from([LIMIT, LIMIT, LIMIT, MARKET]),
    st.sampled_from([DAY, DAY, IOC]),
    st.sampled_from(PRICES),
)
cancels = st.tuples(st.just("cancel"), st.integers(0, 20).map(lambda n: f"O{n}"))
expiries = st.tuples(st.just("expire"))
flows = st.lists(st.one_of(submits, submits, submits, cancels, expiries), max_size=60)


def run(flow: list[tuple[Any, ...]], after_each: Callable[[OrderBook], None] | None = None) -> list[ExecReport]:
    book = OrderBook("AAPL")
    reports: list[ExecReport] = []
    for op in flow:
        if op[0] == "submit":
            _, cl_ord_id, side, qty, order_type, tif, price = op
            reports += book.submit(cl_ord_id, side, qty, order_type, tif, None if order_type is MARKET else price)
        elif op[0] == "cancel":
            reports += book.cancel(op[1])
        else:
            reports += book.expire_day()
        if after_each is not None:
            after_each(book)
    return reports


@given(flow=flows)
def test_every_report_of_a_live_order_has_cum_qty_plus_leaves_qty_equal_to_order_qty(
    flow: list[tuple[Any, ...]],
) -> None:
    for report in run(flow):
        if report.kind in ("accepted", "fill"):
            assert report.cum_qty + report.leaves_qty == report.order_qty
        else:
            assert report.leaves_qty == 0


@given(flow=flows)
def test_across_all_fills_as_many_shares_are_bought_as_sold(flow: list[tuple[Any, ...]]) -> None:
    reports = run(flow)
    bought = sum(r.last_qty for r in reports if r.kind == "fill" and r.side is BUY)
    sold = sum(r.last_qty for r in reports if r.kind == "fill" and r.side is SELL)
    assert bought == sold


@given(flow=flows)
def test_the_book_is_never_crossed_after_any_operation(flow: list[tuple[Any, ...]]) -> None:
    def not_crossed(book: OrderBook) -> None:
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None:
            assert bid < ask

    run(flow, after_each=not_crossed)


@given(flow=flows)
def test_exec_ids_are_unique_and_cum_qty_is_the_sum_of_an_orders_fills(flow: list[tuple[Any, ...]]) -> None:
    reports = run(flow)
    assert len({r.exec_id for r in reports}) == len(reports)
    filled: dict[str, int] = {}
    for report in reports:
        if report.kind == "fill":
            filled[report.venue_order_id] = filled.get(report.venue_order_id, 0) + report.last_qty
            assert report.cum_qty == filled[report.venue_order_id]


@settings(max_examples=30)
@given(flow=flows)
def test_replaying_the_same_flow_gives_the_same_reports(flow: list[tuple[Any, ...]]) -> None:
    assert run(flow) == run(flow)


# --- snapshots and memory ------------------------------------------------------------------------


def run_with_snapshot(flow: list[tuple[Any, ...]], cut: int) -> list[ExecReport]:
    """`run`, but the book is snapshotted (through JSON) and restored before operation `cut`."""
    import json

    book = OrderBook("AAPL")
    reports: list[ExecReport] = []
    for n, op in enumerate(flow):
        if n == cut:
            book = OrderBook.restore(json.loads(json.dumps(book.snapshot())))
        if op[0] == "submit":
            _, cl_ord_id, side, qty, order_type, tif, price = op
            reports += book.submit(cl_ord_id, side, qty, order_type, tif, None if order_type is MARKET else price)
        elif op[0] == "cancel":
            reports += book.cancel(op[1])
        else:
            reports += book.expire_day()
    return reports


@settings(max_examples=50)
@given(flow=flows, cut=st.integers(0, 60))
def test_a_book_restored_from_its_snapshot_gives_the_same_reports(flow: list[tuple[Any, ...]], cut: int) -> None:
    assert run_with_snapshot(flow, cut) == run(flow)


def test_a_restored_book_keeps_price_time_priority_and_its_resting_orders(book: OrderBook) -> None:
    limit(book, "S1", SELL, 100, "10.01")
    limit(book, "S2", SELL, 100, "10.00")
    limit(book, "S3", SELL, 100, "10.00")
    limit(book, "B1", BUY, 50, "9.99")
    restored = OrderBook.restore(book.snapshot())
    assert restored.depth(5) == book.depth(5)
    assert restored.open_orders() == book.open_orders()
    assert fills(limit(restored, "AGG", BUY, 250, "10.01")) == fills(limit(book, "AGG", BUY, 250, "10.01"))


def test_an_order_submitted_not_to_be_remembered_is_forgotten_once_done(book: OrderBook) -> None:
    limit(book, "S1", SELL, 100, "10.00")
    book.submit("Q1", BUY, 40, LIMIT, DAY, px("10.00"), remember=False)  # filled at once
    book.submit("Q2", BUY, 40, LIMIT, DAY, px("9.00"), remember=False)  # rests
    assert not book.has("Q1")
    assert book.is_open("Q2")
    book.cancel("Q2")
    assert not book.has("Q2")
    assert book.remembered == 1  # S1, remembered by default


def test_forgetting_a_finished_order_drops_it_and_a_resting_one_is_kept(book: OrderBook) -> None:
    limit(book, "S1", SELL, 100, "10.00")
    limit(book, "B1", BUY, 100, "10.00")
    limit(book, "B2", BUY, 10, "9.00")
    assert book.forget("S1")
    assert not book.forget("B2")
    assert (book.has("S1"), book.has("B2"), book.remembered) == (False, True, 2)
