"""What both modes of a venue's session share: the connection, the replies (with injected latency),
the fault-injection admin subject, the session subscription, and the venue's failure.

See actors.stages.venue.session for the session as a whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Annotated, Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from pydantic import Field, TypeAdapter

from actors.domain.venue_faults import InvalidFaultSettings, VenueFaults
from actors.runtime.publisher import AckedPublisher
from actors.stages.venue.settings import VenueConfig
from messages import MSG_ID_HEADER, subjects
from messages.venue import ExecReport, SessionReply, SessionRequest

__all__ = ["ACK_TIMEOUT", "CLOSED_UNKNOWN", "REQUEST", "SessionCore", "VenueDiverged", "cl_ord_id_of"]

log = logging.getLogger(__name__)

REQUEST: TypeAdapter[SessionRequest] = TypeAdapter(Annotated[SessionRequest, Field(discriminator="op")])

#: The reason recorded for an order closed by a status request before the venue received it.
CLOSED_UNKNOWN = "closed by the client before the venue received it"

#: Seconds to wait for the broker to acknowledge one journal or drop-copy write.
ACK_TIMEOUT = 5.0


class VenueDiverged(RuntimeError):
    """A journal write failed: the venue's memory may differ from its journal; restart it."""


def cl_ord_id_of(reply: SessionReply) -> str:
    """The client order id a reply is about ("" when it carries no report)."""
    return reply.reports[0].cl_ord_id if reply.reports else ""


class SessionCore:
    """One venue's connection, fault-injection settings, replies and failure (see VenueSession)."""

    def __init__(self, nc: Client, js: JetStreamContext, venue: str, vcfg: VenueConfig,
                 clock: Callable[[], float] = time.time) -> None:
        self._nc = nc
        self._js = js
        self.publisher = AckedPublisher(nc)
        self.venue = venue
        self.vcfg = vcfg
        self.mode = vcfg.mode
        #: The venue host's wall clock (epoch seconds): it alone decides when a trading day ends.
        self.clock = clock
        self.faults = VenueFaults(seed=vcfg.seed)
        self.served = 0
        self.stalled = 0
        #: Set when a journal or drop-copy write failed (book mode): the process must restart.
        self.failure: BaseException | None = None
        self.failed = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._session_sub: Subscription | None = None
        self._admin_sub: Subscription | None = None
        self._closed = False

    @property
    def js(self) -> JetStreamContext:
        return self._js

    @property
    def connected(self) -> bool:
        """Whether the connection to the broker is up (writes are not buffered for a reconnect)."""
        return bool(self._nc.is_connected)

    def connection_lost(self) -> None:
        """The connection to the broker broke: journal writes in flight may be lost while later ones would
        be stored after the reconnect (a gap in the journal). The venue stops and restarts from what its
        journal holds."""
        self.fail(ConnectionError("the connection to the broker was lost"), "the journal's connection")

    @property
    def serving(self) -> bool:
        """True while the session subject is subscribed (not disconnected, failed or closed)."""
        return self._session_sub is not None

    # --- subscriptions -------------------------------------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        raise NotImplementedError

    async def _subscribe_session(self) -> None:
        if self._session_sub is None and not self._closed:
            self._session_sub = await self._nc.subscribe(subjects.venue_session(self.venue),
                                                         queue=f"venue-{self.venue}", cb=self._on_request)

    async def _unsubscribe_session(self) -> None:
        sub, self._session_sub = self._session_sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def _subscribe_admin(self) -> None:
        self._admin_sub = await self._nc.subscribe(subjects.venue_admin(self.venue), cb=self._on_admin)

    async def _unsubscribe_all(self) -> None:
        for sub in (self._session_sub, self._admin_sub):
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
        self._session_sub = self._admin_sub = None

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

    # --- replies -------------------------------------------------------------------------------

    def track(self, task: asyncio.Task[None]) -> None:
        """Keep a task of this session (close() waits for, then cancels, what is left)."""
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def respond(self, msg: Msg, reply: SessionReply) -> None:
        """Answer a request (after the injected latency, if any)."""
        latency = self.faults.settings.latency
        if latency > 0:
            self.track(asyncio.create_task(self._respond_after(latency, msg, reply)))
            return
        await self._send(msg, reply)

    def respond_later(self, msg: Msg, reply: SessionReply) -> None:
        self.track(asyncio.create_task(self.respond(msg, reply)))

    async def _respond_after(self, latency: float, msg: Msg, reply: SessionReply) -> None:
        await asyncio.sleep(latency)
        await self._send(msg, reply)

    async def _send(self, msg: Msg, reply: SessionReply) -> None:
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(reply.model_dump_json().encode())
        if reply.ok:
            self.served += 1

    # --- the drop copy and failure -------------------------------------------------------------

    async def publish_report(self, report: ExecReport) -> asyncio.Future[int]:
        """Publish one report to the drop copy; the future gets its stream sequence."""
        return await self.publisher.send(subjects.venue_dropcopy(self.venue), report.model_dump_json().encode(),
                                         headers={MSG_ID_HEADER: self.report_id(report)})

    def report_id(self, report: ExecReport) -> str:
        """A report's Nats-Msg-Id in the drop copy."""
        return f"{self.venue}:{report.exec_id}"

    def fail(self, exc: BaseException, what: str) -> None:
        """The in-memory book may now differ from the journal: stop serving; the process must restart
        and rebuild from the journal."""
        if self.failure is not None:
            return
        log.error("venue %s: %s failed (%r); the book may have diverged from its journal: stopping, the "
                  "supervisor restarts the venue from its journal", self.venue, what, exc)
        self.failure = VenueDiverged(f"venue {self.venue}: {what} failed: {exc!r}")
        self.failed.set()
        self.track(asyncio.create_task(self._unsubscribe_session()))
