"""Snapshots of the book-mode venue: a venue restored from its snapshot (through JSON) answers every
later command exactly as the original, and a snapshot is a copy, not a view of the live venue."""

from __future__ import annotations

import json
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.domain.book_venue import (
    BookVenue,
    CancelCommand,
    ExpireCommand,
    MassCancelCommand,
    NewCommand,
    Outcome,
    RejectCommand,
    TickCommand,
)
from actors.stages.venue.snapshots import SnapshotSchedule, VenueSnapshot
from messages.base import OrderType, Side, TimeInForce
from messages.venue import NewOrderSingle

SYMBOLS = ("AAPL", "MSFT")
MIDS = {"AAPL": Decimal("187.25"), "MSFT": Decimal("411.10"), "ZZZZ": Decimal("1.00")}
BookCommand = NewCommand | RejectCommand | CancelCommand | MassCancelCommand | TickCommand | ExpireCommand


def venue() -> BookVenue:
    return BookVenue("SIM", SYMBOLS, seed=11, levels=3, qty=300)


def random_order(rng: random.Random) -> NewOrderSingle:
    symbol = rng.choice(("AAPL", "AAPL", "MSFT", "ZZZZ")) if rng.random() < 0.05 else rng.choice(SYMBOLS)
    market = rng.random() < 0.15
    price = None if market else MIDS[symbol] + Decimal(rng.randint(-60, 60)) / 100
    return NewOrderSingle(cl_ord_id=f"C{rng.randint(0, 80)}", symbol=symbol, side=rng.choice((Side.BUY, Side.SELL)),
                          qty=rng.randint(1, 1200), price=price,
                          order_type=OrderType.MARKET if market else OrderType.LIMIT,
                          tif=rng.choice((TimeInForce.DAY, TimeInForce.DAY, TimeInForce.IOC)),
                          account=rng.choice(("A1", "A2")))


def random_commands(seed: int, count: int) -> list[BookCommand]:
    """A seeded flow: mostly new orders and ticks, some cancels, rejects, mass cancels, ends of day."""
    rng = random.Random(seed)
    day = 20000
    out: list[BookCommand] = [TickCommand()]
    for _ in range(count):
        roll = rng.random()
        if roll < 0.45:
            out.append(NewCommand(order=random_order(rng)))
        elif roll < 0.75:
            out.append(TickCommand())
        elif roll < 0.87:
            out.append(CancelCommand(cl_ord_id=f"C{rng.randint(0, 80)}"))
        elif roll < 0.92:
            out.append(RejectCommand(order=random_order(rng), reason="venue reject (fault injection)"))
        elif roll < 0.95:
            out.append(MassCancelCommand(account=rng.choice(("A1", "A2", None))))
        else:
            day += 1
            out.append(ExpireCommand(day=day))
    return out


def through_json(data: dict) -> dict:
    return json.loads(json.dumps(data))


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 250))
def test_a_venue_restored_from_its_snapshot_gives_the_same_reports_as_the_original(seed: int, cut: int) -> None:
    commands = random_commands(seed, 250)
    original = venue()
    expected: list[Outcome] = [original.apply(c) for c in commands]

    first = venue()
    for command in commands[:cut]:
        first.apply(command)
    restored = BookVenue.restore(through_json(first.snapshot()))
    assert [restored.apply(c) for c in commands[cut:]] == expected[cut:]
    assert restored.snapshot() == original.snapshot()


def test_a_snapshot_restores_to_a_venue_with_the_same_snapshot() -> None:
    v = venue()
    for command in random_commands(3, 300):
        v.apply(command)
    data = through_json(v.snapshot())
    assert BookVenue.restore(data).snapshot() == data


def test_a_snapshot_shares_nothing_with_the_live_venue() -> None:
    v = venue()
    v.tick()
    v.new(NewOrderSingle(cl_ord_id="REST-1", symbol="AAPL", side=Side.BUY, qty=10, price=Decimal("150.00")))
    taken = v.snapshot()
    frozen = json.dumps(taken)
    v.new(NewOrderSingle(cl_ord_id="REST-2", symbol="AAPL", side=Side.BUY, qty=10, price=Decimal("150.00")))
    v.cancel("REST-1")
    v.tick()
    assert json.dumps(taken) == frozen


def test_a_restored_venue_continues_the_reference_price_path() -> None:
    original, first = venue(), venue()
    for _ in range(40):
        original.tick()
        first.tick()
    restored = BookVenue.restore(through_json(first.snapshot()))
    path = []
    for _ in range(40):
        original.tick()
        restored.tick()
        path.append(restored.reference_prices())
        assert restored.reference_prices() == original.reference_prices()
    assert len({p["AAPL"] for p in path}) > 1


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_fast_encoding_of_a_snapshot_is_the_snapshot_at_every_point(seed: int) -> None:
    v = venue()
    for n, command in enumerate(random_commands(seed, 300)):
        v.apply(command)
        if n % 25 == 0 or isinstance(command, ExpireCommand):  # encodings kept across snapshots and days
            assert json.loads(v.snapshot_json()) == v.snapshot()


def test_a_snapshot_of_another_version_is_refused() -> None:
    data = venue().snapshot()
    data["version"] = 99
    with pytest.raises(ValueError, match="version 99"):
        BookVenue.restore(data)


def test_an_encoded_snapshot_decodes_compressed_or_not() -> None:
    import zlib

    snapshot = VenueSnapshot(n=12, journal_seq=40, dropcopy_seq=7, state=through_json(venue().snapshot()))
    assert VenueSnapshot.decode(snapshot.encode()) == snapshot
    assert VenueSnapshot.decode(zlib.compress(snapshot.encode())) == snapshot


# --- when a snapshot is due ----------------------------------------------------------------------


def test_a_snapshot_is_due_every_so_many_records() -> None:
    schedule = SnapshotSchedule(every=100, interval=60.0, now=0.0)
    assert not schedule.due(99, now=1.0)
    assert schedule.due(100, now=1.0)


def test_a_snapshot_is_due_after_the_interval_only_if_anything_changed() -> None:
    schedule = SnapshotSchedule(every=100, interval=60.0, covered=5, now=0.0)
    assert not schedule.due(5, now=61.0)
    assert schedule.due(6, now=61.0)


def test_a_forced_snapshot_is_due_at_once_and_only_once() -> None:
    schedule = SnapshotSchedule(every=100, interval=60.0, now=0.0)
    schedule.force()
    assert schedule.due(1, now=0.0)
    schedule.taking(1, now=0.0)
    schedule.finished(1, stored=True)
    assert not schedule.due(2, now=0.0)


def test_one_snapshot_is_taken_at_a_time() -> None:
    schedule = SnapshotSchedule(every=10, interval=60.0, now=0.0)
    schedule.taking(10, now=0.0)
    assert not schedule.due(25, now=1.0)
    schedule.finished(10, stored=True)
    assert schedule.covered == 10
    assert schedule.due(25, now=1.0)


def test_a_failed_snapshot_is_retried_on_the_schedule_not_at_once() -> None:
    schedule = SnapshotSchedule(every=10, interval=60.0, now=0.0)
    schedule.taking(10, now=5.0)
    schedule.finished(10, stored=False)
    assert schedule.covered == 0
    assert not schedule.due(11, now=6.0)
    assert schedule.due(20, now=6.0)
    assert schedule.due(11, now=66.0)


def test_a_snapshot_of_the_earlier_shape_restores_the_same_venue() -> None:
    """Version 1 kept every remembered order in one list, a finished one tagged with its epoch."""
    v = venue()
    for command in random_commands(seed=5, count=400):
        v.apply(command)
    current = through_json(v.snapshot())
    done = [[*json.loads(text), epoch] for _, epoch, text in current["done"]]
    earlier = {**{k: val for k, val in current.items() if k != "done"}, "version": 1,
               "orders": [[order, history, None] for order, history in current["orders"]] + done}
    assert BookVenue.restore(earlier).snapshot() == current


def test_a_finished_order_restored_from_a_snapshot_answers_as_the_original() -> None:
    v = venue()
    for command in random_commands(seed=9, count=300):
        v.apply(command)
    restored = BookVenue.restore(through_json(v.snapshot()))
    ids = [f"C{k}" for k in range(81)]
    assert [restored.status(i) for i in ids] == [v.status(i) for i in ids]
    assert [restored.cancel(i).reply for i in ids] == [v.cancel(i).reply for i in ids]


def test_a_malformed_finished_order_in_a_snapshot_is_refused() -> None:
    data = through_json(venue().snapshot())
    data["done"] = [["C1", "not an epoch", "[]"]]
    with pytest.raises(ValueError, match="malformed finished-order entry"):
        BookVenue.restore(data)
