"""Positions and P&L by average cost: long, short, flips, realised and unrealised P&L, idempotent
exec ids, and snapshots."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.domain.positions import REMEMBERED_EXECS, Position, PositionBook
from actors.runtime.snapshot_codec import pack, unpack

D = Decimal


def after(*fills: tuple[str, int, str]) -> Position:
    position = Position()
    for side, qty, price in fills:
        position.apply_fill(side, qty, D(price))
    return position


@pytest.mark.parametrize(
    ("fills", "quantity", "avg_cost", "realised", "unrealised_at_12"),
    [
        # opening and adding: the average cost moves, nothing is realised
        ([("BUY", 100, "10")], 100, "10", "0", "200"),
        ([("BUY", 100, "10"), ("BUY", 100, "11")], 200, "10.5", "0", "300"),
        ([("SELL", 100, "10")], -100, "10", "0", "-200"),
        ([("SELL", 100, "10"), ("SELL", 300, "14")], -400, "13", "0", "400"),
        # reducing a long realises (price - avg) * qty and keeps the average
        ([("BUY", 100, "10"), ("SELL", 40, "13")], 60, "10", "120", "120"),
        ([("BUY", 100, "10"), ("SELL", 40, "8")], 60, "10", "-80", "120"),
        # reducing a short realises (avg - price) * qty
        ([("SELL", 100, "10"), ("BUY", 40, "8")], -60, "10", "80", "-120"),
        ([("SELL", 100, "10"), ("BUY", 40, "13")], -60, "10", "-120", "-120"),
        # closing flat realises everything and leaves no cost
        ([("BUY", 100, "10"), ("BUY", 100, "11"), ("SELL", 200, "12")], 0, "0", "300", "0"),
        # crossing zero realises the closed part and opens the rest at the fill price
        ([("BUY", 100, "10"), ("SELL", 150, "11")], -50, "11", "100", "-50"),
        ([("SELL", 100, "10"), ("BUY", 130, "9")], 30, "9", "100", "90"),
    ],
)
def test_average_cost_positions_realise_and_mark_pnl(
    fills: list[tuple[str, int, str]], quantity: int, avg_cost: str, realised: str, unrealised_at_12: str
) -> None:
    position = after(*fills)
    assert position.quantity == quantity
    assert position.avg_cost == D(avg_cost)
    assert position.realised == D(realised)
    assert position.unrealised(D(12)) == D(unrealised_at_12)


def test_the_average_cost_survives_a_partial_close_at_an_uneven_price() -> None:
    position = after(("BUY", 3, "10"), ("BUY", 1, "11"), ("SELL", 1, "12"))  # avg 10.25
    assert position.realised == D("1.75")
    assert position.avg_cost == D("10.25")


@pytest.mark.parametrize(
    ("side", "qty", "price"),
    [("BUY", 0, "10"), ("SELL", -5, "10"), ("BUY", 10, "0"), ("BUY", 10, "-1"), ("HOLD", 10, "10")],
)
def test_a_bad_fill_is_refused_and_changes_nothing(side: str, qty: int, price: str) -> None:
    position = after(("BUY", 10, "10"))
    with pytest.raises(ValueError):
        position.apply_fill(side, qty, D(price))
    assert position == after(("BUY", 10, "10"))


def test_the_same_exec_id_is_applied_once() -> None:
    book = PositionBook()
    assert book.apply_fill("ACC1", "AAPL", "BUY", 100, D(10), "E-1")
    assert not book.apply_fill("ACC1", "AAPL", "BUY", 100, D(10), "E-1")
    assert book.position("ACC1", "AAPL") == Position(100, D(1000), D(0))


def test_a_refused_fill_does_not_use_up_its_exec_id() -> None:
    book = PositionBook()
    with pytest.raises(ValueError):
        book.apply_fill("ACC1", "AAPL", "BUY", 0, D(10), "E-1")
    assert book.apply_fill("ACC1", "AAPL", "BUY", 1, D(10), "E-1")


def test_positions_are_listed_per_account_or_for_all() -> None:
    book = PositionBook()
    book.apply_fill("ACC1", "AAPL", "BUY", 100, D(10), "E-1")
    book.apply_fill("ACC1", "MSFT", "SELL", 5, D(300), "E-2")
    book.apply_fill("ACC2", "AAPL", "BUY", 7, D(11), "E-3")
    assert set(book.positions("ACC1")) == {("ACC1", "AAPL"), ("ACC1", "MSFT")}
    assert set(book.positions()) == {("ACC1", "AAPL"), ("ACC1", "MSFT"), ("ACC2", "AAPL")}
    assert book.positions("NOBODY") == {}


def test_listed_positions_are_copies() -> None:
    book = PositionBook()
    book.apply_fill("ACC1", "AAPL", "BUY", 100, D(10), "E-1")
    book.positions()[("ACC1", "AAPL")].apply_fill("BUY", 1, D(1))
    assert book.position("ACC1", "AAPL").quantity == 100


def busy_book() -> PositionBook:
    book = PositionBook()
    for n, (account, symbol, side, qty, price) in enumerate(
        [
            ("ACC1", "AAPL", "BUY", 300, "10.01"),
            ("ACC1", "AAPL", "SELL", 100, "10.5"),
            ("ACC1", "MSFT", "SELL", 7, "300.12345678"),
            ("ACC2", "AAPL", "BUY", 3, "9.99"),
            ("ACC2", "AAPL", "SELL", 3, "10"),
        ]
    ):
        book.apply_fill(account, symbol, side, qty, D(price), f"E-{n}")
    return book


def test_a_snapshot_is_json_and_restores_an_equal_book() -> None:
    book = busy_book()
    restored = PositionBook.restore(json.loads(json.dumps(book.snapshot())))
    assert restored == book
    assert restored.snapshot() == book.snapshot()


def test_a_restored_book_still_ignores_exec_ids_it_has_applied() -> None:
    restored = PositionBook.restore(json.loads(json.dumps(busy_book().snapshot())))
    assert not restored.apply_fill("ACC1", "AAPL", "BUY", 300, D("10.01"), "E-0")
    assert restored == busy_book()


def test_books_with_different_fills_are_not_equal() -> None:
    other = busy_book()
    other.apply_fill("ACC1", "AAPL", "BUY", 1, D(1), "E-new")
    assert other != busy_book()


def test_a_book_remembers_only_its_latest_exec_ids() -> None:
    book = PositionBook(remember=2)
    for n in range(3):
        book.apply_fill("ACC1", "AAPL", "BUY", 1, D(1), f"E-{n}")
    assert book.snapshot()["exec_ids"] == ["E-1", "E-2"]
    assert not book.apply_fill("ACC1", "AAPL", "BUY", 1, D(1), "E-2")
    assert book.position("ACC1", "AAPL").quantity == 3


def test_a_snapshot_lists_exec_ids_in_the_order_applied_and_restores_the_latest() -> None:
    book = PositionBook()
    for n in (3, 1, 2):
        book.apply_fill("ACC1", "AAPL", "BUY", 1, D(1), f"E-{n}")
    data = book.snapshot()
    assert data["exec_ids"] == ["E-3", "E-1", "E-2"]
    data["exec_ids"] = [f"OLD-{n}" for n in range(REMEMBERED_EXECS)] + data["exec_ids"]
    restored = PositionBook.restore(data)
    assert restored.snapshot()["exec_ids"][-3:] == ["E-3", "E-1", "E-2"]
    assert len(restored.snapshot()["exec_ids"]) == REMEMBERED_EXECS


def test_a_positions_snapshot_is_compressed_and_old_plain_json_still_reads() -> None:
    encoded = pack({"seq": 7, "book": busy_book().snapshot()})
    assert unpack(encoded) == {"seq": 7, "book": busy_book().snapshot()}
    assert len(encoded) < len(json.dumps({"seq": 7, "book": busy_book().snapshot()}))
    assert unpack(json.dumps({"seq": 3, "book": {}}).encode()) == {"seq": 3, "book": {}}


def test_a_snapshot_of_an_unknown_version_is_refused() -> None:
    with pytest.raises(ValueError, match="version"):
        PositionBook.restore({"version": 2})


# --- property ---------------------------------------------------------------------------------------

FILLS = st.lists(
    st.tuples(
        st.sampled_from(["BUY", "SELL"]),
        st.integers(1, 10_000),
        st.decimals(min_value=D("0.01"), max_value=D("5000"), places=4, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=30,
)


@given(fills=FILLS)
def test_realised_plus_unrealised_at_the_last_price_equals_the_cash_pnl(
    fills: list[tuple[str, int, Decimal]],
) -> None:
    position = Position()
    cash = D(0)
    for side, qty, price in fills:
        position.apply_fill(side, qty, price)
        cash += qty * price if side == "SELL" else -qty * price
    last = fills[-1][2]
    assert position.realised + position.unrealised(last) == cash + position.quantity * last


@given(fills=FILLS)
def test_the_quantity_is_the_signed_sum_of_the_fills(fills: list[tuple[str, int, Decimal]]) -> None:
    position = after(*((side, qty, str(price)) for side, qty, price in fills))
    assert position.quantity == sum(qty if side == "BUY" else -qty for side, qty, _ in fills)
    assert position.cost >= 0
    assert (position.quantity == 0) == (position.cost == 0)
