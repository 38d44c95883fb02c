"""Gateway stage: sends approved orders over the venue session and publishes the venue's reports."""

from __future__ import annotations

import asyncio
import logging
import random
import time

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from actors.stage import Outgoing, TransientError
from actors.venue_breaker import VenueBreaker
from cluster.config import GatewayStage
from messages import (
    Envelope,
    Event,
    OrderAccepted,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderVenueRejected,
    subjects,
    wrap,
)
from messages.venue import ExecReport, NewOrderSingle, SessionReply

__all__ = ["VENUE_UNAVAILABLE", "GatewayHandler", "report_to_event"]

log = logging.getLogger(__name__)

VENUE_UNAVAILABLE = "VENUE_UNAVAILABLE"


def report_to_event(report: ExecReport, order: OrderApproved, venue: str) -> Event:
    common = {"order_id": order.order_id, "account": order.account, "symbol": order.symbol,
              "side": order.side, "venue": venue, "order_qty": order.qty,
              "allocation_profile": order.allocation_profile}
    match report.kind:
        case "accepted":
            return OrderAccepted(venue_order_id=report.venue_order_id, price=order.price, **common)
        case "fill":
            return OrderFilled(exec_id=report.exec_id, last_qty=report.last_qty, last_px=report.last_px,
                               cum_qty=report.cum_qty, avg_px=report.avg_px, leaves_qty=report.leaves_qty,
                               **common)
        case "canceled":
            return OrderCanceled(cum_qty=report.cum_qty, reason=report.reason or "canceled", **common)
        case _:
            return OrderVenueRejected(reason=report.reason or "rejected by venue", **common)


class GatewayHandler:
    """At most once at the venue: client order id = order id, and the venue refuses a duplicate."""

    stage = "gateway"
    concurrent = True

    def __init__(self, nc: Client, venue: str, partitions: int, settings: GatewayStage,
                 rng: random.Random | None = None, breaker: VenueBreaker | None = None) -> None:
        self._nc = nc
        self._venue = venue
        self._partitions = partitions
        self._settings = settings
        self._session = subjects.venue_session(venue)
        self._rng = rng or random.Random()
        self.breaker = breaker
        #: Send attempts so far: evidence of progress while an order waits for the venue.
        self.activity = 0

    async def _send(self, request: NewOrderSingle) -> SessionReply:
        self.activity += 1
        try:
            raw = await self._nc.request(self._session, request.model_dump_json().encode(),
                                         timeout=self._settings.call_timeout)
        except (NatsTimeout, TimeoutError, NoRespondersError) as exc:
            raise TransientError(f"venue {self._venue} did not answer: {type(exc).__name__}") from exc
        reply = SessionReply.model_validate_json(raw.data)
        if not reply.ok:
            raise TransientError(f"venue {self._venue} session error: {reply.error}")
        return reply

    async def _send_retrying(self, request: NewOrderSingle, approved_at_ns: int) -> SessionReply | None:
        """Retry with exponential backoff and jitter (safe: the venue dedupes by client order id) until
        the order has waited `max_hold`; None then. The consumer loop keeps the message in progress."""
        delay = self._settings.retry_min
        while True:
            if self.breaker is not None and not self.breaker.allow():
                # Open (or half-open with its trials taken): wait, do not call the venue.
                self.activity += 1
                waited = (time.time_ns() - approved_at_ns) / 1e9
                if waited > self._settings.max_hold:
                    log.warning("order %s: venue %s unavailable for %.1fs", request.cl_ord_id, self._venue, waited)
                    return None
                await asyncio.sleep(min(max(self.breaker.wait_hint(), 0.02), 0.25))
                continue
            started = time.monotonic()
            try:
                reply = await self._send(request)
                if self.breaker is not None:
                    self.breaker.success(time.monotonic() - started)
                return reply
            except TransientError as exc:
                if self.breaker is not None:
                    self.breaker.failure(time.monotonic() - started, str(exc))
                waited = (time.time_ns() - approved_at_ns) / 1e9
                if waited + delay > self._settings.max_hold:
                    log.warning("order %s: %s; giving up after %.1fs", request.cl_ord_id, exc, waited)
                    return None
                await asyncio.sleep(delay * self._rng.uniform(0.8, 1.2))
                delay = min(delay * 2, self._settings.retry_max)

    async def handle(self, envelope: Envelope, event: Event) -> list[Outgoing]:
        if not isinstance(event, OrderApproved):
            raise TypeError(f"gateway takes OrderApproved, not {event.TYPE}")
        request = NewOrderSingle(cl_ord_id=event.order_id, symbol=event.symbol, side=event.side, qty=event.qty,
                                 price=event.price, order_type=event.order_type, tif=event.tif)
        partition = subjects.partition_of(event.account, self._partitions)
        subject = subjects.executions(self._venue, partition)
        reply = await self._send_retrying(request, envelope.ts)
        if reply is None:
            unavailable = OrderVenueRejected(order_id=event.order_id, account=event.account, symbol=event.symbol,
                                             side=event.side, venue=self._venue, order_qty=event.qty,
                                             allocation_profile=event.allocation_profile,
                                             reason=VENUE_UNAVAILABLE)
            return [Outgoing(subject, wrap(unavailable, cause=envelope))]
        return [
            Outgoing(subject, wrap(report_to_event(r, event, self._venue), cause=envelope,
                                   discriminator=r.exec_id))
            for r in reply.reports
        ]
