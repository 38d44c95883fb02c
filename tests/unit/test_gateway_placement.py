"""How the gateway gets an approved order to the venue: never closed here while the venue may hold it.

A fake session stands in for the venue (scripted answers, a fake clock that `pause` moves on): no
server, no sleeps."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from actors.domain.gateway_orders import GatewayOrders
from actors.domain.order_state import OrderState
from actors.domain.trading_control import TradingControl, account_key
from actors.runtime.alarms import Alarms
from actors.runtime.broker_clock import BrokerClock
from actors.runtime.stage import InputMeta, Released
from actors.stages.gateway.handlers import GatewayHandler, OrderWaits
from actors.stages.gateway.link import VenueLink, VenueNoAnswer, VenueUnreachable
from cluster.config import GatewayStage
from messages import Envelope, OrderApproved, OrderCanceled, OrderVenueRejected, order_received_id, wrap
from messages.venue import ExecReport, NewOrderSingle, OrderStatusRequest, SessionReply, SessionRequest

Answer = Callable[[SessionRequest], SessionReply]


class FakeLink:
    venue = "SIM"

    def __init__(self, answer: Answer, max_hold: float = 10.0) -> None:
        self.settings = GatewayStage(call_timeout=2.0, max_hold=max_hold, retry_min=0.1, retry_max=2.0)
        self.now = 1000.0
        self.sent: list[SessionRequest] = []
        self.activity = 0
        self._answer = answer
        self.broker = BrokerClock()
        self.released = False

    def check_released(self, what: str) -> None:
        VenueLink.check_released(self, what)  # type: ignore[arg-type]

    def clock(self) -> float:
        return self.now

    def observe(self, stored_ns: int) -> None:
        self.broker.observe(stored_ns, int(self.now * 1e9))

    def age_s(self, stored_ns: int) -> float | None:
        return self.broker.age_s(stored_ns, int(self.now * 1e9))

    def allow(self) -> bool:
        return True

    def breaker_wait(self) -> float:
        return 0.1

    def backoff(self, delay: float) -> float:
        return min(delay * 2, self.settings.retry_max)

    async def pause(self, seconds: float, also: asyncio.Event | None = None) -> None:
        self.now += seconds
        await asyncio.sleep(0)

    async def send(self, request: SessionRequest) -> SessionReply:
        self.sent.append(request)
        self.now += 0.01
        return self._answer(request)


class MemoryClosures:
    def __init__(self) -> None:
        self.stored: dict[str, Envelope] = {}

    async def record(self, envelope: Envelope) -> None:
        self.stored[envelope.correlation_id] = envelope

    async def find(self, order_id: str) -> Envelope | None:
        return self.stored.get(order_id)


def accepted(order: NewOrderSingle) -> ExecReport:
    return ExecReport(exec_id="SIM-1-A", cl_ord_id=order.cl_ord_id, kind="accepted", venue_order_id="SIM-1",
                      symbol=order.symbol, side=order.side, order_qty=order.qty, leaves_qty=order.qty,
                      account=order.account, price=order.price)


def venue_that_fills(request: SessionRequest) -> SessionReply:
    assert isinstance(request, NewOrderSingle | OrderStatusRequest)
    order = request if isinstance(request, NewOrderSingle) else request.close_if_unknown
    assert order is not None
    return SessionReply(ok=True, reports=(accepted(order),))


def silent(request: SessionRequest) -> SessionReply:
    raise VenueNoAnswer("no answer")


def not_connected(request: SessionRequest) -> SessionReply:
    raise VenueUnreachable("no responders")


class Gateway:
    def __init__(self, answer: Answer, control: TradingControl | None = None, max_hold: float = 10.0) -> None:
        self.link = FakeLink(answer, max_hold)
        self.waits = OrderWaits()
        self.orders = GatewayOrders("SIM", on_change=self.waits.changed)
        self.closures = MemoryClosures()
        self.alarms = Alarms(None, "gateway-SIM")
        self.handler = GatewayHandler(self.link, self.orders, 4, self.waits, self.closures,  # type: ignore[arg-type]
                                      control, self.alarms)

    async def take(self, approval: OrderApproved, deliveries: int = 1, envelope: Envelope | None = None,
                   waited_s: float = 0.0) -> list:
        """The approval, stored by the broker `waited_s` before it is taken (time it spent in its stream)."""
        envelope = envelope or wrap(approval, event_id=order_received_id(approval.order_id))
        stored = time.time_ns()
        self.link.observe(stored)  # a message just stored: the broker's clock as this process knows it
        meta = InputMeta(stored_ns=stored - int(waited_s * 1e9), deliveries=deliveries)
        return await self.handler.handle(envelope, approval, meta)


def approval(order_id: str = "O1", account: str = "ACC1") -> OrderApproved:
    return OrderApproved(order_id=order_id, account=account, symbol="AAPL", side="BUY", qty=100, price=Decimal("10"))


async def test_an_order_the_venue_answers_is_done_and_its_reports_come_from_the_drop_copy() -> None:
    gw = Gateway(venue_that_fills)
    assert await gw.take(approval()) == []
    assert len(gw.link.sent) == 1 and isinstance(gw.link.sent[0], NewOrderSingle)
    assert gw.orders.get("O1").venue_answered


async def test_an_order_no_venue_ever_received_is_rejected_here_at_max_hold_and_the_decision_is_stored_first() -> None:
    gw = Gateway(not_connected)
    (out,) = await gw.take(approval())
    assert isinstance(out.envelope.event(), OrderVenueRejected)
    assert "VENUE_UNAVAILABLE" in out.envelope.event().reason  # type: ignore[attr-defined]
    assert gw.closures.stored["O1"] == out.envelope
    assert all(isinstance(r, NewOrderSingle) for r in gw.link.sent)


async def test_an_order_whose_attempt_went_unanswered_is_never_closed_here_only_by_the_venue() -> None:
    calls = 0

    def slow_then_back(request: SessionRequest) -> SessionReply:
        nonlocal calls
        calls += 1
        if calls < 40:  # well past max_hold: the venue stays silent
            raise VenueNoAnswer("no answer")
        return venue_that_fills(request)

    gw = Gateway(slow_then_back)
    assert await gw.take(approval()) == []  # nothing published here: the venue's answer is in its drop copy
    closing = [r for r in gw.link.sent if isinstance(r, OrderStatusRequest)]
    assert closing and closing[0].close_if_unknown is not None and "VENUE_UNAVAILABLE" in closing[0].reason
    assert isinstance(gw.link.sent[-1], OrderStatusRequest)
    assert gw.orders.get("O1").venue_answered and gw.alarms.counts["order_in_doubt"] == 1


async def test_an_order_in_doubt_stays_pending_for_as_long_as_the_venue_is_silent() -> None:
    gw = Gateway(silent)
    task = asyncio.create_task(gw.take(approval()))
    for _ in range(500):
        await asyncio.sleep(0)
    assert not task.done() and gw.link.now - 1000.0 > 10 * gw.link.settings.max_hold
    assert gw.orders.get("O1").state.value == "PENDING_NEW" and gw.closures.stored == {}
    task.cancel()


async def test_a_report_from_the_drop_copy_ends_the_wait_without_another_request() -> None:
    gw = Gateway(silent)
    task = asyncio.create_task(gw.take(approval()))
    for _ in range(5):
        await asyncio.sleep(0)
    sent = len(gw.link.sent)
    gw.orders.apply(accepted(gw.orders.get("O1").new_order_single()))
    assert await asyncio.wait_for(task, 1.0) == []
    assert len(gw.link.sent) <= sent + 1


async def test_an_order_halted_before_it_was_sent_is_canceled_here_without_a_word_to_the_venue() -> None:
    control = TradingControl()
    control.apply(account_key("ACC1"), b'{"state": "HALTED", "reason": "desk"}')
    gw = Gateway(venue_that_fills, control)
    (out,) = await gw.take(approval())
    assert isinstance(out.envelope.event(), OrderCanceled) and gw.link.sent == []


async def test_a_redelivered_approval_for_a_halted_account_is_closed_by_the_venue_not_here() -> None:
    control = TradingControl()
    control.apply(account_key("ACC1"), b'{"state": "HALTED", "reason": "desk"}')
    gw = Gateway(venue_that_fills, control)
    assert await gw.take(approval(), deliveries=2) == []
    (request,) = gw.link.sent
    assert isinstance(request, OrderStatusRequest) and "halted" in request.reason


async def test_a_redelivered_approval_an_earlier_process_closed_gets_the_same_closing_event_again() -> None:
    first = Gateway(not_connected)
    (closed,) = await first.take(approval())
    again = Gateway(venue_that_fills)
    again.closures.stored = first.closures.stored  # the KV bucket outlives the process
    (out,) = await again.take(approval(), deliveries=2)
    assert out.envelope == closed.envelope and again.link.sent == []


async def test_the_hold_runs_on_this_process_clock_not_on_the_time_in_the_approval() -> None:
    gw = Gateway(venue_that_fills)
    skewed = wrap(approval(), event_id=order_received_id("O1"), ts=time.time_ns() - 3600 * 10**9)  # an hour off
    assert await gw.take(approval(), envelope=skewed) == []
    assert isinstance(gw.link.sent[0], NewOrderSingle)


async def test_an_approval_that_waited_past_max_hold_in_its_stream_and_was_never_sent_is_rejected_at_once() -> None:
    gw = Gateway(venue_that_fills)
    (out,) = await gw.take(approval(), waited_s=40.0)  # behind an open breaker, say
    assert isinstance(out.envelope.event(), OrderVenueRejected) and gw.link.sent == []


async def test_an_order_waiting_on_a_silent_venue_is_handed_back_unfinished_when_the_gateway_stops() -> None:
    gw = Gateway(silent, max_hold=1e9)
    waiting = asyncio.create_task(gw.take(approval()))
    while len(gw.link.sent) < 3:  # sent, and waiting on the venue
        await asyncio.sleep(0)
    gw.link.released = True
    with pytest.raises(Released):
        await asyncio.wait_for(waiting, 5)
    assert gw.closures.stored == {} and gw.orders.get("O1").state is OrderState.PENDING_NEW
