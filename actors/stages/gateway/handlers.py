"""Gateway stage: one venue's order entry, as three handlers over one order registry.

- `GatewayHandler` takes approved orders and gets each one to the venue: new-order requests (the
  venue dedupes them by client order id, so a retry is safe) with backoff and jitter behind the
  venue's circuit breaker, until the venue answers. It publishes nothing the venue did: that comes
  from the drop copy.
- `DropCopyHandler` publishes every report of the venue's own record (`venue.<V>.dropcopy`, in the
  venue's order) as an execution event, once per exec id, whether the order's own reply was seen or
  not. The drop copy is written before the venue answers, so an answered order's reports are there.
- `CancelHandler` takes cancel requests (`orders.cancel.<venue>`) and asks the venue.

Never terminal while the venue may hold it. An order is closed here (rejected VENUE_UNAVAILABLE, or
canceled because trading was halted before it was sent) only when no request for it can have reached
the venue: every attempt found no venue subscribed. Once an attempt went unanswered (the venue may
have executed it: a slow venue answers late), or a process before this one had the order, the order
is closed only by the venue: a status request that closes it there if unknown (`close_if_unknown`).
Until the venue answers one, the order stays pending (in doubt, with an alarm), however long that is.

Clocks: an order's hold runs from when the broker stored its approval, in the broker's clock (the age
an approval waited in its stream, behind an open breaker, counts), as this process knows it from the
broker's stamps and its own monotonic clock (actors.runtime.broker_clock): a skewed wall clock changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from nats.aio.msg import Msg
from pydantic import ValidationError

from actors.domain.gateway_orders import GatewayOrders, TrackedOrder, UnknownOrder
from actors.domain.order_state import OrderState
from actors.domain.risk_state import TradingState
from actors.domain.trading_control import TradingControl
from actors.runtime.alarms import Alarms
from actors.runtime.faults import FaultPoints
from actors.runtime.stage import InputMeta, Outgoing
from actors.stages.gateway.closures import Closures
from actors.stages.gateway.link import VenueLink, VenueRefused, VenueUnreachable
from messages import (
    DecodeError,
    Envelope,
    Event,
    OrderApproved,
    OrderCancelRejected,
    OrderCancelRequested,
    execution_event_id,
    subjects,
    wrap,
)
from messages.ids import derive_event_id
from messages.venue import ExecReport, OrderCancelRequest, OrderStatusRequest, SessionReply, SessionRequest

__all__ = ["VENUE_UNAVAILABLE", "CancelHandler", "DropCopyHandler", "GatewayHandler", "OrderWaits",
           "decode_report"]

log = logging.getLogger(__name__)

VENUE_UNAVAILABLE = "VENUE_UNAVAILABLE"


class OrderWaits:
    """Wakes whoever waits on an order when the registry says it moved (the drop copy applied a report)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, order_id: str) -> asyncio.Event:
        return self._events.setdefault(order_id, asyncio.Event())

    def changed(self, order_id: str) -> None:
        event = self._events.get(order_id)
        if event is not None:
            event.set()

    def done(self, order_id: str) -> None:
        self._events.pop(order_id, None)


class _Base:
    stage = "gateway"

    def __init__(self, link: VenueLink, orders: GatewayOrders, partitions: int) -> None:
        self.link = link
        self.orders = orders
        self._partitions = partitions

    @property
    def activity(self) -> int:
        return self.link.activity

    def _observe(self, meta: InputMeta) -> None:
        self.link.observe(meta.stored_ns)

    def _subject(self, account: str) -> str:
        return subjects.executions(self.link.venue, subjects.partition_of(account, self._partitions))


class GatewayHandler(_Base):
    """Approved orders -> the venue, until the venue has answered for each (or it was never reached)."""

    concurrent = True

    def __init__(self, link: VenueLink, orders: GatewayOrders, partitions: int, waits: OrderWaits,
                 closures: Closures, control: TradingControl | None = None, alarms: Alarms | None = None,
                 faults: FaultPoints | None = None) -> None:
        super().__init__(link, orders, partitions)
        self._faults = faults or FaultPoints()
        self._waits = waits
        self._closures = closures
        self._control = control or TradingControl()
        self._alarms = alarms or Alarms(None, f"gateway-{link.venue}")
        #: Approvals being worked on now: they wait on the venue, not on this process.
        self.external_waits = 0

    async def handle(self, envelope: Envelope, event: Event, meta: InputMeta) -> list[Outgoing]:
        if not isinstance(event, OrderApproved):
            raise TypeError(f"gateway takes OrderApproved, not {event.TYPE}")
        self._observe(meta)
        tracked = self.orders.track(event)
        if tracked.state is not OrderState.PENDING_NEW or tracked.venue_answered:
            return []  # the venue has it: what it did comes from the drop copy
        if tracked.held_since is None:
            tracked.held_since, tracked.stored_ns = self.link.clock(), meta.stored_ns
        if meta.redelivered and not tracked.maybe_at_venue:
            tracked.maybe_at_venue = True  # a process before this one may have sent it
            closed = await self._closures.find(event.order_id)
            if closed is not None:  # ... or closed it without the venue: the same outcome again
                self.orders.close_unsent(event.order_id, "canceled" if closed.type == "OrderCanceled" else
                                         "rejected", "")
                return [Outgoing(self._subject(event.account), closed)]
        self.external_waits += 1
        try:
            return await self._resolve(envelope, tracked)
        finally:
            self.external_waits -= 1
            self._waits.done(event.order_id)

    async def _resolve(self, envelope: Envelope, tracked: TrackedOrder) -> list[Outgoing]:
        """Send the order (or, once it must close, ask the venue to close it) until the venue answers."""
        settings = self.link.settings
        delay = settings.retry_min
        changed = self._waits.event(tracked.order_id)
        alarmed = False
        while True:
            if tracked.state is not OrderState.PENDING_NEW or tracked.venue_answered:
                return []
            closing = self._closing_reason(tracked)
            if closing is not None and not tracked.maybe_at_venue:
                return await self._close_here(envelope, tracked, *closing)
            self.link.check_released(f"order {tracked.order_id}")
            request: SessionRequest = tracked.new_order_single() if closing is None else OrderStatusRequest(
                cl_ord_id=tracked.order_id, close_if_unknown=tracked.new_order_single(), reason=closing[1])
            if not self.link.allow():
                await self.link.pause(self.link.breaker_wait(), changed)
                continue
            try:
                reply = await self.link.send(request)
            except VenueUnreachable:
                pass  # delivered to no one: nothing happened at the venue
            except VenueRefused as exc:
                tracked.maybe_at_venue = True  # e.g. its journal write failed after the order was booked
                log.info("order %s: %s", tracked.order_id, exc)
            except Exception as exc:  # no answer: it may have been executed all the same
                tracked.maybe_at_venue = True
                log.info("order %s: %s", tracked.order_id, exc)
            else:
                if any(r.cl_ord_id == tracked.order_id for r in reply.reports):
                    tracked.venue_answered = True  # its reports are in the drop copy
                    await self._faults.reach("after_venue_answer")
                    return []
            if closing is not None and tracked.maybe_at_venue and not alarmed:
                alarmed = True
                self._alarms.raise_("order_in_doubt", f"order {tracked.order_id} may be at venue {self.link.venue} "
                                    f"and the venue does not answer; it stays pending until it does",
                                    tracked.order_id)
            changed.clear()
            await self.link.pause(delay, changed)
            delay = self.link.backoff(delay)

    def _closing_reason(self, tracked: TrackedOrder) -> tuple[str, str] | None:
        """("canceled" | "rejected", reason) once the order must not be placed any more, else None."""
        switch = self._control.switch_for(tracked.account)
        if switch.state is TradingState.HALTED:
            return "canceled", (f"trading halted ({switch.scope}) before it reached the venue: {switch.reason}"
                                if switch.reason else f"trading halted ({switch.scope}) before it reached the venue")
        held = self.link.clock() - (tracked.held_since or self.link.clock())
        held = max(held, self.link.age_s(tracked.stored_ns) or 0.0)  # time in its stream (behind an open breaker)
        if held > self.link.settings.max_hold:
            return "rejected", f"{VENUE_UNAVAILABLE}: no answer from venue {self.link.venue} in {held:.1f}s"
        return None

    async def _close_here(self, envelope: Envelope, tracked: TrackedOrder, kind: str, reason: str) -> list[Outgoing]:
        """Close an order the venue never received; the decision is stored before it is published."""
        closing = self.orders.close_unsent(tracked.order_id, kind, reason)
        out = Outgoing(self._subject(tracked.account), wrap(closing, cause=envelope))
        await self._closures.record(out.envelope)
        return [out]


class CancelHandler(_Base):
    """Cancel requests -> the venue. The cancel itself comes back through the drop copy."""

    concurrent = False

    def __init__(self, link: VenueLink, orders: GatewayOrders, partitions: int) -> None:
        super().__init__(link, orders, partitions)
        #: Cancels waiting on the venue now (not on this process).
        self.external_waits = 0

    async def handle(self, envelope: Envelope, event: Event, meta: InputMeta) -> list[Outgoing]:
        if not isinstance(event, OrderCancelRequested):
            raise TypeError(f"gateway cancels take OrderCancelRequested, not {event.TYPE}")
        self._observe(meta)
        tracked = self.orders.get(event.order_id)
        if tracked is not None and tracked.machine.is_terminal:
            return self._refuse(envelope, event, f"order is {tracked.state.value}", tracked.state.value)
        # Unknown here (taken before a restart, or not yet answered) is no reason to refuse: the venue knows.
        self.external_waits += 1
        try:
            reply = await self._send(OrderCancelRequest(cl_ord_id=event.order_id))
        finally:
            self.external_waits -= 1
        state = tracked.state.value if tracked is not None else None
        if reply is None:
            return self._refuse(envelope, event, f"{VENUE_UNAVAILABLE}: the venue did not confirm the cancel (it may "
                                "still be done; its report would follow)", state)
        refusal = next((r for r in reply.reports if r.kind == "rejected"), None)
        if refusal is not None:
            return self._refuse(envelope, event, refusal.reason or "refused by the venue", state)
        if tracked is not None and tracked.live:
            tracked.machine.cancel_requested()
        return []

    async def _send(self, request: OrderCancelRequest) -> SessionReply | None:
        """The venue's answer, retried with backoff up to `max_hold`; None when it never came."""
        settings = self.link.settings
        started = self.link.clock()
        delay = settings.retry_min
        while self.link.clock() - started < settings.max_hold:
            self.link.check_released(f"the cancel of {request.cl_ord_id}")
            if self.link.allow():
                try:
                    return await self.link.send(request)
                except Exception as exc:  # a cancel is idempotent at the venue: ask again
                    log.info("cancel of %s: %s", request.cl_ord_id, exc)
                await self.link.pause(delay)
                delay = self.link.backoff(delay)
            else:
                await self.link.pause(self.link.breaker_wait())
        return None

    def _refuse(self, envelope: Envelope, event: OrderCancelRequested, reason: str,
                state: str | None = None) -> list[Outgoing]:
        refused = OrderCancelRejected(order_id=event.order_id, account=event.account, venue=self.link.venue,
                                      reason=reason, state=state)
        return [Outgoing(self._subject(event.account), wrap(refused, cause=envelope))]


_REPORT_NAMESPACE = uuid.UUID("3b6f0a52-8d41-4c77-a0e2-5d9c1e7f2b64")


def decode_report(msg: Msg) -> tuple[Envelope, ExecReport]:
    """A drop-copy record as the consumer loop's input: the envelope's id is derived from the record's
    place in the stream (the same on every delivery)."""
    try:
        report = ExecReport.model_validate_json(msg.data)
    except ValidationError as exc:
        raise DecodeError("invalid_payload", f"not an execution report: {exc.error_count()} error(s)") from exc
    event_id = derive_event_id(_REPORT_NAMESPACE, "ExecReport", f"{msg.metadata.sequence.stream}|{report.exec_id}")
    envelope = Envelope(event_id=event_id, type="ExecReport", version=1, correlation_id=report.cl_ord_id,
                        ts=time.time_ns(), payload={})
    return envelope, report


class DropCopyHandler(_Base):
    """The venue's own record -> executions: every report once, in the venue's order."""

    concurrent = False

    def __init__(self, link: VenueLink, orders: GatewayOrders, partitions: int,
                 alarms: Alarms | None = None) -> None:
        super().__init__(link, orders, partitions)
        self._alarms = alarms or Alarms(None, f"gateway-{link.venue}")

    async def handle(self, envelope: Envelope, event: object, meta: InputMeta) -> list[Outgoing]:
        report = event
        if not isinstance(report, ExecReport):
            raise TypeError(f"the drop copy holds ExecReports, not {type(report).__name__}")
        self._observe(meta)
        try:
            applied = self.orders.apply(report)
        except UnknownOrder:
            raise ValueError(f"report {report.exec_id} names no account and order {report.cl_ord_id} is unknown "
                             "here: it cannot be published") from None
        if applied is None:
            return []  # applied before (a redelivery of a record this process already published)
        if applied.correction:
            self._alarms.raise_("execution_correction", f"venue {self.link.venue} report {report.exec_id} "
                                f"({report.kind}) for order {report.cl_ord_id}, which our books had closed or which "
                                "its state machine refused: published as a correction", report.cl_ord_id, "critical")
        event_id = execution_event_id(self.link.venue, report.exec_id, applied.event.TYPE)
        return [Outgoing(self._subject(applied.event.account),  # type: ignore[attr-defined]
                         wrap(applied.event, event_id=event_id, cause=envelope))]

