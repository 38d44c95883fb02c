"""The venue simulator's process: the order-entry session on NATS and the drop copy in JetStream.

Two modes (`venues.<V>.mode`):

- fill_all: every order fills in full (FillAllVenue); the drop copy is the venue's memory.
- book: a price-time order book per symbol with a liquidity provider quoting around a seeded
  random-walk reference price (BookVenue). The venue's memory is its input journal
  `venue.<V>.input`: every state-changing command (a new order that is not a duplicate, a cancel,
  a tick) is journaled in execution order before anything is answered, and the book is a pure
  function of that sequence, so a restarted venue replays it into the same state with the same
  exec ids. Client-order reports go to the drop copy once their command is journaled; a report of
  an order's own new-order request is also in the reply (unsolicited=False), every other one
  (fills of resting orders, cancels, expiries) only reaches the gateway through the drop copy
  (unsolicited=True). If a journal or drop-copy write fails, the in-memory book may no longer be
  what the journal says: the session stops serving and reports `failure`; the process must exit
  so that its supervisor restarts it from the journal.

Both modes serve run-time fault injection on `admin.venue.<V>` (see actors.venue_faults).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Annotated, Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from pydantic import Field, TypeAdapter, ValidationError

from actors.book_venue import (
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
from actors.fill_all_venue import FillAllVenue
from actors.order_book import REASON_NOT_OPEN, REASON_UNKNOWN_ORDER, UNKNOWN_VENUE_ORDER_ID
from actors.publisher import AckedPublisher
from actors.venue_faults import REJECT_REASON, InvalidFaultSettings, VenueFaults, rejection
from cluster.config import VenueConfig, VenueMode
from cluster.refprices import publish_reference_prices
from cluster.streams import read_stream
from messages import MSG_ID_HEADER, subjects
from messages.base import Side
from messages.venue import (
    ExecReport,
    NewOrderSingle,
    OrderCancelRequest,
    OrderMassCancelRequest,
    OrderStatusRequest,
    SessionReply,
    SessionRequest,
)

__all__ = ["CLOSED_UNKNOWN", "VenueDiverged", "VenueSession"]

log = logging.getLogger(__name__)

_REQUEST: TypeAdapter[SessionRequest] = TypeAdapter(Annotated[SessionRequest, Field(discriminator="op")])

_BookCommand = NewCommand | RejectCommand | CancelCommand | MassCancelCommand | TickCommand | ExpireCommand

#: The reason recorded for an order closed by a status request before the venue received it.
CLOSED_UNKNOWN = "closed by the client before the venue received it"

#: Seconds to wait for the broker to acknowledge one journal or drop-copy write.
ACK_TIMEOUT = 5.0


class VenueDiverged(RuntimeError):
    """A journal write failed: the venue's memory may differ from its journal; restart it."""


def _cl_ord_id(reply: SessionReply) -> str:
    return reply.reports[0].cl_ord_id if reply.reports else ""


@dataclass(eq=False)
class _Pending:
    """One executed book command on its way to the journal and the drop copy."""

    n: int
    journal: bytes
    reports: tuple[ExecReport, ...]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
            self.done.exception()  # retrieved: nobody may be waiting for it


class VenueSession:
    """Serves one venue's session subject and its fault-injection admin subject."""

    def __init__(self, nc: Client, js: JetStreamContext, venue: str, vcfg: VenueConfig) -> None:
        self._nc = nc
        self._js = js
        self._publisher = AckedPublisher(nc)
        self.venue = venue
        self.vcfg = vcfg
        self.mode = vcfg.mode
        self.book: FillAllVenue | BookVenue = self._fresh_book()
        self.faults = VenueFaults(seed=vcfg.seed)
        self.served = 0
        self.stalled = 0
        #: Set when a journal or drop-copy write failed (book mode): the process must restart.
        self.failure: BaseException | None = None
        self.failed = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._confirming: dict[str, asyncio.Task[None]] = {}
        self._session_sub: Subscription | None = None
        self._admin_sub: Subscription | None = None
        self._closed = False
        self._restored = False
        # Book mode: the journal sequence and the write pipeline (journal -> drop copy -> acks).
        self._n = 0
        self._last: _Pending | None = None
        self._journal_q: asyncio.Queue[_Pending] = asyncio.Queue()
        self._dropcopy_q: asyncio.Queue[tuple[_Pending, asyncio.Future[Any]]] = asyncio.Queue()
        self._commit_q: asyncio.Queue[tuple[_Pending, list[asyncio.Future[Any]]]] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()  # close(): no more ticks
        self._halted = asyncio.Event()  # close(), once the writes in flight settled: the writers stop

    def _fresh_book(self) -> FillAllVenue | BookVenue:
        if self.mode is VenueMode.BOOK:
            return BookVenue(self.venue, self.vcfg.symbols, seed=self.vcfg.seed, levels=self.vcfg.levels,
                             qty=self.vcfg.quote_qty)
        return FillAllVenue(self.venue)

    # --- life cycle ----------------------------------------------------------------------------

    async def restore(self) -> int:
        """Rebuild the venue's memory: fill_all from its drop copy, book from its input journal (then
        the drop copy is repaired and the reference prices published). Returns the records read."""
        if isinstance(self.book, FillAllVenue):
            stored = await read_stream(self._js, "VENUE", subjects.venue_dropcopy(self.venue))
            for msg in stored:
                self.book.restore(ExecReport.model_validate_json(msg.data))
            return len(stored)
        return await self._restore_book()

    async def serve(self) -> None:
        """Start answering (and, in book mode, ticking: the first tick right away). A book-mode venue
        restores first if `restore` was not called: its journal numbering continues the stored one."""
        if self.mode is VenueMode.BOOK and not self._restored:
            await self.restore()
        self._admin_sub = await self._nc.subscribe(subjects.venue_admin(self.venue), cb=self._on_admin)
        if self.mode is VenueMode.BOOK:
            self._workers = [asyncio.create_task(coro, name=f"venue-{self.venue}-{coro.__name__}") for coro in
                             (self._write_journal(), self._write_dropcopy(), self._commit())]
            self._ticker = asyncio.create_task(self._tick_loop(), name=f"venue-{self.venue}-ticks")
        if not self.faults.settings.disconnect:
            await self._subscribe_session()
        # The server has the subscriptions before this returns: "ready" means requests find a responder.
        await self._nc.flush(timeout=5)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop serving: leave the subjects, stop ticking, let journal writes in flight settle."""
        self._closed = True
        for sub in (self._session_sub, self._admin_sub):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        self._session_sub = self._admin_sub = None
        self._stopping.set()
        if self._ticker is not None:
            # Cancel, and also let it see `_stopping`: nats-py may swallow a cancellation mid-publish.
            self._ticker.cancel()
            await asyncio.wait([self._ticker], timeout=timeout)
            self._ticker = None
        if self._last is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._last.done), timeout)
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=timeout)
        self._halted.set()
        rest = [*self._workers, *self._in_flight]
        for task in rest:
            task.cancel()
        if rest:
            await asyncio.wait(rest, timeout=timeout)
        self._workers = []
        with contextlib.suppress(Exception):
            await self._publisher.stop()

    @property
    def serving(self) -> bool:
        """True while the session subject is subscribed (not disconnected, failed or closed)."""
        return self._session_sub is not None

    async def _subscribe_session(self) -> None:
        if self._session_sub is None and not self._closed:
            self._session_sub = await self._nc.subscribe(subjects.venue_session(self.venue),
                                                         queue=f"venue-{self.venue}", cb=self._on_request)

    async def _unsubscribe_session(self) -> None:
        sub, self._session_sub = self._session_sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    # --- fault injection -----------------------------------------------------------------------

    async def _on_admin(self, msg: Msg) -> None:
        before = self.faults.settings
        try:
            request = json.loads(msg.data or b"{}")
            settings = self.faults.update(request)
        except (ValueError, InvalidFaultSettings) as exc:
            answer: dict[str, Any] = {"error": str(exc)}
        else:
            if settings != before:
                log.warning("venue %s fault injection: %s", self.venue, settings.model_dump())
            if settings.disconnect:
                await self._unsubscribe_session()
            elif self.failure is None:
                await self._subscribe_session()
            answer = settings.model_dump()
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(json.dumps(answer).encode())

    # --- the session ---------------------------------------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        """Requests are executed strictly in arrival order (this callback runs one at a time), but the
        reply waits only for this order's own journal acks, in a task: many orders are in flight."""
        if self.faults.settings.stall:
            self.stalled += 1
            return
        if self.failure is not None:
            await self._respond(msg, SessionReply(ok=False, error=f"venue failed: {self.failure!r}"))
            return
        if isinstance(self.book, BookVenue):
            self._on_book_request(msg, self.book)
            return
        reply_now, pending = await self._execute(msg.data)
        if pending is None:
            unconfirmed = self._confirming.get(_cl_ord_id(reply_now))
            if unconfirmed is not None:
                # A retry of (or a status request for) an order whose journal write is still in flight:
                # answer once it is settled, from what is then on record.
                self._track(asyncio.create_task(self._after(unconfirmed, msg, _cl_ord_id(reply_now))))
            else:
                await self._respond(msg, reply_now)
            return
        task = asyncio.create_task(self._confirm(msg, reply_now, pending))
        self._confirming[pending[0]] = task
        task.add_done_callback(lambda _t, oid=pending[0]: self._confirming.pop(oid, None))
        self._track(task)

    def _track(self, task: asyncio.Task[None]) -> None:
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _respond(self, msg: Msg, reply: SessionReply) -> None:
        latency = self.faults.settings.latency
        if latency > 0:
            self._track(asyncio.create_task(self._respond_after(latency, msg, reply)))
            return
        await self._send(msg, reply)

    async def _respond_after(self, latency: float, msg: Msg, reply: SessionReply) -> None:
        await asyncio.sleep(latency)
        await self._send(msg, reply)

    async def _send(self, msg: Msg, reply: SessionReply) -> None:
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(reply.model_dump_json().encode())
        if reply.ok:
            self.served += 1

    # --- fill_all mode -------------------------------------------------------------------------
    # Every report is journaled to the drop copy before the reply, so a restarted venue still knows
    # every client order id it executed.

    async def _after(self, unconfirmed: asyncio.Task[None], msg: Msg, cl_ord_id: str) -> None:
        assert isinstance(self.book, FillAllVenue)
        with contextlib.suppress(Exception):
            await unconfirmed
        reports = self.book.status(cl_ord_id)
        await self._respond(msg, SessionReply(ok=True, duplicate=True, reports=reports) if reports
                            else SessionReply(ok=False, error="journal unavailable"))

    async def _execute(self, data: bytes) -> tuple[SessionReply, tuple[str, list[Any]] | None]:
        assert isinstance(self.book, FillAllVenue)
        try:
            request = _REQUEST.validate_json(data)
        except ValidationError as exc:
            return SessionReply(ok=False, error=f"malformed request: {exc.error_count()} error(s)"), None
        if isinstance(request, OrderStatusRequest):
            known = self.book.status(request.cl_ord_id)
            if known or request.close_if_unknown is None:
                return SessionReply(ok=True, reports=known), None
            # Unknown and to be closed: recorded as rejected, so a late copy of the order is a duplicate.
            duplicate, reports = self._fill_all_reject(request.close_if_unknown, request.reason or CLOSED_UNKNOWN)
            request = request.close_if_unknown
        elif isinstance(request, OrderCancelRequest):
            return SessionReply(ok=True, reports=(self._fill_all_cancel_refusal(request.cl_ord_id),)), None
        elif isinstance(request, OrderMassCancelRequest):
            return SessionReply(ok=True), None  # nothing rests in a fill-everything venue
        elif request.cl_ord_id not in self.book.orders and self.faults.rejects(request.cl_ord_id):
            duplicate, reports = self._fill_all_reject(request)
        else:
            duplicate, reports = self.book.submit(request)
        reply = SessionReply(ok=True, duplicate=duplicate, reports=reports)
        if duplicate:
            return reply, None
        try:
            futures = await self._journal(reports)
        except Exception as exc:
            self.book.orders.pop(request.cl_ord_id, None)  # not executed: the gateway will retry
            return SessionReply(ok=False, error=f"journal unavailable: {exc!r}"), None
        return reply, (request.cl_ord_id, futures)

    def _fill_all_reject(self, order: NewOrderSingle,
                         reason: str = REJECT_REASON) -> tuple[bool, tuple[ExecReport, ...]]:
        """The order takes a venue order id but its only report is a rejection (fault injection, or a
        gateway closing an order the venue never received)."""
        assert isinstance(self.book, FillAllVenue)
        _, executed = self.book.submit(order)
        reports = (rejection(order, executed[0].venue_order_id, reason),)
        self.book.orders[order.cl_ord_id] = reports
        return False, reports

    def _fill_all_cancel_refusal(self, cl_ord_id: str) -> ExecReport:
        """Nothing rests in a fill-everything venue: a cancel is always refused (not journaled)."""
        assert isinstance(self.book, FillAllVenue)
        known = self.book.status(cl_ord_id)
        if not known:
            return ExecReport(exec_id=f"{self.venue}-REJ-{cl_ord_id}", cl_ord_id=cl_ord_id, kind="rejected",
                              venue_order_id=UNKNOWN_VENUE_ORDER_ID, symbol="NONE", side=Side.BUY, order_qty=1,
                              reason=REASON_UNKNOWN_ORDER)
        first = known[0]
        return ExecReport(exec_id=f"{first.venue_order_id}-REJ-C", cl_ord_id=cl_ord_id, kind="rejected",
                          venue_order_id=first.venue_order_id, symbol=first.symbol, side=first.side,
                          order_qty=first.order_qty, reason=REASON_NOT_OPEN)

    async def _confirm(self, msg: Msg, reply: SessionReply, pending: tuple[str, list[Any]]) -> None:
        assert isinstance(self.book, FillAllVenue)
        cl_ord_id, futures = pending
        try:
            await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT)
        except Exception as exc:
            # Not on record, so not executed: forget it; the gateway's retry executes it again.
            self.book.orders.pop(cl_ord_id, None)
            reply = SessionReply(ok=False, error=f"journal unavailable: {exc!r}")
        await self._respond(msg, reply)

    async def _journal(self, reports: tuple[ExecReport, ...]) -> list[Any]:
        """Publish the reports to the drop copy; returns the broker's pending acknowledgements."""
        subject = subjects.venue_dropcopy(self.venue)
        return [await self._publish_report(subject, r) for r in reports]

    async def _publish_report(self, subject: str, report: ExecReport) -> asyncio.Future[Any]:
        return await self._publisher.send(subject, report.model_dump_json().encode(),
                                            headers={MSG_ID_HEADER: f"{self.venue}:{report.exec_id}"})

    # --- book mode: requests -------------------------------------------------------------------

    def _on_book_request(self, msg: Msg, book: BookVenue) -> None:
        """Executes the request at once (no await before it is queued for the journal)."""
        try:
            request = _REQUEST.validate_json(msg.data)
        except ValidationError as exc:
            self._reply_after_last(msg, SessionReply(ok=False, error=f"malformed request: {exc.error_count()} "
                                                                      "error(s)"))
            return
        if isinstance(request, OrderStatusRequest):
            if request.close_if_unknown is not None and not book.knows(request.cl_ord_id):
                # Unknown and to be closed: journaled as rejected, so a late copy of it is a duplicate.
                self._run(RejectCommand(order=request.close_if_unknown, reason=request.reason or CLOSED_UNKNOWN), msg)
            else:
                self._reply_after_last(msg, SessionReply(ok=True, reports=book.status(request.cl_ord_id)))
        elif isinstance(request, OrderCancelRequest):
            self._run(CancelCommand(cl_ord_id=request.cl_ord_id), msg)
        elif isinstance(request, OrderMassCancelRequest):
            if book.open_client_orders(request.account):
                self._run(MassCancelCommand(account=request.account), msg)
            else:  # nothing to cancel: nothing to journal
                self._reply_after_last(msg, SessionReply(ok=True))
        elif book.knows(request.cl_ord_id):
            # A retry: the order's own reports as recorded, once everything executed so far is on record.
            self._reply_after_last(msg, SessionReply(ok=True, duplicate=True,
                                                     reports=book.solicited(request.cl_ord_id)))
        elif self.faults.rejects(request.cl_ord_id):
            self._run(RejectCommand(order=request, reason=REJECT_REASON), msg)
        else:
            self._run(NewCommand(order=request), msg)

    def _run(self, command: _BookCommand, msg: Msg | None) -> _Pending | None:
        """Execute a command in memory and queue it for the journal; the reply (if any) goes out once
        the command and its reports are acknowledged. Synchronous: commands journal in execution order."""
        assert isinstance(self.book, BookVenue)
        try:
            outcome: Outcome = self.book.apply(command)
        except Exception as exc:  # raised before any change (input no report can carry)
            log.warning("venue %s refused %s: %r", self.venue, command.cmd, exc)
            if msg is not None:
                self._track(asyncio.create_task(self._respond(msg, SessionReply(ok=False, error=str(exc)))))
            return None
        if outcome.duplicate:  # cannot happen: duplicates are answered before
            if msg is not None:
                self._reply_after_last(msg, SessionReply(ok=True, duplicate=True, reports=outcome.reply))
            return None
        self._n += 1
        record = JournalRecord(n=self._n, command=command)
        item = _Pending(self._n, record.model_dump_json().encode(), outcome.reports)
        self._journal_q.put_nowait(item)
        self._last = item
        if msg is not None:
            self._track(asyncio.create_task(self._reply_when_done(msg, item,
                                                                  SessionReply(ok=True, reports=outcome.reply))))
        return item

    def _reply_after_last(self, msg: Msg, reply: SessionReply) -> None:
        """Answer once every command executed so far is on record (at once when none is in flight)."""
        last = self._last
        if last is None or (last.done.done() and last.done.exception() is None):
            self._track(asyncio.create_task(self._respond(msg, reply)))
        else:
            self._track(asyncio.create_task(self._reply_when_done(msg, last, reply)))

    async def _reply_when_done(self, msg: Msg, item: _Pending, reply: SessionReply) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(item.done), 4 * ACK_TIMEOUT)
        except Exception as exc:
            reply = SessionReply(ok=False, error=f"journal unavailable: {exc!r}")
        await self._respond(msg, reply)

    # --- book mode: the write pipeline ---------------------------------------------------------
    # Three stages, each in command order: publish the journal entry; once it is acknowledged,
    # publish the drop-copy entries (so the drop copy never holds a report its journal lacks); once
    # those are acknowledged, the command is done (and its reply may go out).

    async def _write_journal(self) -> None:
        subject = subjects.venue_input(self.venue)
        while not self._halted.is_set():
            item = await self._journal_q.get()
            if self.failure is not None:
                item.fail(self.failure)
                continue
            try:
                ack = await self._js.publish_async(subject, item.journal,
                                                   headers={MSG_ID_HEADER: f"{self.venue}:in:{item.n}"})
            except Exception as exc:
                self._fail(exc, f"journal write {item.n}")
                item.fail(exc)
                continue
            self._dropcopy_q.put_nowait((item, ack))

    async def _write_dropcopy(self) -> None:
        subject = subjects.venue_dropcopy(self.venue)
        while not self._halted.is_set():
            item, ack = await self._dropcopy_q.get()
            if self.failure is not None:
                ack.cancel()
                item.fail(self.failure)
                continue
            try:
                stored = await asyncio.wait_for(ack, ACK_TIMEOUT)
                if getattr(stored, "duplicate", False):
                    # Another entry already has this number: this command is not on record.
                    raise VenueDiverged(f"journal entry {self.venue}:in:{item.n} was already stored")
            except Exception as exc:
                self._fail(exc, f"journal write {item.n}")
                item.fail(exc)
                continue
            try:
                futures = [await self._publish_report(subject, r) for r in item.reports]
            except Exception as exc:
                self._fail(exc, f"drop copy of journal entry {item.n}")
                item.fail(exc)
                continue
            self._commit_q.put_nowait((item, futures))

    async def _commit(self) -> None:
        while not self._halted.is_set():
            item, futures = await self._commit_q.get()
            if self.failure is not None:
                for future in futures:
                    future.cancel()
                item.fail(self.failure)
                continue
            try:
                if futures:
                    await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT)
            except Exception as exc:
                self._fail(exc, f"drop copy of journal entry {item.n}")
                item.fail(exc)
                continue
            if not item.done.done():
                item.done.set_result(None)

    def _fail(self, exc: BaseException, what: str) -> None:
        """The in-memory book may now differ from the journal: stop serving; the process must restart
        and rebuild from the journal."""
        if self.failure is not None:
            return
        log.error("venue %s: %s failed (%r); the book may have diverged from its journal: stopping, the "
                  "supervisor restarts the venue from its journal", self.venue, what, exc)
        self.failure = VenueDiverged(f"venue {self.venue}: {what} failed: {exc!r}")
        self.failed.set()
        self._track(asyncio.create_task(self._unsubscribe_session()))

    # --- book mode: ticks ----------------------------------------------------------------------

    async def tick(self) -> None:
        """One tick now: journaled like any command, then the new reference prices are published."""
        item = self._run(TickCommand(), None)
        if item is not None:
            await asyncio.wait_for(asyncio.shield(item.done), 4 * ACK_TIMEOUT)
        await self._publish_prices()

    async def expire_day(self) -> None:
        """End of day: every resting order expires (journaled; the reports go to the drop copy)."""
        item = self._run(ExpireCommand(), None)
        if item is not None:
            await asyncio.wait_for(asyncio.shield(item.done), 4 * ACK_TIMEOUT)

    async def _tick_loop(self) -> None:
        while self.failure is None and not self._stopping.is_set():
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("venue %s tick failed: %r", self.venue, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.vcfg.tick)

    async def _publish_prices(self) -> None:
        assert isinstance(self.book, BookVenue)
        prices = self.book.reference_prices()
        if prices:
            await publish_reference_prices(self._js, self.venue, prices)

    # --- book mode: restore --------------------------------------------------------------------

    async def _restore_book(self) -> int:
        """Replay the input journal through a fresh book, then publish every client-order report the
        replay produced that the drop copy lacks (a crash between journal and drop copy)."""
        book = self._fresh_book()
        assert isinstance(book, BookVenue)
        journal = await read_stream(self._js, "VENUE_INPUT", subjects.venue_input(self.venue))
        produced: list[ExecReport] = []
        for msg in journal:
            record = JournalRecord.model_validate_json(msg.data)
            produced.extend(book.apply(record.command).reports)
            self._n = max(self._n, record.n)
        self.book = book
        self._restored = True
        stored = await read_stream(self._js, "VENUE", subjects.venue_dropcopy(self.venue))
        present = {m.headers.get(MSG_ID_HEADER) or "" for m in stored}
        missing = [r for r in produced if f"{self.venue}:{r.exec_id}" not in present]
        if missing:
            log.warning("venue %s: %d report(s) of the journal were missing from the drop copy; republishing",
                        self.venue, len(missing))
            subject = subjects.venue_dropcopy(self.venue)
            futures: list[Awaitable[Any]] = [await self._publish_report(subject, r) for r in missing]
            await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT + len(missing) * 0.01)
        log.info("venue %s replayed %d journal entries (%d reports, %d repaired in the drop copy)", self.venue,
                 len(journal), len(produced), len(missing))
        await self._publish_prices()
        return len(journal)
