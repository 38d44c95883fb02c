"""The venue simulator's process: the order-entry session on NATS and the drop copy in JetStream.

Two modes (`venues.<V>.mode`):

- fill_all: every order fills in full (FillAllVenue); the drop copy is the venue's memory
  (actors.stages.venue.fill_all).
- book: a price-time order book per symbol with a liquidity provider quoting around a seeded
  random-walk reference price (BookVenue, actors.stages.venue.book). The venue's memory is its
  latest snapshot plus its input journal `venue.<V>.input` after it: every state-changing command
  (a new order that is not a duplicate, a cancel, a tick, an end of day) is journaled in execution
  order before anything is answered, and the book is a pure function of that sequence, so a
  restarted venue loads the snapshot and replays the records after it into the same state with the
  same exec ids. The venue trims its journal itself, up to each snapshot it stored. Client-order
  reports go to the drop copy once their command is journaled; a report of an order's own new-order
  request is also in the reply (unsolicited=False), every other one (fills of resting orders,
  cancels, expiries) only reaches the gateway through the drop copy (unsolicited=True). If a journal
  or drop-copy write fails, the in-memory book may no longer be what the journal says: the session
  stops serving and reports `failure`; the process must exit so that its supervisor restarts it.

End of day (`end_of_day`, HH:MM UTC, or every `day_length` from the start): on this host's clock the
venue closes the trading day (actors.domain.venue_calendar). In book mode every resting DAY order expires
(journaled, with the day it closes, so a replay expires the same orders and no day closes twice);
in both modes the orders finished before the previous end of day are forgotten. A venue that was down
at an end of day closes it as it starts.

Both modes serve run-time fault injection on `admin.venue.<V>` (see actors.domain.venue_faults).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from actors.domain.book_venue import BookVenue
from actors.domain.fill_all_venue import FillAllVenue
from actors.domain.venue_calendar import TradingCalendar
from actors.stages.venue.book import BookSession
from actors.stages.venue.core import CLOSED_UNKNOWN, SessionCore, VenueDiverged
from actors.stages.venue.fill_all import FillAllSession
from actors.stages.venue.settings import VenueConfig, VenueMode
from messages.venue import SessionReply

__all__ = ["CLOSED_UNKNOWN", "EOD_POLL_S", "VenueDiverged", "VenueSession"]

log = logging.getLogger(__name__)

#: Longest wait between two looks at the wall clock before an end of day (a stepped clock is noticed).
EOD_POLL_S = 1.0


class VenueSession(SessionCore):
    """Serves one venue's session subject and its fault-injection admin subject."""

    def __init__(self, nc: Client, js: JetStreamContext, venue: str, vcfg: VenueConfig,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__(nc, js, venue, vcfg, clock)
        self._mode: BookSession | FillAllSession = (BookSession(self) if vcfg.mode is VenueMode.BOOK
                                                    else FillAllSession(self))
        #: The trading days, from `serve()` on.
        self.calendar: TradingCalendar | None = None
        self._timers: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()  # close(): no more ticks, ends of day or snapshots

    @property
    def book(self) -> FillAllVenue | BookVenue:
        return self._mode.book

    @property
    def book_session(self) -> BookSession | None:
        """The book-mode session (its journal and snapshots), None in fill_all mode."""
        return self._mode if isinstance(self._mode, BookSession) else None

    # --- life cycle ----------------------------------------------------------------------------

    async def restore(self) -> int:
        """Rebuild the venue's memory from its snapshot and what was recorded after it: fill_all from
        its drop copy, book from its input journal (then the drop copy is repaired and the reference
        prices published). Returns the records read after the snapshot."""
        return await self._mode.restore()

    async def serve(self) -> None:
        """Start answering (and, in book mode, ticking: the first tick right away). A book-mode venue
        restores first if `restore` was not called: its journal numbering continues the stored one. A
        venue that missed an end of day (or starts afresh) closes that day first."""
        if isinstance(self._mode, BookSession) and not self._mode.restored:
            await self.restore()
        await self._subscribe_admin()
        self._mode.start()
        await self._open_days()
        loops = [self._end_of_day_loop(), self._snapshot_loop()]
        if isinstance(self._mode, BookSession):
            loops.append(self._mode.tick_loop(self._stopping))
        self._timers = [asyncio.create_task(coro, name=f"venue-{self.venue}-{coro.__name__}") for coro in loops]
        if not self.faults.settings.disconnect and self.failure is None:
            await self._subscribe_session()
        # The server has the subscriptions before this returns: "ready" means requests find a responder.
        await self._nc.flush(timeout=5)

    async def close(self, timeout: float = 5.0) -> None:
        """Stop serving: leave the subjects, stop ticking, let journal writes in flight settle."""
        self._closed = True
        await self._unsubscribe_all()
        self._stopping.set()
        timers, self._timers = self._timers, []
        for task in timers:
            # Cancel, and also let it see `_stopping`: nats-py may swallow a cancellation mid-publish.
            task.cancel()
        if timers:
            await asyncio.wait(timers, timeout=timeout)
        await self._mode.settle(timeout)
        if self._in_flight:
            await asyncio.wait(list(self._in_flight), timeout=timeout)
        await self._mode.halt(timeout)
        rest = list(self._in_flight)
        for task in rest:
            task.cancel()
        if rest:
            await asyncio.wait(rest, timeout=timeout)
        with contextlib.suppress(Exception):
            await self.publisher.stop()

    # --- the session ---------------------------------------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        """Requests are executed strictly in arrival order (this callback runs one at a time), but the
        reply waits only for this order's own journal acks, in a task: many orders are in flight."""
        if self.faults.settings.stall:
            self.stalled += 1
            return
        if self.failure is not None:
            await self.respond(msg, SessionReply(ok=False, error=f"venue failed: {self.failure!r}"))
            return
        await self._mode.on_request(msg)

    # --- ticks, ends of day, snapshots ---------------------------------------------------------

    async def tick(self) -> None:
        """One tick now (book mode): journaled like any command, then the new reference prices are
        published."""
        if not isinstance(self._mode, BookSession):
            raise TypeError(f"venue {self.venue} is in {self.mode} mode: it has no reference prices to move")
        await self._mode.tick()

    async def expire_day(self, day: int | None = None) -> None:
        """End of day now, for trading day `day` (default: the one in progress): every resting order
        expires (journaled; the reports go to the drop copy) and the orders finished before the previous
        end of day are forgotten. A day already closed changes nothing."""
        if day is None:
            calendar = self.calendar or self._new_calendar(self.clock())
            last = self._mode.last_day
            day = calendar.in_progress(self.clock())
            day = day if last is None else max(day, last + 1)
        await self._mode.close_day(day)

    def _new_calendar(self, now: float) -> TradingCalendar:
        last = self._mode.last_day
        return TradingCalendar(self.vcfg.end_of_day, self.vcfg.day_length, started=now,
                               base=last if last is not None else 0)

    async def _open_days(self) -> None:
        """Close the latest day that ended while the venue was down, or, for a venue that starts afresh,
        record it as closed (orders placed from now on belong to the day in progress). A venue whose
        history is older than trading days (none closed yet) waits for the end of the day in progress."""
        now = self.clock()
        calendar = self.calendar = self._new_calendar(now)
        last, due = self._mode.last_day, calendar.last_closed(now)
        if (last is not None and last >= due) or (last is None and not self._mode.fresh):
            return
        log.info("venue %s: closing %s at start (last closed: %s)", self.venue, calendar.name(due),
                 "none" if last is None else calendar.name(last))
        try:
            await self._mode.close_day(due)
        except Exception as exc:  # a journal failure fails the venue (see `failed`)
            log.warning("venue %s: closing %s at start failed: %r", self.venue, calendar.name(due), exc)

    async def _end_of_day_loop(self) -> None:
        calendar = self.calendar
        assert calendar is not None
        while self.failure is None and not self._stopping.is_set():
            now = self.clock()
            last = self._mode.last_day
            day = (last if last is not None else calendar.last_closed(now)) + 1
            wait = calendar.closes_at(day) - now
            if wait <= 0:
                day = max(day, calendar.last_closed(now))
                log.info("venue %s: end of %s", self.venue, calendar.name(day))
                try:
                    await self._mode.close_day(day)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("venue %s: end of %s failed: %r", self.venue, calendar.name(day), exc)
                if self._mode.last_day != last:
                    continue
                wait = EOD_POLL_S  # not closed: try again, without spinning
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), min(wait, EOD_POLL_S))

    async def _snapshot_loop(self) -> None:
        """Looks often enough that a snapshot due by time is taken within a quarter of the interval."""
        every = max(self.vcfg.snapshot_interval / 4, 0.05)
        while self.failure is None and not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), every)
            if not self._stopping.is_set() and self.failure is None:
                self._mode.maybe_snapshot()
