"""The book-mode venue simulator against a real nats-server (no Ray): its session, its drop copy,
its input journal and restore, its reference prices and run-time fault injection."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal

import pytest
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from actors.domain.book_venue import JournalRecord, NewCommand
from actors.domain.venue_faults import REJECT_REASON, FaultSettings
from actors.runtime.nats_conn import connect
from actors.runtime.refprices import read_reference_prices
from actors.runtime.streams import read_stream
from actors.stages.venue.session import VenueSession
from cluster.config import SystemConfig
from cluster.ops.venue_admin import VenueAdminUnavailable, set_venue_faults
from cluster.topology import ensure_topology
from messages import MSG_ID_HEADER, subjects
from messages.base import Side
from messages.venue import ExecReport, NewOrderSingle, OrderCancelRequest, OrderStatusRequest, SessionReply
from tests.conftest import async_wait_until, small_config

pytestmark = pytest.mark.integration

VENUE = "SIM"
SYMBOLS = ("AAPL", "MSFT")

StartVenue = Callable[[], Awaitable[VenueSession]]


class Harness:
    def __init__(self, cfg: SystemConfig, venue_nc: Client, client: Client) -> None:
        self.cfg = cfg
        self.venue_nc = venue_nc
        self.client = client
        self.js = venue_nc.jetstream()
        self.sessions: list[VenueSession] = []

    async def start(self) -> VenueSession:
        """A venue session as its process runs it: restore, then serve (the first tick right away)."""
        session = VenueSession(self.venue_nc, self.js, VENUE, self.cfg.venues[VENUE])
        self.sessions.append(session)
        await session.restore()
        await session.serve()
        await async_wait_until(lambda: session.book.reference_prices(), 5.0, what="the first tick")  # type: ignore[union-attr]
        await async_wait_until(self._answers, 5.0, what="the venue's subjects to have a responder")
        return session

    async def _answers(self) -> bool:
        """Both subjects answer (a new subscription is not instantly visible to another connection)."""
        try:
            await set_venue_faults(self.client, VENUE, timeout=0.5)
            await self.ask(OrderStatusRequest(cl_ord_id="PROBE-1"), timeout=0.5)
        except Exception:
            return False
        return True

    async def ask(self, request: NewOrderSingle | OrderStatusRequest | OrderCancelRequest,
                  timeout: float = 5.0) -> SessionReply:
        msg = await self.client.request(subjects.venue_session(VENUE), request.model_dump_json().encode(),
                                        timeout=timeout)
        return SessionReply.model_validate_json(msg.data)

    async def dropcopy(self) -> list[ExecReport]:
        stored = await read_stream(self.js, "VENUE", subjects.venue_dropcopy(VENUE))
        return [ExecReport.model_validate_json(m.data) for m in stored]


@pytest.fixture
async def venue(nats_server) -> AsyncIterator[Harness]:
    # A long tick: the test decides when prices move (only the first tick after each start).
    cfg = small_config(nats_server.url, venues={VENUE: {"mode": "book", "symbols": list(SYMBOLS), "tick": 60,
                                                        "seed": 7}})
    venue_nc = await connect(nats_server.url, name="venue")
    client = await connect(nats_server.url, name="client")
    harness = Harness(cfg, venue_nc, client)
    try:
        await ensure_topology(venue_nc.jetstream(), cfg)
        yield harness
    finally:
        for session in harness.sessions:
            await session.close()
        await client.close()
        await venue_nc.close()


def buy(cl_ord_id: str, price: Decimal, qty: int = 10) -> NewOrderSingle:
    return NewOrderSingle(cl_ord_id=cl_ord_id, symbol="AAPL", side=Side.BUY, qty=qty, price=price)


def sell(cl_ord_id: str, price: Decimal, qty: int = 10) -> NewOrderSingle:
    return NewOrderSingle(cl_ord_id=cl_ord_id, symbol="AAPL", side=Side.SELL, qty=qty, price=price)


def kinds(reports: tuple[ExecReport, ...] | list[ExecReport]) -> list[tuple[str, str, bool]]:
    return [(r.cl_ord_id, r.kind, r.unsolicited) for r in reports]


async def cross(venue: Harness, session: VenueSession) -> tuple[SessionReply, SessionReply]:
    """A BUY resting at the reference price (inside the provider's spread), then a SELL crossing it."""
    price = session.book.reference_prices()["AAPL"]  # type: ignore[union-attr]
    resting = await venue.ask(buy("REST-1", price))
    taker = await venue.ask(sell("TAKE-1", price))
    return resting, taker


async def test_a_crossing_order_gets_its_own_reports_and_the_resting_fill_is_in_the_drop_copy_unsolicited(
        venue: Harness) -> None:
    session = await venue.start()
    resting, taker = await cross(venue, session)
    assert kinds(resting.reports) == [("REST-1", "accepted", False)]
    assert kinds(taker.reports) == [("TAKE-1", "accepted", False), ("TAKE-1", "fill", False)]
    dropcopy = await venue.dropcopy()
    assert kinds(dropcopy) == [("REST-1", "accepted", False), ("TAKE-1", "accepted", False),
                               ("TAKE-1", "fill", False), ("REST-1", "fill", True)]


async def test_a_restarted_venue_rebuilds_its_book_from_the_journal(venue: Harness) -> None:
    first = await venue.start()
    await cross(venue, first)
    before = await venue.ask(OrderStatusRequest(cl_ord_id="REST-1"))
    await first.close()

    second = await venue.start()
    after = await venue.ask(OrderStatusRequest(cl_ord_id="REST-1"))
    assert after.reports == before.reports
    assert kinds(after.reports) == [("REST-1", "accepted", False), ("REST-1", "fill", True)]
    duplicate = await venue.ask(buy("REST-1", Decimal("1.00")))
    assert duplicate.ok and duplicate.duplicate
    assert kinds(duplicate.reports) == [("REST-1", "accepted", False)]
    assert second.book.reference_prices()  # type: ignore[union-attr]


async def test_a_restarted_venue_publishes_its_reference_prices(venue: Harness) -> None:
    first = await venue.start()
    await first.close()
    second = await venue.start()

    async def published() -> bool:
        return (await read_reference_prices(venue.js)).for_venue(VENUE) == second.book.reference_prices()  # type: ignore[union-attr]

    await async_wait_until(published, 5.0, what="the restarted venue's prices in REFPRICES")
    assert set((await read_reference_prices(venue.js)).for_venue(VENUE)) == set(SYMBOLS)


async def test_a_restarted_venue_keeps_numbering_its_journal_and_accepts_new_orders(venue: Harness) -> None:
    first = await venue.start()
    await cross(venue, first)
    await first.close()
    last_before = first.book_session.journaled  # type: ignore[union-attr]
    second = await venue.start()
    reply = await venue.ask(buy("AFTER-1", Decimal("1.00")))
    assert reply.ok and kinds(reply.reports) == [("AFTER-1", "accepted", False)]
    journal = await read_stream(venue.js, "VENUE_INPUT", subjects.venue_input(VENUE))
    numbers = [JournalRecord.model_validate_json(m.data).n for m in journal]
    # The journal starts after the last snapshot (it is trimmed up to it) and has no gap.
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    assert numbers[-1] > last_before
    assert second.failure is None


async def test_a_command_journaled_but_missing_from_the_drop_copy_is_republished_on_restore(
        venue: Harness) -> None:
    first = await venue.start()
    await first.close()
    # As if the venue crashed after journaling an order and before its drop copy was written.
    journal = await read_stream(venue.js, "VENUE_INPUT", subjects.venue_input(VENUE))
    n = JournalRecord.model_validate_json(journal[-1].data).n + 1
    record = JournalRecord(n=n, command=NewCommand(order=buy("LOST-1", Decimal("1.00"))))
    await venue.js.publish(subjects.venue_input(VENUE), record.model_dump_json().encode(),
                           headers={MSG_ID_HEADER: f"{VENUE}:in:{n}"})
    await venue.start()
    assert kinds([r for r in await venue.dropcopy() if r.cl_ord_id == "LOST-1"]) == [("LOST-1", "accepted", False)]
    status = await venue.ask(OrderStatusRequest(cl_ord_id="LOST-1"))
    assert kinds(status.reports) == [("LOST-1", "accepted", False)]


async def test_a_failed_journal_write_is_not_answered_ok_and_stops_the_venue(venue: Harness) -> None:
    session = await venue.start()
    await venue.js.delete_stream("VENUE_INPUT")  # every journal write fails from now on
    reply = await venue.ask(buy("LOST-1", Decimal("1.00")))
    assert not reply.ok and "journal" in reply.error
    assert session.failed.is_set()
    await async_wait_until(lambda: not session.serving, 5.0, what="the venue leaving its session")


async def test_a_cancel_is_answered_with_its_unsolicited_canceled_report_also_in_the_drop_copy(
        venue: Harness) -> None:
    await venue.start()
    await venue.ask(buy("REST-1", Decimal("1.00")))
    canceled = await venue.ask(OrderCancelRequest(cl_ord_id="REST-1"))
    assert kinds(canceled.reports) == [("REST-1", "canceled", True)]
    assert kinds(await venue.dropcopy())[-1] == ("REST-1", "canceled", True)


async def test_a_reject_rate_of_one_rejects_new_orders_until_cleared(venue: Harness) -> None:
    await venue.start()
    settings = await set_venue_faults(venue.client, VENUE, reject_rate=1.0)
    assert settings == FaultSettings(reject_rate=1.0).model_dump()
    rejected = await venue.ask(buy("FAULT-1", Decimal("1.00")))
    assert [(r.kind, r.reason) for r in rejected.reports] == [("rejected", REJECT_REASON)]
    assert ("FAULT-1", "rejected", False) in kinds(await venue.dropcopy())

    assert await set_venue_faults(venue.client, VENUE, clear=True) == FaultSettings().model_dump()
    accepted = await venue.ask(buy("FAULT-2", Decimal("1.00")))
    assert kinds(accepted.reports) == [("FAULT-2", "accepted", False)]


async def test_a_disconnected_venue_has_no_responders_until_cleared(venue: Harness) -> None:
    await venue.start()
    await set_venue_faults(venue.client, VENUE, disconnect=True)
    with pytest.raises(NoRespondersError):
        await venue.ask(buy("DISC-1", Decimal("1.00")), timeout=2.0)
    await set_venue_faults(venue.client, VENUE, clear=True)
    reply = await venue.ask(buy("DISC-1", Decimal("1.00")))
    assert reply.ok and not reply.duplicate  # never executed while disconnected


async def test_a_stalled_venue_does_not_answer_until_cleared(venue: Harness) -> None:
    await venue.start()
    await set_venue_faults(venue.client, VENUE, stall=True)
    with pytest.raises(NatsTimeoutError):
        await venue.ask(buy("STALL-1", Decimal("1.00")), timeout=0.2)
    await set_venue_faults(venue.client, VENUE, stall=False)
    assert (await venue.ask(buy("STALL-1", Decimal("1.00")))).ok


async def test_latency_delays_each_reply(venue: Harness) -> None:
    await venue.start()
    await set_venue_faults(venue.client, VENUE, latency=0.3)
    started = time.monotonic()
    reply = await venue.ask(OrderStatusRequest(cl_ord_id="NONE-1"))
    assert reply.ok and time.monotonic() - started >= 0.3


async def test_setting_faults_with_no_venue_running_raises_a_clear_error(venue: Harness) -> None:
    with pytest.raises(VenueAdminUnavailable, match="venue SIM did not answer"):
        await set_venue_faults(venue.client, VENUE, stall=True, timeout=1.0)


async def test_the_fill_all_mode_rejects_at_the_injected_rate_too(nats_server) -> None:
    cfg = small_config(nats_server.url)
    nc = await connect(nats_server.url, name="venue")
    session = VenueSession(nc, nc.jetstream(), VENUE, cfg.venues[VENUE])
    try:
        await ensure_topology(nc.jetstream(), cfg)
        await session.restore()
        await session.serve()
        await set_venue_faults(nc, VENUE, reject_rate=1.0)
        msg = await nc.request(subjects.venue_session(VENUE), buy("FA-1", Decimal("5.00")).model_dump_json().encode(),
                               timeout=5.0)
        reply = SessionReply.model_validate_json(msg.data)
        assert [(r.kind, r.reason) for r in reply.reports] == [("rejected", REJECT_REASON)]
        restored = VenueSession(nc, nc.jetstream(), VENUE, cfg.venues[VENUE])
        await restored.restore()
        assert restored.book.status("FA-1") == reply.reports
    finally:
        await session.close()
        await nc.close()
