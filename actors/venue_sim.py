"""The venue simulator's process: the order-entry session on NATS and the drop copy in JetStream."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from pydantic import Field, TypeAdapter, ValidationError

from actors.fill_all_venue import FillAllVenue
from messages import MSG_ID_HEADER, subjects
from messages.venue import ExecReport, NewOrderSingle, OrderStatusRequest, SessionReply

__all__ = ["VenueSession"]

log = logging.getLogger(__name__)

_REQUEST: TypeAdapter[NewOrderSingle | OrderStatusRequest] = TypeAdapter(
    Annotated[NewOrderSingle | OrderStatusRequest, Field(discriminator="op")])


class VenueSession:
    """Serves one venue's session subject. Every report is journaled to the drop copy before the reply,
    so a restarted venue still knows every client order id it executed."""

    def __init__(self, nc: Client, js: JetStreamContext, venue: str) -> None:
        self._nc = nc
        self._js = js
        self.venue = venue
        self.book = FillAllVenue(venue)
        self.served = 0

    async def restore(self) -> int:
        """Rebuild the venue's memory from its drop copy; returns how many reports were read."""
        subject = subjects.venue_dropcopy(self.venue)
        try:
            last = await self._js.get_last_msg("VENUE", subject)
        except Exception:
            return 0
        sub = await self._js.subscribe(subject, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
        count = 0
        try:
            while True:
                msg = await sub.next_msg(timeout=5)
                self.book.restore(ExecReport.model_validate_json(msg.data))
                count += 1
                if msg.metadata.sequence.stream >= last.seq:
                    break
        finally:
            await sub.unsubscribe()
        return count

    async def serve(self) -> None:
        await self._nc.subscribe(subjects.venue_session(self.venue), queue=f"venue-{self.venue}", cb=self._on_request)

    async def _on_request(self, msg: Msg) -> None:
        reply = await self._answer(msg.data)
        if msg.reply:
            await msg.respond(reply.model_dump_json().encode())

    async def _answer(self, data: bytes) -> SessionReply:
        try:
            request = _REQUEST.validate_json(data)
        except ValidationError as exc:
            return SessionReply(ok=False, error=f"malformed request: {exc.error_count()} error(s)")
        if isinstance(request, OrderStatusRequest):
            return SessionReply(ok=True, reports=self.book.status(request.cl_ord_id))
        order = request
        duplicate, reports = self.book.submit(order)
        if not duplicate:
            try:
                await self._journal(reports)
            except Exception as exc:
                self.book.orders.pop(order.cl_ord_id, None)  # not executed: the gateway will retry
                return SessionReply(ok=False, error=f"journal unavailable: {exc!r}")
        self.served += 1
        return SessionReply(ok=True, duplicate=duplicate, reports=reports)

    async def _journal(self, reports: tuple[ExecReport, ...]) -> None:
        subject = subjects.venue_dropcopy(self.venue)
        futures = [
            await self._js.publish_async(subject, r.model_dump_json().encode(),
                                         headers={MSG_ID_HEADER: f"{self.venue}:{r.exec_id}"})
            for r in reports
        ]
        await asyncio.wait_for(asyncio.gather(*futures), 5.0)
