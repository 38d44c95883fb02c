"""The book-mode venue's session: requests, ticks and ends of day as journaled commands, and the
snapshots that keep its journal short.

Every state-changing command (a new order that is not a duplicate, a cancel, a tick, an end of day)
is executed in memory at once, in arrival order, and queued for the journal (actors.stages.venue.journal);
its reply goes out once the command and its drop-copy reports are acknowledged.

Snapshots: every `snapshot_every` journal records, every `snapshot_interval` seconds when anything
changed, and at every end of day, the state right after command n is serialized at once; once
command n's writes are acknowledged the snapshot is stored (actors.stages.venue.snapshots) and the journal
is purged up to it. A restart loads the snapshot and replays only the records after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from nats.aio.msg import Msg
from pydantic import ValidationError

from actors.domain.book_venue import (
    BookVenue,
    CancelCommand,
    ExpireCommand,
    JournalRecord,
    MassCancelCommand,
    NewCommand,
    Outcome,
    RejectCommand,
    TickCommand,
)
from actors.domain.venue_faults import REJECT_REASON
from actors.runtime.refprices import publish_reference_prices
from actors.stages.venue.core import ACK_TIMEOUT, CLOSED_UNKNOWN, REQUEST, SessionCore
from actors.stages.venue.journal import (
    JOURNAL_STREAM,
    JournalWriter,
    Pending,
    repair_dropcopy,
    replay_journal,
    settle,
)
from actors.stages.venue.snapshots import SnapshotSchedule, SnapshotStore, VenueSnapshot
from messages import subjects
from messages.venue import OrderCancelRequest, OrderMassCancelRequest, OrderStatusRequest, SessionReply

__all__ = ["BookCommand", "BookSession", "SnapshotMismatch"]

log = logging.getLogger(__name__)

BookCommand = NewCommand | RejectCommand | CancelCommand | MassCancelCommand | TickCommand | ExpireCommand


class SnapshotMismatch(RuntimeError):
    """The stored snapshot is of a venue configured otherwise (symbols, levels, quote quantity)."""


class BookSession:
    """Book mode of a VenueSession: its BookVenue, journal, ticks, ends of day and snapshots."""

    def __init__(self, core: SessionCore) -> None:
        self.core = core
        vcfg = core.vcfg
        self.book = self._fresh_book()
        self.snapshots = SnapshotStore(core.js, core.venue)
        self.schedule = SnapshotSchedule(vcfg.snapshot_every, vcfg.snapshot_interval, now=time.monotonic())
        self.restored = False
        self._n = 0
        self._last: Pending | None = None
        self._writer = JournalWriter(core)

    def _fresh_book(self) -> BookVenue:
        vcfg = self.core.vcfg
        return BookVenue(self.core.venue, vcfg.symbols, seed=vcfg.seed, levels=vcfg.levels, qty=vcfg.quote_qty)

    @property
    def last_day(self) -> int | None:
        """The last trading day closed."""
        return self.book.last_day

    @property
    def fresh(self) -> bool:
        """True for a venue with nothing on record (no journal record, no snapshot)."""
        return self._n == 0

    @property
    def journaled(self) -> int:
        """The number of the last journal record (executed here or replayed)."""
        return self._n

    # --- life cycle ----------------------------------------------------------------------------

    async def restore(self) -> int:
        """Load the snapshot (if any), replay the journal after it, then publish every report of the
        replayed commands the drop copy lacks (looking only after the snapshot's drop-copy position)
        and the reference prices. Returns the journal records replayed. Raises JournalBroken (see
        actors.stages.venue.journal) or SnapshotMismatch rather than start from another book."""
        started = time.monotonic()
        snapshot = await self.snapshots.load()
        book = self._fresh_book() if snapshot is None else self._from_snapshot(snapshot)
        replayed = await replay_journal(self.core, book, snapshot)
        self.book = book
        self._n = replayed.n
        self.restored = True
        repaired, dropcopy_seq = await repair_dropcopy(self.core, replayed.produced,
                                                       snapshot.dropcopy_seq if snapshot is not None else 0)
        self._writer.dropcopy_seq = dropcopy_seq
        covered = snapshot.n if snapshot is not None else 0
        self.schedule = SnapshotSchedule(self.core.vcfg.snapshot_every, self.core.vcfg.snapshot_interval,
                                         covered=covered, now=time.monotonic())
        log.info("venue %s restored in %.3f s: snapshot at journal record %d, %d records replayed after it (%d "
                 "reports, %d repaired in the drop copy)", self.core.venue, time.monotonic() - started, covered,
                 replayed.records, len(replayed.produced), repaired)
        await self.publish_prices()
        return replayed.records

    def _from_snapshot(self, snapshot: VenueSnapshot) -> BookVenue:
        book = BookVenue.restore(snapshot.state)
        vcfg = self.core.vcfg
        stored = (book.venue, book.symbols, book.levels, book.qty)
        configured = (self.core.venue, tuple(vcfg.symbols), vcfg.levels, vcfg.quote_qty)
        if stored != configured:
            raise SnapshotMismatch(
                f"venue {self.core.venue}: its snapshot (journal record {snapshot.n}) is of (venue, symbols, levels, "
                f"quote_qty) = {stored}, the config says {configured}. A book cannot change under its journal: "
                f"restore the config, or start the venue afresh (delete its object in the snapshot bucket and "
                f"purge {subjects.venue_input(self.core.venue)})")
        return book

    def start(self) -> None:
        """Start the journal's writers (before the first command)."""
        self._writer.start()

    async def settle(self, timeout: float) -> None:
        """Let the writes of every command executed so far settle."""
        await settle(self._last, timeout)

    async def halt(self, timeout: float) -> None:
        await self._writer.stop(timeout)

    # --- requests ------------------------------------------------------------------------------

    async def on_request(self, msg: Msg) -> None:
        self._on_book_request(msg, self.book)

    def _on_book_request(self, msg: Msg, book: BookVenue) -> None:
        """Executes the request at once (no await before it is queued for the journal)."""
        try:
            request = REQUEST.validate_json(msg.data)
        except ValidationError as exc:
            self._reply_after_last(msg, SessionReply(ok=False, error=f"malformed request: {exc.error_count()} "
                                                                      "error(s)"))
            return
        if isinstance(request, OrderStatusRequest):
            if request.close_if_unknown is not None and not book.knows(request.cl_ord_id):
                # Unknown and to be closed: journaled as rejected, so a late copy of it is a duplicate.
                self.run(RejectCommand(order=request.close_if_unknown, reason=request.reason or CLOSED_UNKNOWN), msg)
            else:
                self._reply_after_last(msg, SessionReply(ok=True, reports=book.status(request.cl_ord_id)))
        elif isinstance(request, OrderCancelRequest):
            self.run(CancelCommand(cl_ord_id=request.cl_ord_id), msg)
        elif isinstance(request, OrderMassCancelRequest):
            if book.open_client_orders(request.account):
                self.run(MassCancelCommand(account=request.account), msg)
            else:  # nothing to cancel: nothing to journal
                self._reply_after_last(msg, SessionReply(ok=True))
        elif book.knows(request.cl_ord_id):
            # A retry: the order's own reports as recorded, once everything executed so far is on record.
            self._reply_after_last(msg, SessionReply(ok=True, duplicate=True,
                                                     reports=book.solicited(request.cl_ord_id)))
        elif self.core.faults.rejects(request.cl_ord_id):
            self.run(RejectCommand(order=request, reason=REJECT_REASON), msg)
        else:
            self.run(NewCommand(order=request), msg)

    def run(self, command: BookCommand, msg: Msg | None) -> Pending | None:
        """Execute a command in memory and queue it for the journal; the reply (if any) goes out once
        the command and its reports are acknowledged. Synchronous: commands journal in execution order."""
        try:
            outcome: Outcome = self.book.apply(command)
        except Exception as exc:  # raised before any change (input no report can carry)
            log.warning("venue %s refused %s: %r", self.core.venue, command.cmd, exc)
            if msg is not None:
                self.core.respond_later(msg, SessionReply(ok=False, error=str(exc)))
            return None
        if outcome.duplicate:  # cannot happen: duplicates are answered before
            if msg is not None:
                self._reply_after_last(msg, SessionReply(ok=True, duplicate=True, reports=outcome.reply))
            return None
        self._n += 1
        record = JournalRecord(n=self._n, command=command)
        item = Pending(self._n, record.model_dump_json().encode(), outcome.reports)
        self._writer.put(item)
        self._last = item
        if msg is not None:
            self.core.track(asyncio.create_task(self._reply_when_done(msg, item,
                                                                      SessionReply(ok=True, reports=outcome.reply))))
        if isinstance(command, ExpireCommand):
            self.schedule.force()
        self.maybe_snapshot()
        return item

    def _reply_after_last(self, msg: Msg, reply: SessionReply) -> None:
        """Answer once every command executed so far is on record (at once when none is in flight)."""
        last = self._last
        if last is None or (last.done.done() and last.done.exception() is None):
            self.core.respond_later(msg, reply)
        else:
            self.core.track(asyncio.create_task(self._reply_when_done(msg, last, reply)))

    async def _reply_when_done(self, msg: Msg, item: Pending, reply: SessionReply) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(item.done), 4 * ACK_TIMEOUT)
        except Exception as exc:
            reply = SessionReply(ok=False, error=f"journal unavailable: {exc!r}")
        await self.core.respond(msg, reply)

    # --- ticks and ends of day -----------------------------------------------------------------

    async def tick(self) -> None:
        """One tick now: journaled like any command, then the new reference prices are published."""
        item = self.run(TickCommand(), None)
        if item is not None:
            await asyncio.wait_for(asyncio.shield(item.done), 4 * ACK_TIMEOUT)
        await self.publish_prices()

    async def tick_loop(self, stopping: asyncio.Event) -> None:
        """A tick every `tick` seconds (the first at once) until `stopping` or the venue fails."""
        while self.core.failure is None and not stopping.is_set():
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("venue %s tick failed: %r", self.core.venue, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.core.vcfg.tick)

    async def close_day(self, day: int) -> None:
        """End of trading day `day` (and of any earlier one not closed): every resting order expires
        and the orders finished before the previous end of day are forgotten (journaled; the reports go
        to the drop copy). A day already closed is refused (logged) and changes nothing."""
        item = self.run(ExpireCommand(day=day), None)
        if item is not None:
            await asyncio.wait_for(asyncio.shield(item.done), 4 * ACK_TIMEOUT)

    async def publish_prices(self) -> None:
        prices = self.book.reference_prices()
        if prices:
            await publish_reference_prices(self.core.js, self.core.venue, prices)

    # --- snapshots -----------------------------------------------------------------------------

    def maybe_snapshot(self) -> None:
        """Serialize the state now if a snapshot is due after the last command; it is stored once that
        command's writes are acknowledged."""
        item = self._last
        if item is None or self.core.failure is not None or not self.schedule.due(item.n, time.monotonic()):
            return
        state = self.book.snapshot_json()
        self.schedule.taking(item.n, time.monotonic())
        self.core.track(asyncio.create_task(self._store_snapshot(item, state)))

    async def _store_snapshot(self, item: Pending, state: bytes) -> None:
        stored = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(item.done), 4 * ACK_TIMEOUT)
            except Exception as exc:  # the venue fails anyway: a snapshot of what is not on record is dropped
                log.warning("venue %s: snapshot at journal record %d dropped: %r", self.core.venue, item.n, exc)
                return
            try:
                size = await self.snapshots.save(VenueSnapshot.frame(item.n, item.journal_seq, item.dropcopy_seq,
                                                                     state))
            except Exception as exc:
                log.warning("venue %s: snapshot at journal record %d not stored: %r", self.core.venue, item.n, exc)
                return
            if size is None:
                return
            stored = True
            log.info("venue %s: snapshot at journal record %d stored (%d bytes)", self.core.venue, item.n, size)
            await self._trim(item)
        finally:
            self.schedule.finished(item.n, stored)

    async def _trim(self, item: Pending) -> None:
        """Purge the venue's journal up to (not including) the first record after the snapshot."""
        try:
            await self.core.js.purge_stream(JOURNAL_STREAM, subject=subjects.venue_input(self.core.venue),
                                            seq=item.journal_seq + 1)
        except Exception as exc:  # the next snapshot purges it
            log.warning("venue %s: journal not trimmed up to record %d: %r", self.core.venue, item.n, exc)
