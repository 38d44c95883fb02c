"""The venue's snapshots, journal trimming and ends of day against a real nats-server (no Ray): a
restart replays only the journal after the last snapshot, the journal is purged up to it, a day
closes once, and a broken journal stops the restore."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import pytest
from nats.aio.client import Client

from actors.domain.book_venue import ExpireCommand, JournalRecord, NewCommand, TickCommand
from actors.runtime.nats_conn import connect
from actors.runtime.streams import read_stream
from actors.stages.venue.book import SnapshotMismatch
from actors.stages.venue.journal import JournalBroken
from actors.stages.venue.session import VenueSession
from actors.stages.venue.snapshots import VENUE_SNAPSHOTS_BUCKET, SnapshotStore
from cluster.config import SystemConfig
from cluster.topology import ensure_topology
from messages import MSG_ID_HEADER, subjects
from messages.base import Side
from messages.venue import ExecReport, NewOrderSingle, OrderStatusRequest, SessionReply
from tests.conftest import async_wait_until, small_config

pytestmark = pytest.mark.integration

VENUE = "SIM"
#: A long tick: the test decides when the journal grows. No snapshot by time unless a test asks.
BOOK = {"mode": "book", "symbols": ["AAPL", "MSFT"], "tick": 60, "seed": 7, "snapshot_every": 100,
        "snapshot_interval": 600}


def at(text: str) -> float:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).timestamp()


def day_of(date: str) -> int:
    return (dt.date.fromisoformat(date) - dt.date(1970, 1, 1)).days


class Harness:
    def __init__(self, url: str, venue_nc: Client, client: Client) -> None:
        self.url = url
        self.venue_nc = venue_nc
        self.client = client
        self.js = venue_nc.jetstream()
        self.sessions: list[VenueSession] = []

    def config(self, **venue: Any) -> SystemConfig:
        return small_config(self.url, venues={VENUE: {**BOOK, **venue}})

    def session(self, cfg: SystemConfig, clock: Callable[[], float] | None = None) -> VenueSession:
        extra = {} if clock is None else {"clock": clock}
        session = VenueSession(self.venue_nc, self.js, VENUE, cfg.venues[VENUE], **extra)
        self.sessions.append(session)
        return session

    async def start(self, cfg: SystemConfig, clock: Callable[[], float] | None = None) -> VenueSession:
        """A venue session as its process runs it: restore, then serve."""
        session = self.session(cfg, clock)
        await session.restore()
        await session.serve()
        await async_wait_until(self._answers, 5.0, what="the venue's session to have a responder")
        return session

    async def _answers(self) -> bool:
        try:
            await self.ask(OrderStatusRequest(cl_ord_id="PROBE-1"), timeout=0.5)
        except Exception:
            return False
        return True

    async def ask(self, request: NewOrderSingle | OrderStatusRequest, timeout: float = 5.0) -> SessionReply:
        msg = await self.client.request(subjects.venue_session(VENUE), request.model_dump_json().encode(),
                                        timeout=timeout)
        return SessionReply.model_validate_json(msg.data)

    async def dropcopy(self) -> list[ExecReport]:
        stored = await read_stream(self.js, "VENUE", subjects.venue_dropcopy(VENUE))
        return [ExecReport.model_validate_json(m.data) for m in stored]

    async def journal(self) -> list[JournalRecord]:
        stored = await read_stream(self.js, "VENUE_INPUT", subjects.venue_input(VENUE))
        return [JournalRecord.model_validate_json(m.data) for m in stored]


@pytest.fixture
async def venue(nats_server) -> AsyncIterator[Harness]:
    venue_nc = await connect(nats_server.url, name="venue")
    client = await connect(nats_server.url, name="client")
    harness = Harness(nats_server.url, venue_nc, client)
    try:
        await ensure_topology(venue_nc.jetstream(), harness.config())
        yield harness
    finally:
        for session in harness.sessions:
            await session.close()
        await client.close()
        await venue_nc.close()


def buy(cl_ord_id: str, price: str = "150.00", qty: int = 10) -> NewOrderSingle:
    return NewOrderSingle(cl_ord_id=cl_ord_id, symbol="AAPL", side=Side.BUY, qty=qty, price=Decimal(price))


async def journal_ticks(session: VenueSession, count: int, chunk: int = 10) -> None:
    """Journal `count` ticks, `chunk` at a time (each chunk acknowledged before the next)."""
    book = session.book_session
    assert book is not None
    for start in range(0, count, chunk):
        item = None
        for _ in range(min(chunk, count - start)):
            item = book.run(TickCommand(), None)
        assert item is not None
        await asyncio.wait_for(asyncio.shield(item.done), 10)


async def test_a_restart_replays_only_the_journal_after_the_last_snapshot_into_the_same_state(
        venue: Harness) -> None:
    cfg = venue.config()
    first = await venue.start(cfg)
    await venue.ask(buy("REST-1"))
    await journal_ticks(first, 230)
    await venue.ask(buy("REST-2", "151.00"))
    await journal_ticks(first, 7)
    expected, last_n = first.book.snapshot(), first.book_session.journaled  # type: ignore[union-attr]
    before = [await venue.ask(OrderStatusRequest(cl_ord_id=c)) for c in ("REST-1", "REST-2")]
    await first.close()

    snapshot = await SnapshotStore(venue.js, VENUE).load()
    assert snapshot is not None and 100 < snapshot.n < last_n
    second = venue.session(cfg)
    assert await second.restore() == last_n - snapshot.n
    assert second.book.snapshot() == expected  # same orders, counters, quotes and random walks
    assert second.book_session.journaled == last_n  # type: ignore[union-attr]
    await second.serve()
    assert [await venue.ask(OrderStatusRequest(cl_ord_id=c)) for c in ("REST-1", "REST-2")] == before


async def test_the_journal_is_purged_up_to_the_last_snapshot(venue: Harness) -> None:
    first = await venue.start(venue.config())
    await journal_ticks(first, 150)
    last_n = first.book_session.journaled  # type: ignore[union-attr]
    await first.close()
    snapshot = await SnapshotStore(venue.js, VENUE).load()
    assert snapshot is not None and snapshot.n >= 100
    assert [r.n for r in await venue.journal()] == list(range(snapshot.n + 1, last_n + 1))


async def test_a_snapshot_is_taken_after_the_interval_when_anything_changed(venue: Harness) -> None:
    session = await venue.start(venue.config(snapshot_interval="200ms"))
    await journal_ticks(session, 3)
    n = session.book_session.journaled  # type: ignore[union-attr]

    async def covered() -> bool:
        snapshot = await SnapshotStore(venue.js, VENUE).load()
        return snapshot is not None and snapshot.n == n

    await async_wait_until(covered, 5.0, what="a snapshot of the last journal record")


async def test_an_end_of_day_expires_resting_day_orders_with_their_reports_in_the_drop_copy(
        venue: Harness) -> None:
    session = await venue.start(venue.config(day_length="1s"))
    await venue.ask(buy("REST-1"))

    async def expired() -> list[tuple[str, str, bool]]:
        return [(r.kind, r.reason, r.unsolicited) for r in await venue.dropcopy() if r.cl_ord_id == "REST-1"
                and r.kind == "canceled"]

    assert await async_wait_until(expired, 5.0, what="REST-1 expired") == [("canceled", "expired", True)]
    assert session.book.last_day is not None and session.book.last_day >= 1
    assert session.book.open_client_orders() == ()  # type: ignore[union-attr]


async def test_a_venue_down_at_an_end_of_day_closes_that_day_when_it_starts(venue: Harness) -> None:
    now = [at("2024-05-01T20:00:00")]
    cfg = venue.config(end_of_day="21:00")
    first = await venue.start(cfg, clock=lambda: now[0])
    assert first.book.last_day == day_of("2024-04-30")  # afresh: the days before are closed
    await venue.ask(buy("REST-1"))
    await first.close()

    now[0] = at("2024-05-01T21:30:00")
    second = await venue.start(cfg, clock=lambda: now[0])
    assert second.book.last_day == day_of("2024-05-01")
    assert [(r.kind, r.reason) for r in await venue.dropcopy() if r.cl_ord_id == "REST-1"] == [
        ("accepted", ""), ("canceled", "expired")]


async def test_a_restarted_venue_does_not_close_the_same_day_twice(venue: Harness) -> None:
    now = [at("2024-05-01T20:00:00")]
    cfg = venue.config(end_of_day="21:00")
    await (await venue.start(cfg, clock=lambda: now[0])).close()
    now[0] = at("2024-05-01T21:30:00")
    second = await venue.start(cfg, clock=lambda: now[0])
    await venue.ask(buy("REST-2"))
    await second.close()
    closed_by_second = second.book_session.journaled  # type: ignore[union-attr]

    now[0] = at("2024-05-01T21:40:00")
    third = await venue.start(cfg, clock=lambda: now[0])
    later = [r for r in await venue.journal() if r.n > closed_by_second]
    assert later and not any(isinstance(r.command, ExpireCommand) for r in later)
    assert third.book.last_day == day_of("2024-05-01")
    assert third.book.open_client_orders() == ("REST-2",)  # type: ignore[union-attr]


async def test_a_venue_whose_journal_is_older_than_trading_days_expires_nothing_at_start(venue: Harness) -> None:
    # A journal written before ends of day were recorded: one order rests, no day was ever closed.
    record = JournalRecord(n=1, command=NewCommand(order=buy("OLD-1")))
    await venue.js.publish(subjects.venue_input(VENUE), record.model_dump_json().encode(),
                           headers={MSG_ID_HEADER: f"{VENUE}:in:1"})
    session = await venue.start(venue.config(end_of_day="21:00"), clock=lambda: at("2024-05-01T21:30:00"))
    assert session.book.last_day is None
    assert session.book.open_client_orders() == ("OLD-1",)  # type: ignore[union-attr]


async def test_a_journal_with_a_gap_after_the_snapshot_makes_the_restore_fail_loudly(venue: Harness) -> None:
    cfg = venue.config()
    first = await venue.start(cfg)
    await journal_ticks(first, 5)
    last_n = first.book_session.journaled  # type: ignore[union-attr]
    await first.close()
    gap = JournalRecord(n=last_n + 2, command=TickCommand())
    await venue.js.publish(subjects.venue_input(VENUE), gap.model_dump_json().encode(),
                           headers={MSG_ID_HEADER: f"{VENUE}:in:{gap.n}"})
    with pytest.raises(JournalBroken, match=f"record {last_n + 2} .* where record {last_n + 1} was expected"):
        await venue.session(cfg).restore()


async def test_a_trimmed_journal_without_its_snapshot_makes_the_restore_fail_loudly(venue: Harness) -> None:
    cfg = venue.config()
    first = await venue.start(cfg)
    await journal_ticks(first, 120)
    await first.close()
    await (await venue.js.object_store(VENUE_SNAPSHOTS_BUCKET)).delete(VENUE)
    with pytest.raises(JournalBroken, match="there is no snapshot"):
        await venue.session(cfg).restore()


async def test_a_snapshot_of_a_venue_configured_otherwise_is_refused(venue: Harness) -> None:
    await (await venue.start(venue.config())).close()
    with pytest.raises(SnapshotMismatch, match="symbols"):
        await venue.session(venue.config(symbols=["AAPL"])).restore()


async def test_a_restarted_fill_all_venue_reads_only_the_drop_copy_after_its_snapshot(venue: Harness) -> None:
    cfg = venue.config(mode="fill_all", snapshot_every=6)
    first = await venue.start(cfg)
    replies = {f"FA-{k}": await venue.ask(buy(f"FA-{k}", "10.00")) for k in range(10)}
    await first.close()

    second = venue.session(cfg)
    read = await second.restore()
    assert 0 < read < 20  # 10 orders, 2 reports each: only those after the snapshot
    assert all(second.book.status(cl_ord_id) == reply.reports for cl_ord_id, reply in replies.items())
    await second.serve()
    again = await venue.ask(buy("FA-0", "10.00"))
    assert again.duplicate and again.reports == replies["FA-0"].reports
    new = await venue.ask(buy("FA-NEW", "10.00"))
    assert new.reports[0].venue_order_id == f"{VENUE}-11"


async def test_the_topology_gives_the_journal_no_max_age_and_creates_the_snapshot_bucket(venue: Harness) -> None:
    await ensure_topology(venue.js, venue.config())  # again: an existing topology is updated in place
    journal = await venue.js.stream_info("VENUE_INPUT")
    dropcopy = await venue.js.stream_info("VENUE")
    assert (journal.config.max_age, dropcopy.config.max_age) == (0, venue.config().nats.max_age)
    assert (await (await venue.js.object_store(VENUE_SNAPSHOTS_BUCKET)).status()).bucket == VENUE_SNAPSHOTS_BUCKET
