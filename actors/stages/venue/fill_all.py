"""The fill_all venue's session: every order fills in full, and the drop copy is the venue's memory.

Every report is written to the drop copy before the reply, so a restarted venue still knows every
client order id it executed (until an end of day forgets the ones executed before the previous end of
day). A snapshot (object `<venue>.fill_all` in the snapshot bucket) holds the memory of every order
on record and the drop copy's stream sequence up to which every record of the venue belongs to an
order whose writes settled; a restart loads it and folds in only the drop copy after that position
(a record it already has changes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field

from nats.aio.msg import Msg
from pydantic import ValidationError

from actors.domain.fill_all_venue import FillAllVenue
from actors.domain.order_book import REASON_NOT_OPEN, REASON_UNKNOWN_ORDER, UNKNOWN_VENUE_ORDER_ID
from actors.domain.venue_faults import REJECT_REASON
from actors.runtime.streams import read_stream
from actors.stages.venue.core import ACK_TIMEOUT, CLOSED_UNKNOWN, REQUEST, SessionCore, cl_ord_id_of
from actors.stages.venue.journal import DROPCOPY_STREAM
from actors.stages.venue.snapshots import SnapshotSchedule, SnapshotStore, VenueSnapshot
from messages import subjects
from messages.base import Side
from messages.venue import (
    ExecReport,
    NewOrderSingle,
    OrderCancelRequest,
    OrderMassCancelRequest,
    OrderStatusRequest,
    SessionReply,
)

__all__ = ["FillAllSession"]

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Sent:
    """An executed order whose drop-copy writes are in flight, in publish order."""

    cl_ord_id: str
    settled: bool = False
    #: The stream sequence of its last report, once stored.
    seq: int = 0
    futures: list[asyncio.Future[int]] = field(default_factory=list)


class FillAllSession:
    """fill_all mode of a VenueSession."""

    def __init__(self, core: SessionCore) -> None:
        self.core = core
        self.book = FillAllVenue(core.venue)
        self.snapshots = SnapshotStore(core.js, f"{core.venue}.fill_all")
        self.schedule = SnapshotSchedule(core.vcfg.snapshot_every, core.vcfg.snapshot_interval, now=time.monotonic())
        self._confirming: dict[str, asyncio.Task[None]] = {}
        #: Orders executed whose reports are not yet on record (never in a snapshot).
        self._unconfirmed: set[str] = set()
        self._sent: deque[_Sent] = deque()
        #: Every drop-copy record of this venue up to this stream sequence is of a settled order.
        self._settled_seq = 0
        #: Changes since the start, reports on record and ends of day (the snapshot schedule's count).
        self._changes = 0
        self._restored_any = False

    @property
    def last_day(self) -> int | None:
        return self.book.last_day

    @property
    def fresh(self) -> bool:
        """True for a venue with nothing on record (no snapshot, no drop-copy record)."""
        return not self._restored_any

    # --- life cycle ----------------------------------------------------------------------------

    async def restore(self) -> int:
        """Load the snapshot (if any) and fold in the drop copy after it. Returns the records read."""
        snapshot = await self.snapshots.load()
        book = FillAllVenue(self.core.venue) if snapshot is None else FillAllVenue.from_snapshot(snapshot.state)
        after = snapshot.dropcopy_seq if snapshot is not None else 0
        stored = await read_stream(self.core.js, DROPCOPY_STREAM, subjects.venue_dropcopy(self.core.venue),
                                   start_seq=after + 1)
        for msg in stored:
            book.restore(ExecReport.model_validate_json(msg.data))
        self.book = book
        self._restored_any = snapshot is not None or bool(stored)
        self._settled_seq = max(after, stored[-1].seq if stored else 0)
        log.info("venue %s (fill_all) restored: %d orders, %d drop-copy records read after sequence %d",
                 self.core.venue, book.remembered(), len(stored), after)
        return len(stored)

    def start(self) -> None:
        pass

    async def settle(self, timeout: float) -> None:
        pass

    async def halt(self, timeout: float) -> None:
        pass

    async def close_day(self, day: int) -> None:
        """End of trading day `day`: forget the orders executed before the previous one; a snapshot."""
        try:
            self.book.expire_day(day)
        except ValueError as exc:
            log.warning("venue %s: %s", self.core.venue, exc)
            return
        self._changes += 1
        self.schedule.force()
        self.maybe_snapshot()

    # --- requests ------------------------------------------------------------------------------

    async def on_request(self, msg: Msg) -> None:
        reply_now, pending = await self._execute(msg.data)
        if pending is None:
            unconfirmed = self._confirming.get(cl_ord_id_of(reply_now))
            if unconfirmed is not None:
                # A retry of (or a status request for) an order whose journal write is still in flight:
                # answer once it is settled, from what is then on record.
                self.core.track(asyncio.create_task(self._after(unconfirmed, msg, cl_ord_id_of(reply_now))))
            else:
                await self.core.respond(msg, reply_now)
            return
        task = asyncio.create_task(self._confirm(msg, reply_now, pending))
        self._confirming[pending.cl_ord_id] = task
        task.add_done_callback(lambda _t, oid=pending.cl_ord_id: self._confirming.pop(oid, None))
        self.core.track(task)

    async def _after(self, unconfirmed: asyncio.Task[None], msg: Msg, cl_ord_id: str) -> None:
        with contextlib.suppress(Exception):
            await unconfirmed
        reports = self.book.status(cl_ord_id)
        await self.core.respond(msg, SessionReply(ok=True, duplicate=True, reports=reports) if reports
                                else SessionReply(ok=False, error="journal unavailable"))

    async def _execute(self, data: bytes) -> tuple[SessionReply, _Sent | None]:
        try:
            request = REQUEST.validate_json(data)
        except ValidationError as exc:
            return SessionReply(ok=False, error=f"malformed request: {exc.error_count()} error(s)"), None
        if isinstance(request, OrderStatusRequest):
            known = self.book.status(request.cl_ord_id)
            if known or request.close_if_unknown is None:
                return SessionReply(ok=True, reports=known), None
            # Unknown and to be closed: recorded as rejected, so a late copy of the order is a duplicate.
            duplicate, reports = self._reject(request.close_if_unknown, request.reason or CLOSED_UNKNOWN)
            request = request.close_if_unknown
        elif isinstance(request, OrderCancelRequest):
            return SessionReply(ok=True, reports=(self._cancel_refusal(request.cl_ord_id),)), None
        elif isinstance(request, OrderMassCancelRequest):
            return SessionReply(ok=True), None  # nothing rests in a fill-everything venue
        elif request.cl_ord_id not in self.book.orders and self.core.faults.rejects(request.cl_ord_id):
            duplicate, reports = self._reject(request)
        else:
            duplicate, reports = self.book.submit(request)
        reply = SessionReply(ok=True, duplicate=duplicate, reports=reports)
        if duplicate:
            return reply, None
        self._unconfirmed.add(request.cl_ord_id)
        try:
            futures = [await self.core.publish_report(r) for r in reports]
        except Exception as exc:
            self._unconfirmed.discard(request.cl_ord_id)
            self.book.forget(request.cl_ord_id)  # not executed: the gateway will retry
            return SessionReply(ok=False, error=f"journal unavailable: {exc!r}"), None
        sent = _Sent(request.cl_ord_id, futures=futures)
        self._sent.append(sent)
        return reply, sent

    def _reject(self, order: NewOrderSingle, reason: str = REJECT_REASON) -> tuple[bool, tuple[ExecReport, ...]]:
        """The order takes a venue order id but its only report is a rejection (fault injection, or a
        gateway closing an order the venue never received)."""
        return False, self.book.reject(order, reason)

    def _cancel_refusal(self, cl_ord_id: str) -> ExecReport:
        """Nothing rests in a fill-everything venue: a cancel is always refused (not journaled)."""
        known = self.book.status(cl_ord_id)
        if not known:
            return ExecReport(exec_id=f"{self.core.venue}-REJ-{cl_ord_id}", cl_ord_id=cl_ord_id, kind="rejected",
                              venue_order_id=UNKNOWN_VENUE_ORDER_ID, symbol="NONE", side=Side.BUY, order_qty=1,
                              reason=REASON_UNKNOWN_ORDER)
        first = known[0]
        return ExecReport(exec_id=f"{first.venue_order_id}-REJ-C", cl_ord_id=cl_ord_id, kind="rejected",
                          venue_order_id=first.venue_order_id, symbol=first.symbol, side=first.side,
                          order_qty=first.order_qty, reason=REASON_NOT_OPEN)

    async def _confirm(self, msg: Msg, reply: SessionReply, sent: _Sent) -> None:
        try:
            seqs = await asyncio.wait_for(asyncio.gather(*sent.futures), ACK_TIMEOUT)
        except Exception as exc:
            # Not on record, so not executed: forget it; the gateway's retry executes it again.
            self.book.forget(sent.cl_ord_id)
            reply = SessionReply(ok=False, error=f"journal unavailable: {exc!r}")
        else:
            sent.seq = max(seqs)
            self._changes += len(seqs)
        sent.settled = True
        sent.futures = []
        self._unconfirmed.discard(sent.cl_ord_id)
        while self._sent and self._sent[0].settled:
            self._settled_seq = max(self._settled_seq, self._sent.popleft().seq)
        self.maybe_snapshot()
        await self.core.respond(msg, reply)

    # --- snapshots -----------------------------------------------------------------------------

    def maybe_snapshot(self) -> None:
        """If one is due, serialize the memory of the orders on record now, and store it."""
        if not self.schedule.due(self._changes, time.monotonic()):
            return
        encoded = VenueSnapshot.frame(0, 0, self._settled_seq, self.book.snapshot_json(leave_out=self._unconfirmed))
        self.schedule.taking(self._changes, time.monotonic())
        self.core.track(asyncio.create_task(self._store(self._changes, encoded)))

    async def _store(self, changes: int, encoded: bytes) -> None:
        stored = False
        try:
            stored = await self.snapshots.save(encoded) is not None
        except Exception as exc:
            log.warning("venue %s: fill_all snapshot not stored: %r", self.core.venue, exc)
        finally:
            self.schedule.finished(changes, stored)
