"""The venue simulator's process: the order-entry session on NATS and the drop copy in JetStream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Annotated, Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import Field, TypeAdapter, ValidationError

from actors.fill_all_venue import FillAllVenue
from cluster.streams import read_stream
from messages import MSG_ID_HEADER, subjects
from messages.venue import ExecReport, NewOrderSingle, OrderStatusRequest, SessionReply

__all__ = ["VenueSession"]

log = logging.getLogger(__name__)

_REQUEST: TypeAdapter[NewOrderSingle | OrderStatusRequest] = TypeAdapter(
    Annotated[NewOrderSingle | OrderStatusRequest, Field(discriminator="op")])


def _cl_ord_id(reply: SessionReply) -> str:
    return reply.reports[0].cl_ord_id if reply.reports else ""


class VenueSession:
    """Serves one venue's session subject. Every report is journaled to the drop copy before the reply,
    so a restarted venue still knows every client order id it executed."""

    def __init__(self, nc: Client, js: JetStreamContext, venue: str) -> None:
        self._nc = nc
        self._js = js
        self.venue = venue
        self.book = FillAllVenue(venue)
        self.served = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._confirming: dict[str, asyncio.Task[None]] = {}

    async def restore(self) -> int:
        """Rebuild the venue's memory from its drop copy; returns how many reports were read."""
        stored = await read_stream(self._js, "VENUE", subjects.venue_dropcopy(self.venue))
        for msg in stored:
            self.book.restore(ExecReport.model_validate_json(msg.data))
        return len(stored)

    async def serve(self) -> None:
        await self._nc.subscribe(subjects.venue_session(self.venue), queue=f"venue-{self.venue}", cb=self._on_request)

    async def _on_request(self, msg: Msg) -> None:
        """Requests are executed strictly in arrival order (this callback runs one at a time), but the
        reply waits only for this order's own journal acks, in a task: many orders are in flight."""
        reply_now, pending = await self._execute(msg.data)
        if pending is None:
            unconfirmed = self._confirming.get(_cl_ord_id(reply_now))
            if reply_now.duplicate and unconfirmed is not None:
                # A retry of an order whose journal write is still in flight: answer once it is settled.
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

    async def _after(self, unconfirmed: asyncio.Task[None], msg: Msg, cl_ord_id: str) -> None:
        with contextlib.suppress(Exception):
            await unconfirmed
        reports = self.book.status(cl_ord_id)
        await self._respond(msg, SessionReply(ok=True, duplicate=True, reports=reports) if reports
                            else SessionReply(ok=False, error="journal unavailable"))

    async def _execute(self, data: bytes) -> tuple[SessionReply, tuple[str, list[Any]] | None]:
        try:
            request = _REQUEST.validate_json(data)
        except ValidationError as exc:
            return SessionReply(ok=False, error=f"malformed request: {exc.error_count()} error(s)"), None
        if isinstance(request, OrderStatusRequest):
            return SessionReply(ok=True, reports=self.book.status(request.cl_ord_id)), None
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

    async def _confirm(self, msg: Msg, reply: SessionReply, pending: tuple[str, list[Any]]) -> None:
        cl_ord_id, futures = pending
        try:
            await asyncio.wait_for(asyncio.gather(*futures), 5.0)
        except Exception as exc:
            # Not on record, so not executed: forget it; the gateway's retry executes it again.
            self.book.orders.pop(cl_ord_id, None)
            reply = SessionReply(ok=False, error=f"journal unavailable: {exc!r}")
        await self._respond(msg, reply)

    async def _respond(self, msg: Msg, reply: SessionReply) -> None:
        if msg.reply:
            with contextlib.suppress(Exception):
                await msg.respond(reply.model_dump_json().encode())
        if reply.ok:
            self.served += 1

    async def _journal(self, reports: tuple[ExecReport, ...]) -> list[Any]:
        """Publish the reports to the drop copy; returns the broker's pending acknowledgements."""
        subject = subjects.venue_dropcopy(self.venue)
        return [
            await self._js.publish_async(subject, r.model_dump_json().encode(),
                                         headers={MSG_ID_HEADER: f"{self.venue}:{r.exec_id}"})
            for r in reports
        ]
