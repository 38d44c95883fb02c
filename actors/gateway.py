"""Gateway stage: one venue's order-entry session, as three handlers over one order registry.

- `GatewayHandler` takes approved orders, sends them (retry with backoff and jitter, behind the
  venue's circuit breaker) and publishes the reports the venue answered with.
- `CancelHandler` takes cancel requests (`orders.cancel.<venue>`) and asks the venue to cancel.
- `DropCopyHandler` publishes what the venue did on its own (fills of resting orders, cancels,
  expiries: reports flagged `unsolicited`) from the venue's drop copy.

Every report passes the order's state machine (`GatewayOrders`): an invalid transition is logged and
not published. At most once at the venue: client order id = order id, and the venue refuses a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import BaseModel, ValidationError

from actors.gateway_orders import GatewayOrders, TrackedOrder, UnknownOrder
from actors.order_state import InvalidTransition, OrderState
from actors.risk_state import TradingState
from actors.stage import Outgoing, TransientError
from actors.trading_control import TradingControl
from actors.venue_breaker import VenueBreaker
from cluster.config import GatewayStage
from messages import (
    DecodeError,
    Envelope,
    Event,
    OrderApproved,
    OrderCancelRejected,
    OrderCancelRequested,
    subjects,
    wrap,
)
from messages.ids import derive_event_id
from messages.venue import ExecReport, NewOrderSingle, OrderCancelRequest, SessionReply

__all__ = ["VENUE_UNAVAILABLE", "CancelHandler", "DropCopyHandler", "GatewayHandler", "HaltSweeper", "VenueLink",
           "decode_report"]

log = logging.getLogger(__name__)

VENUE_UNAVAILABLE = "VENUE_UNAVAILABLE"


class VenueLink:
    """The session to one venue: a call with a timeout, retried with backoff behind the breaker."""

    def __init__(self, nc: Client, venue: str, settings: GatewayStage, breaker: VenueBreaker | None = None,
                 rng: random.Random | None = None) -> None:
        self._nc = nc
        self.venue = venue
        self._settings = settings
        self._session = subjects.venue_session(venue)
        self._rng = rng or random.Random()
        self.breaker = breaker
        #: Send attempts so far: evidence of progress while an order waits for the venue.
        self.activity = 0

    async def send(self, request: BaseModel) -> SessionReply:
        self.activity += 1
        try:
            raw = await self._nc.request(self._session, request.model_dump_json().encode(),
                                         timeout=self._settings.call_timeout)
        except (NatsTimeout, TimeoutError, NoRespondersError) as exc:
            raise TransientError(f"venue {self.venue} did not answer: {type(exc).__name__}") from exc
        reply = SessionReply.model_validate_json(raw.data)
        if not reply.ok:
            raise TransientError(f"venue {self.venue} session error: {reply.error}")
        return reply

    async def send_retrying(self, request: BaseModel, since_ns: int) -> SessionReply | None:
        """Retry with exponential backoff and jitter (safe: the venue dedupes by client order id) until
        the request has waited `max_hold` since `since_ns`; None then."""
        delay = self._settings.retry_min
        what = getattr(request, "cl_ord_id", "?")
        while True:
            if self.breaker is not None and not self.breaker.allow():
                # Open (or half-open with its trials taken): wait, do not call the venue.
                self.activity += 1
                waited = (time.time_ns() - since_ns) / 1e9
                if waited > self._settings.max_hold:
                    log.warning("order %s: venue %s unavailable for %.1fs", what, self.venue, waited)
                    return None
                await asyncio.sleep(min(max(self.breaker.wait_hint(), 0.02), 0.25))
                continue
            started = time.monotonic()
            try:
                reply = await self.send(request)
                if self.breaker is not None:
                    self.breaker.success(time.monotonic() - started)
                return reply
            except TransientError as exc:
                if self.breaker is not None:
                    self.breaker.failure(time.monotonic() - started, str(exc))
                waited = (time.time_ns() - since_ns) / 1e9
                if waited + delay > self._settings.max_hold:
                    log.warning("order %s: %s; giving up after %.1fs", what, exc, waited)
                    return None
                await asyncio.sleep(delay * self._rng.uniform(0.8, 1.2))
                delay = min(delay * 2, self._settings.retry_max)


class _Base:
    stage = "gateway"

    def __init__(self, link: VenueLink, orders: GatewayOrders, partitions: int) -> None:
        self.link = link
        self.orders = orders
        self._partitions = partitions

    @property
    def activity(self) -> int:
        return self.link.activity

    def _subject(self, account: str) -> str:
        return subjects.executions(self.link.venue, subjects.partition_of(account, self._partitions))

    def _publishable(self, order_id: str, report: ExecReport, cause: Envelope) -> Outgoing | None:
        try:
            event = self.orders.apply(order_id, report)
        except InvalidTransition as exc:
            log.warning("venue %s: report %s refused by the order state machine: %s", self.link.venue,
                        report.exec_id, exc)
            return None
        return Outgoing(self._subject(event.account), wrap(event, cause=cause, discriminator=report.exec_id))


class GatewayHandler(_Base):
    """Approved orders -> the venue -> the venue's answer for this order (its own reports)."""

    concurrent = True

    def __init__(self, link: VenueLink, orders: GatewayOrders, partitions: int,
                 control: TradingControl | None = None) -> None:
        super().__init__(link, orders, partitions)
        self._control = control or TradingControl()
        self._confirmed: dict[str, asyncio.Event] = {}

    def confirmed(self, order_id: str) -> asyncio.Event:
        """Set once the venue's answer to the order itself is published (unsolicited reports wait for it)."""
        return self._confirmed.setdefault(order_id, asyncio.Event())

    async def handle(self, envelope: Envelope, event: Event) -> list[Outgoing]:
        if not isinstance(event, OrderApproved):
            raise TypeError(f"gateway takes OrderApproved, not {event.TYPE}")
        tracked = self.orders.track(event)
        out = await self._handle(envelope, event, tracked)
        if tracked.state is not OrderState.PENDING_NEW:
            self.confirmed(event.order_id).set()
        return out

    async def _handle(self, envelope: Envelope, event: OrderApproved, tracked: TrackedOrder) -> list[Outgoing]:
        switch = self._control.switch_for(event.account)
        if tracked.state is OrderState.PENDING_NEW and switch.state is TradingState.HALTED:
            # Approved just before the halt: it never goes to the venue.
            canceled = self.orders.cancel_unsent(event.order_id, f"trading halted ({switch.scope}) before it "
                                                 f"reached the venue: {switch.reason}")
            return [Outgoing(self._subject(event.account), wrap(canceled, cause=envelope))]
        request = NewOrderSingle(cl_ord_id=event.order_id, symbol=event.symbol, side=event.side, qty=event.qty,
                                 price=event.price, order_type=event.order_type, tif=event.tif)
        reply = await self.link.send_retrying(request, envelope.ts)
        if reply is None:
            if tracked.state is not OrderState.PENDING_NEW:
                return []  # the venue answered an earlier attempt: nothing new to say
            unavailable = self.orders.unavailable(event.order_id, VENUE_UNAVAILABLE)
            return [Outgoing(self._subject(event.account), wrap(unavailable, cause=envelope))]
        out = [self._publishable(event.order_id, r, envelope) for r in reply.reports if not r.unsolicited]
        return [o for o in out if o is not None]


class CancelHandler(_Base):
    """Cancel requests -> the venue. The cancel itself comes back through the drop copy."""

    concurrent = False

    async def handle(self, envelope: Envelope, event: Event) -> list[Outgoing]:
        if not isinstance(event, OrderCancelRequested):
            raise TypeError(f"gateway cancels take OrderCancelRequested, not {event.TYPE}")
        tracked = self.orders.get(event.order_id)
        request_id = str(envelope.event_id)
        if tracked is None:
            return self._refuse(envelope, event, f"order {event.order_id} is unknown at venue {self.link.venue} "
                                "(not sent there yet, or not an order of this venue)")
        if tracked.machine.is_terminal:
            if request_id in tracked.cancel_requests:
                return []  # this request was done before a restart or redelivery
            return self._refuse(envelope, event, f"order is {tracked.state.value}", tracked.state.value)
        if tracked.state is OrderState.PENDING_NEW:
            return self._refuse(envelope, event, "order is not yet acknowledged by the venue", tracked.state.value)
        reply = await self.link.send_retrying(OrderCancelRequest(cl_ord_id=event.order_id), envelope.ts)
        if reply is None:
            return self._refuse(envelope, event, VENUE_UNAVAILABLE, tracked.state.value)
        tracked.cancel_requests.add(request_id)
        refusal = next((r for r in reply.reports if r.kind == "rejected"), None)
        if refusal is not None:
            return self._refuse(envelope, event, refusal.reason or "refused by the venue", tracked.state.value)
        tracked.machine.cancel_requested()
        return []

    def _refuse(self, envelope: Envelope, event: OrderCancelRequested, reason: str,
                state: str | None = None) -> list[Outgoing]:
        refused = OrderCancelRejected(order_id=event.order_id, account=event.account, venue=self.link.venue,
                                      reason=reason, state=state)
        return [Outgoing(self._subject(event.account), wrap(refused, cause=envelope))]


_REPORT_NAMESPACE = uuid.UUID("3b6f0a52-8d41-4c77-a0e2-5d9c1e7f2b64")


def decode_report(msg: Msg) -> tuple[Envelope, ExecReport]:
    """A drop-copy record as the consumer loop's input: the envelope's id is derived from the record's
    place in the stream, so the events published for it have the same ids however often it is delivered."""
    try:
        report = ExecReport.model_validate_json(msg.data)
    except ValidationError as exc:
        raise DecodeError("invalid_payload", f"not an execution report: {exc.error_count()} error(s)") from exc
    event_id = derive_event_id(_REPORT_NAMESPACE, "ExecReport", f"{msg.metadata.sequence.stream}|{report.exec_id}")
    envelope = Envelope(event_id=event_id, type="ExecReport", version=1, correlation_id=report.cl_ord_id,
                        ts=time.time_ns(), payload={})
    return envelope, report


class DropCopyHandler(_Base):
    """The venue's unsolicited reports (fills of resting orders, cancels, expiries) -> executions."""

    concurrent = False

    def __init__(self, link: VenueLink, orders: GatewayOrders, partitions: int, placed: GatewayHandler,
                 wait_s: float) -> None:
        super().__init__(link, orders, partitions)
        self._placed = placed
        self._wait_s = wait_s

    async def handle(self, envelope: Envelope, event: object) -> list[Outgoing]:
        report = event
        if not isinstance(report, ExecReport):
            raise TypeError(f"the drop copy holds ExecReports, not {type(report).__name__}")
        if not report.unsolicited:
            return []  # published from the order's own reply
        tracked = self.orders.get(report.cl_ord_id)
        if tracked is None or tracked.state is OrderState.PENDING_NEW:
            # The order's own answer is not published yet (e.g. its gateway died in between): keep the
            # drop copy in order and wait for it, then let the broker redeliver if it takes too long.
            try:
                await asyncio.wait_for(self._placed.confirmed(report.cl_ord_id).wait(), self._wait_s)
            except TimeoutError as exc:
                raise TransientError(f"order {report.cl_ord_id} not yet confirmed at the gateway") from exc
        try:
            out = self._publishable(report.cl_ord_id, report, envelope)
        except UnknownOrder as exc:
            raise TransientError(f"order {report.cl_ord_id} is unknown to the gateway") from exc
        return [out] if out is not None else []


class HaltSweeper:
    """Cancels every working order whose account is halted (globally or its own). Runs on each kill
    switch change and again while a halt lasts, so a cancel lost to a venue outage is sent again."""

    def __init__(self, link: VenueLink, orders: GatewayOrders, control: TradingControl,
                 resend_after_s: float = 2.0) -> None:
        self._link = link
        self._orders = orders
        self._control = control
        self._resend_after_s = resend_after_s
        self._sent_at: dict[str, float] = {}

    async def sweep(self) -> int:
        """Send the cancels due now; returns how many the venue took. They come back through the drop copy."""
        if not self._control.any_halted:  # the usual case: no scan of every order the gateway knows
            self._sent_at.clear()
            return 0
        sent = 0
        now = time.monotonic()
        for tracked in self._orders.live():
            if self._control.switch_for(tracked.account).state is not TradingState.HALTED:
                continue
            last = self._sent_at.get(tracked.order_id)
            if last is not None and now - last < self._resend_after_s:
                continue
            self._sent_at[tracked.order_id] = now
            try:
                reply = await self._link.send(OrderCancelRequest(cl_ord_id=tracked.order_id))
            except TransientError as exc:
                log.warning("halt: cancel of %s not sent: %s", tracked.order_id, exc)
                continue
            if not any(r.kind == "rejected" for r in reply.reports):
                tracked.machine.cancel_requested()
                sent += 1
        live = {o.order_id for o in self._orders.live()}
        for order_id in [k for k in self._sent_at if k not in live]:
            del self._sent_at[order_id]
        return sent
