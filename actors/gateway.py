"""Gateway stage: sends approved orders over the venue session and publishes the venue's reports."""

from __future__ import annotations

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from actors.stage import Outgoing, TransientError
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

__all__ = ["GatewayHandler", "report_to_event"]


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

    def __init__(self, nc: Client, venue: str, partitions: int, call_timeout: float) -> None:
        self._nc = nc
        self._venue = venue
        self._partitions = partitions
        self._call_timeout = call_timeout
        self._session = subjects.venue_session(venue)

    async def handle(self, envelope: Envelope, event: Event) -> list[Outgoing]:
        if not isinstance(event, OrderApproved):
            raise TypeError(f"gateway takes OrderApproved, not {event.TYPE}")
        request = NewOrderSingle(cl_ord_id=event.order_id, symbol=event.symbol, side=event.side, qty=event.qty,
                                 price=event.price, order_type=event.order_type, tif=event.tif)
        try:
            raw = await self._nc.request(self._session, request.model_dump_json().encode(),
                                         timeout=self._call_timeout)
        except (NatsTimeout, TimeoutError, NoRespondersError) as exc:
            raise TransientError(f"venue {self._venue} did not answer: {type(exc).__name__}") from exc
        reply = SessionReply.model_validate_json(raw.data)
        if not reply.ok:
            raise TransientError(f"venue {self._venue} session error: {reply.error}")
        partition = subjects.partition_of(event.account, self._partitions)
        subject = subjects.executions(self._venue, partition)
        return [
            Outgoing(subject, wrap(report_to_event(r, event, self._venue), cause=envelope,
                                   discriminator=r.exec_id))
            for r in reply.reports
        ]
