"""End of day at the venue: resting DAY orders expire, a day closes once, and the venue forgets what
finished before the previous end of day, deterministically, so its memory stays bounded."""

from __future__ import annotations

import pytest

from actors.domain.book_venue import BookVenue, DayAlreadyClosed, ExpireCommand, JournalRecord, NewCommand, TickCommand
from actors.domain.fill_all_venue import FillAllVenue
from actors.domain.order_book import REASON_EXPIRED
from messages.base import OrderType, Side, TimeInForce
from messages.venue import NewOrderSingle

BUY, SELL = Side.BUY, Side.SELL


def venue() -> BookVenue:
    v = BookVenue("SIM", ("AAPL", "MSFT"), seed=7, levels=3, qty=500)
    v.tick()
    return v


def order(cl_ord_id: str, side: Side, qty: int, price: str | None, tif: TimeInForce = TimeInForce.DAY,
          symbol: str = "AAPL") -> NewOrderSingle:
    from decimal import Decimal

    return NewOrderSingle(cl_ord_id=cl_ord_id, symbol=symbol, side=side, qty=qty,
                          price=None if price is None else Decimal(price),
                          order_type=OrderType.LIMIT if price is not None else OrderType.MARKET, tif=tif)


def test_an_end_of_day_expires_every_resting_client_day_order_unsolicited() -> None:
    v = venue()
    v.new(order("REST-1", BUY, 10, "150.00"))
    v.new(order("REST-2", SELL, 10, "250.00"))
    v.new(order("DONE-1", BUY, 10, None))  # filled against the provider at once
    expired = v.expire_day(20000)
    assert [(r.cl_ord_id, r.kind, r.reason, r.unsolicited) for r in expired.reports] == [
        ("REST-1", "canceled", REASON_EXPIRED, True), ("REST-2", "canceled", REASON_EXPIRED, True)]
    assert v.open_client_orders() == ()
    assert v.last_day == 20000


def test_a_day_already_closed_is_refused_and_changes_nothing() -> None:
    v = venue()
    v.expire_day(20000)
    v.new(order("REST-1", BUY, 10, "150.00"))
    before = v.snapshot()
    for day in (20000, 19999):
        with pytest.raises(DayAlreadyClosed):
            v.apply(ExpireCommand(day=day))
    assert v.snapshot() == before
    assert v.open_client_orders() == ("REST-1",)


def test_the_expire_command_carries_its_day_through_the_journal() -> None:
    record = JournalRecord(n=7, command=ExpireCommand(day=20123))
    assert JournalRecord.model_validate_json(record.model_dump_json()).command == ExpireCommand(day=20123)


def test_orders_finished_today_and_yesterday_are_remembered_and_older_ones_forgotten() -> None:
    v = venue()
    v.new(order("MON-1", BUY, 10, None))
    v.new(order("MON-2", BUY, 10, "150.00"))  # rests, expires at Monday's end of day
    v.expire_day(1)
    v.new(order("TUE-1", BUY, 10, None))
    v.expire_day(2)
    assert [v.knows(c) for c in ("MON-1", "MON-2", "TUE-1")] == [False, False, True]
    v.expire_day(3)
    assert not v.knows("TUE-1")


def test_a_forgotten_order_id_is_a_new_order_again() -> None:
    v = venue()
    v.new(order("OLD-1", BUY, 10, None))
    v.expire_day(1)
    v.expire_day(2)
    again = v.new(order("OLD-1", BUY, 10, "150.00"))
    assert not again.duplicate
    assert [r.kind for r in again.reply] == ["accepted"]


def test_an_order_resting_at_an_end_of_day_is_remembered_with_the_day_it_expired() -> None:
    v = venue()
    v.new(order("REST-1", BUY, 10, "150.00"))
    v.expire_day(1)
    assert [r.reason for r in v.status("REST-1")] == ["", REASON_EXPIRED]
    v.expire_day(2)
    assert not v.knows("REST-1")


def test_a_replay_forgets_the_same_orders_as_the_original() -> None:
    commands = [TickCommand(), NewCommand(order=order("A-1", BUY, 10, None)), ExpireCommand(day=1),
                NewCommand(order=order("B-1", SELL, 10, "250.00")), ExpireCommand(day=2),
                NewCommand(order=order("A-1", BUY, 5, None)), TickCommand(), ExpireCommand(day=3)]
    first, second = BookVenue("SIM", ("AAPL",)), BookVenue("SIM", ("AAPL",))
    assert [first.apply(c) for c in commands] == [second.apply(c) for c in commands]
    assert first.snapshot() == second.snapshot()
    assert first.remembered_ids() == {"A-1"}


def test_liquidity_quotes_are_forgotten_as_soon_as_they_are_done() -> None:
    v = venue()
    for _ in range(200):
        v.tick()
    v.new(order("SWEEP", BUY, 900, None))  # takes the best asks
    assert all(book.remembered <= 2 * v.levels for book in v.books.values())


def test_the_venues_memory_stays_bounded_over_many_days_of_steady_traffic() -> None:
    """Each day: orders that fill, rest then get canceled, rest until the end of day, IOC remainders,
    and ticks. After any number of days the venue remembers at most two days of orders."""
    v = venue()
    per_day = 40
    peak_orders = peak_book = 0
    for day in range(1, 31):
        for k in range(per_day // 4):
            tag = f"D{day}-{k}"
            v.new(order(f"{tag}-F", BUY, 50, None))  # fills
            v.new(order(f"{tag}-R", BUY, 10, "150.00"))  # rests until the end of day
            v.new(order(f"{tag}-C", SELL, 10, "260.00"))
            v.cancel(f"{tag}-C")
            v.new(order(f"{tag}-I", SELL, 5000, "180.00", tif=TimeInForce.IOC))  # IOC remainder canceled
            for _ in range(5):
                v.tick()
            peak_book = max(peak_book, *(b.remembered for b in v.books.values()))
        peak_orders = max(peak_orders, v.remembered())  # yesterday's and today's
        v.expire_day(day)
        assert v.remembered() == per_day  # the day just closed
    assert peak_orders == 2 * per_day
    assert peak_book <= per_day // 4 + 2 * v.levels  # what rests, and the quotes
    assert all(book.remembered == 0 for book in v.books.values())  # everything expired, nothing kept
    assert len(v.snapshot()["orders"]) + len(v.snapshot()["done"]) == per_day


# --- fill_all ------------------------------------------------------------------------------------


def test_a_fill_all_venue_forgets_orders_executed_before_the_previous_end_of_day() -> None:
    v = FillAllVenue("SIM")
    v.submit(order("MON-1", BUY, 10, "10.00"))
    v.expire_day(1)
    v.submit(order("TUE-1", BUY, 10, "10.00"))
    v.expire_day(2)
    assert (v.status("MON-1"), bool(v.status("TUE-1"))) == ((), True)
    duplicate, _ = v.submit(order("TUE-1", BUY, 10, "10.00"))
    assert duplicate


def test_a_fill_all_venues_memory_stays_bounded_over_many_days() -> None:
    v = FillAllVenue("SIM")
    for day in range(1, 21):
        for k in range(25):
            v.submit(order(f"D{day}-{k}", BUY, 10, "10.00"))
        v.expire_day(day)
        assert v.remembered() <= 50


def test_a_fill_all_venue_restored_from_its_snapshot_knows_the_same_orders_and_numbers_on() -> None:
    import json

    v = FillAllVenue("SIM")
    for k in range(5):
        v.submit(order(f"O-{k}", BUY, 10, "10.00"))
    v.expire_day(1)
    restored = FillAllVenue.from_snapshot(json.loads(json.dumps(v.snapshot(leave_out={"O-4"}))))
    assert [restored.status(f"O-{k}") == v.status(f"O-{k}") for k in range(5)] == [True] * 4 + [False]
    assert restored.last_day == 1
    _, reports = restored.submit(order("NEW-1", BUY, 10, "10.00"))
    assert reports[0].venue_order_id == "SIM-6"


def test_folding_a_drop_copy_record_twice_changes_nothing() -> None:
    v = FillAllVenue("SIM")
    _, reports = v.submit(order("O-1", BUY, 10, "10.00"))
    restored = FillAllVenue("SIM")
    for report in (*reports, *reports):
        restored.restore(report)
    assert restored.status("O-1") == reports


def test_the_fast_encoding_of_a_fill_all_snapshot_is_the_snapshot() -> None:
    import json

    v = FillAllVenue("SIM")
    for day in range(1, 5):
        for k in range(6):
            v.submit(order(f"D{day}-{k}", BUY, 10, "10.00"))
        v.reject(order(f"D{day}-R", BUY, 10, "10.00"), "venue reject (fault injection)")
        assert json.loads(v.snapshot_json(leave_out={f"D{day}-0"})) == v.snapshot(leave_out={f"D{day}-0"})
        v.forget(f"D{day}-1")
        v.expire_day(day)
        assert json.loads(v.snapshot_json()) == v.snapshot()


# --- ids the books forgot ------------------------------------------------------------------------


def test_a_quote_that_reuses_the_id_of_a_finished_client_order_is_not_reported_as_that_order() -> None:
    v = venue()  # the first quotes are LP-AAPL-1 .. 6: the next tick quotes LP-AAPL-7 ..
    v.new(order("LP-AAPL-7", BUY, 10, None))  # fills at once: the book forgets it, the venue does not
    history = v.status("LP-AAPL-7")
    assert v.tick().reports == ()
    assert v.status("LP-AAPL-7") == history


def test_a_client_order_that_reuses_the_id_of_a_done_quote_is_never_replaced_as_a_quote() -> None:
    v = venue()
    best_ask = v.providers["AAPL"].quotes[3]
    v.new(order("TAKE-1", BUY, 500, None))  # takes the whole best ask: that quote is done
    v.new(order(best_ask, BUY, 10, "150.00"))  # rests under the quote's old id
    assert [r.kind for r in v.tick().reports] == []
    assert v.open_client_orders() == (best_ask,)
