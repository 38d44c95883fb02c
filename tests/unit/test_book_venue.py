"""The book-mode venue: deterministic replay of its journaled commands, solicited and unsolicited
client reports, the liquidity provider's reports kept out, refusals, seeded reference prices."""

from __future__ import annotations

from decimal import Decimal

from actors.domain.book_venue import (
    BookVenue,
    CancelCommand,
    Command,
    ExpireCommand,
    JournalRecord,
    NewCommand,
    Outcome,
    RejectCommand,
    TickCommand,
    is_refusal,
)
from actors.domain.order_book import REASON_CANCELED, REASON_EXPIRED, REASON_NOT_OPEN, REASON_UNKNOWN_ORDER
from messages.base import OrderType, Side, TimeInForce
from messages.venue import ExecReport, NewOrderSingle

BUY, SELL = Side.BUY, Side.SELL


def venue(seed: int = 7) -> BookVenue:
    v = BookVenue("SIM", ("AAPL", "MSFT"), seed=seed, levels=3, qty=500)
    v.tick()  # quotes around the first reference price
    return v


def order(cl_ord_id: str, side: Side, qty: int, price: Decimal | None, symbol: str = "AAPL",
          tif: TimeInForce = TimeInForce.DAY) -> NewOrderSingle:
    return NewOrderSingle(cl_ord_id=cl_ord_id, symbol=symbol, side=side, qty=qty, price=price,
                          order_type=OrderType.LIMIT if price is not None else OrderType.MARKET, tif=tif)


def mid(v: BookVenue, symbol: str = "AAPL") -> Decimal:
    return v.reference_prices()[symbol]


def kinds(reports: tuple[ExecReport, ...]) -> list[tuple[str, str, bool]]:
    return [(r.cl_ord_id, r.kind, r.unsolicited) for r in reports]


def crossed(v: BookVenue) -> tuple[Outcome, Outcome]:
    """A client BUY resting at the reference price (inside the spread), then a client SELL crossing it."""
    price = mid(v)
    resting = v.new(order("REST-1", BUY, 10, price))
    taker = v.new(order("TAKE-1", SELL, 10, price))
    return resting, taker


SCRIPT: list[Command] = [
    TickCommand(),
    NewCommand(order=order("A1", BUY, 10, Decimal("187.25"))),
    NewCommand(order=order("A2", SELL, 4, Decimal("187.25"))),
    NewCommand(order=order("A3", BUY, 800, None)),
    NewCommand(order=order("A4", SELL, 5, Decimal("500.00"), symbol="MSFT")),
    TickCommand(),
    CancelCommand(cl_ord_id="A1"),
    CancelCommand(cl_ord_id="NOPE"),
    RejectCommand(order=order("A5", BUY, 1, Decimal("187.00")), reason="venue reject (fault injection)"),
    NewCommand(order=order("A6", BUY, 7, Decimal("1.00"), symbol="ZZZZ")),
    TickCommand(),
    ExpireCommand(),
    TickCommand(),
]


def run(commands: list[Command]) -> list[Outcome]:
    v = BookVenue("SIM", ("AAPL", "MSFT"), seed=11)
    return [v.apply(c) for c in commands]


def test_replaying_the_same_command_sequence_gives_identical_reports() -> None:
    assert run(SCRIPT) == run(SCRIPT)


def test_replaying_the_journaled_records_gives_identical_reports() -> None:
    journal = [JournalRecord(n=i, command=c).model_dump_json().encode() for i, c in enumerate(SCRIPT, 1)]
    replayed = [JournalRecord.model_validate_json(data).command for data in journal]
    assert run(replayed) == run(SCRIPT)


def test_replay_reproduces_the_state_so_later_commands_give_the_same_ids() -> None:
    live, replay = BookVenue("SIM", ("AAPL", "MSFT"), seed=11), BookVenue("SIM", ("AAPL", "MSFT"), seed=11)
    for c in SCRIPT:
        live.apply(c)
        replay.apply(c)
    after = NewCommand(order=order("B1", BUY, 3, None))
    assert live.apply(after) == replay.apply(after)
    assert live.status("A2") == replay.status("A2")


def test_a_crossing_order_fills_the_resting_client_order_unsolicited() -> None:
    _resting, taker = crossed(venue())
    maker_fills = [r for r in taker.reports if r.cl_ord_id == "REST-1"]
    assert [(r.kind, r.last_qty, r.unsolicited) for r in maker_fills] == [("fill", 10, True)]


def test_a_crossing_orders_own_reports_are_solicited_and_are_its_whole_reply() -> None:
    _resting, taker = crossed(venue())
    assert kinds(taker.reply) == [("TAKE-1", "accepted", False), ("TAKE-1", "fill", False)]
    assert kinds(taker.reports) == [("TAKE-1", "accepted", False), ("TAKE-1", "fill", False),
                                    ("REST-1", "fill", True)]


def test_a_resting_orders_status_holds_its_accept_solicited_and_its_fill_unsolicited() -> None:
    v = venue()
    crossed(v)
    assert kinds(v.status("REST-1")) == [("REST-1", "accepted", False), ("REST-1", "fill", True)]


def test_liquidity_provider_reports_are_not_in_the_client_reports() -> None:
    v = venue()
    taken = v.new(order("SWEEP", BUY, 1200, None))  # a MARKET order through the provider's asks
    assert sum(r.last_qty for r in taken.reports if r.kind == "fill") == 1200
    assert {r.cl_ord_id for r in taken.reports} == {"SWEEP"}
    assert v.tick().reports == ()  # the provider's quotes are canceled and replaced: nothing of a client's


def test_a_tick_that_moves_the_quotes_through_a_resting_order_fills_it_unsolicited() -> None:
    v = venue()
    v.new(order("EDGE", BUY, 10, mid(v)))
    fills: list[ExecReport] = []
    for _ in range(200):
        fills = [r for r in v.tick().reports if r.kind == "fill"]
        if fills:
            break
    assert fills and all(r.cl_ord_id == "EDGE" and r.unsolicited for r in fills)


def test_a_cancels_report_is_unsolicited_and_is_its_reply() -> None:
    v = venue()
    v.new(order("REST-1", BUY, 10, Decimal("150.00")))
    canceled = v.cancel("REST-1")
    assert [(r.kind, r.reason, r.unsolicited) for r in canceled.reply] == [("canceled", REASON_CANCELED, True)]
    assert canceled.reports == canceled.reply


def test_a_cancel_of_an_unknown_order_is_a_refusal_in_the_reply_only() -> None:
    canceled = venue().cancel("NOPE")
    assert canceled.reports == ()
    assert [(r.kind, r.reason) for r in canceled.reply] == [("rejected", REASON_UNKNOWN_ORDER)]
    assert is_refusal(canceled.reply[0])


def test_a_cancel_of_a_finished_order_is_a_refusal_in_the_reply_only() -> None:
    v = venue()
    crossed(v)
    canceled = v.cancel("REST-1")
    assert canceled.reports == ()
    assert [(r.kind, r.reason) for r in canceled.reply] == [("rejected", REASON_NOT_OPEN)]


def test_a_cancel_of_a_liquidity_providers_quote_is_refused_and_leaves_the_quote() -> None:
    v = venue()
    quote = v.providers["AAPL"].quotes[0]
    canceled = v.cancel(quote)
    assert [r.reason for r in canceled.reply] == [REASON_UNKNOWN_ORDER]
    assert quote in v.providers["AAPL"].quotes


def test_a_duplicate_new_order_changes_nothing_and_answers_its_solicited_reports() -> None:
    v = venue()
    crossed(v)
    again = v.new(order("REST-1", BUY, 10, mid(v)))
    assert again.duplicate
    assert again.reports == ()
    assert kinds(again.reply) == [("REST-1", "accepted", False)]


def test_an_expiry_is_unsolicited_and_reports_client_orders_only() -> None:
    v = venue()
    v.new(order("REST-1", BUY, 10, Decimal("150.00")))
    expired = v.expire_day()
    assert [(r.cl_ord_id, r.reason, r.unsolicited) for r in expired.reports] == [("REST-1", REASON_EXPIRED, True)]


def test_a_rejected_order_takes_a_venue_order_id_and_is_known() -> None:
    v = venue()
    rejected = v.reject(order("BAD-1", BUY, 10, mid(v)), "venue reject (fault injection)")
    assert [(r.kind, r.reason, r.unsolicited) for r in rejected.reply] == [
        ("rejected", "venue reject (fault injection)", False)]
    assert rejected.reports == rejected.reply
    assert rejected.reply[0].exec_id == f"{rejected.reply[0].venue_order_id}-R"
    assert v.knows("BAD-1")


def test_an_order_for_an_unknown_symbol_is_rejected_and_recorded() -> None:
    v = venue()
    rejected = v.new(order("X-1", BUY, 10, Decimal("1.00"), symbol="ZZZZ"))
    assert [r.kind for r in rejected.reports] == ["rejected"]
    assert v.status("X-1") == rejected.reports


def test_tick_moves_the_reference_price_deterministically_with_the_seed() -> None:
    a, b = BookVenue("SIM", ("AAPL",), seed=3), BookVenue("SIM", ("AAPL",), seed=3)
    path_a = [(a.tick(), a.reference_prices()["AAPL"])[1] for _ in range(50)]
    path_b = [(b.tick(), b.reference_prices()["AAPL"])[1] for _ in range(50)]
    assert path_a == path_b
    assert len(set(path_a)) > 1


def test_a_different_seed_gives_a_different_reference_path() -> None:
    a, b = BookVenue("SIM", ("AAPL",), seed=3), BookVenue("SIM", ("AAPL",), seed=4)
    path_a = [(a.tick(), a.reference_prices()["AAPL"])[1] for _ in range(20)]
    path_b = [(b.tick(), b.reference_prices()["AAPL"])[1] for _ in range(20)]
    assert path_a != path_b
