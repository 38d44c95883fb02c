"""`TradingClient`: place, await and inspect orders from a Python driver (async, plus a sync wrapper).

    async with TradingClient.from_config(load_config("examples/local.yaml")) as client:
        order_id = await client.place_order("ACC1", "AAPL", "BUY", 100, "187.25")
        outcome = await client.wait(order_id)

Bad input raises `OrderValidationError` before anything is published. An unreachable broker raises
`BrokerUnavailable` after the connect or publish timeout, never hangs.

Memory stays bounded in a long-running driver: the client keeps every order it placed until it
settles, every order someone waits on or `retaining()` holds, and, of everything else (settled
orders, orders it only saw go by), the `keep_settled` it heard from most recently. An order forgotten
that way raises `OrderForgotten` when asked about; its late events are ignored and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import Any

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy
from nats.js.errors import APIError, NoStreamResponseError
from pydantic import ValidationError

from actors.runtime.nats_conn import BrokerUnavailable as ConnectFailed
from actors.runtime.nats_conn import connect
from actors.runtime.publisher import AckedPublisher
from cluster.client.errors import BrokerUnavailable, OrderForgotten, OrderTimeout, OrderValidationError, PublishRejected
from cluster.client.outcome import OrderOutcome, OrderStatus, OrderTrack
from cluster.config import SystemConfig, resolve_nats_url
from messages import (
    MSG_ID_HEADER,
    DecodeError,
    NewOrder,
    OrderCancelRequested,
    OrderReceived,
    decode,
    encode,
    new_order_id,
    order_received_id,
    subjects,
    wrap,
)

__all__ = ["TradingClient"]

#: Orders kept beyond those pinned (placed and unsettled, waited on, retained): about 11 KB each.
KEEP_SETTLED = 10_000
_OUTCOME_SUBJECTS = (subjects.orders_rejected("*"), subjects.executions("*", "*"), subjects.allocations("*"))


def _validation_error(exc: ValidationError) -> OrderValidationError:
    fields = tuple(".".join(str(p) for p in e["loc"]) or "order" for e in exc.errors())
    detail = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'order'}: {e['msg']}" for e in exc.errors())
    return OrderValidationError(f"invalid order: {detail}", fields)


class TradingClient:
    def __init__(self, nats_url: str, partitions: int, *, connect_timeout: float = 5.0,
                 publish_timeout: float = 5.0, track_outcomes: bool = True,
                 keep_settled: int = KEEP_SETTLED) -> None:
        if keep_settled < 0:
            raise ValueError(f"keep_settled must be >= 0, not {keep_settled}")
        self.nats_url = nats_url
        self.partitions = partitions
        self.connect_timeout = connect_timeout
        self.publish_timeout = publish_timeout
        self.track_outcomes = track_outcomes
        self._nc: Client | None = None
        #: Orders and cancels are stored through it: a future per message, one reply subscription.
        self._publisher: AckedPublisher | None = None
        self._js: JetStreamContext | None = None
        self.keep_settled = keep_settled
        #: Orders that must not be forgotten: placed here and not settled, waited on, or retained.
        self._pinned: dict[str, OrderTrack] = {}
        #: Every other order, least recently heard of first; at most `keep_settled`.
        self._recent: OrderedDict[str, OrderTrack] = OrderedDict()
        self._forgotten: OrderedDict[str, None] = OrderedDict()
        self._retained: dict[str, int] = {}
        #: Events of orders already forgotten (a late duplicate, say): ignored.
        self.late_events = 0
        self._waiters: dict[str, list[asyncio.Future[OrderOutcome]]] = {}
        self._listeners: list[Callable[[OrderOutcome], None]] = []
        self.placed_at: dict[str, int] = {}
        self.settled_at: dict[str, int] = {}
        self.undecodable = 0

    @classmethod
    def from_config(cls, cfg: SystemConfig, **kwargs: Any) -> TradingClient:
        cfg = resolve_nats_url(cfg)
        return cls(cfg.nats.url, cfg.partitions, connect_timeout=cfg.nats.connect_timeout, **kwargs)

    async def __aenter__(self) -> TradingClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        try:
            self._nc = await connect(self.nats_url, name="trading-client", connect_timeout=self.connect_timeout)
        except ConnectFailed as exc:
            raise BrokerUnavailable(str(exc)) from exc
        self._publisher = AckedPublisher(self._nc)
        await self._publisher.start()
        if self.track_outcomes:
            for subject in _OUTCOME_SUBJECTS:
                await self.js.subscribe(subject, cb=self._on_event, ordered_consumer=True,
                                   deliver_policy=DeliverPolicy.NEW, idle_heartbeat=2.0)

    async def close(self) -> None:
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.drain()
            self._nc = None
            self._js = None
            self._publisher = None

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise RuntimeError("TradingClient is not connected: use `async with` or call connect()")
        return self._nc

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context, made once (nats-py builds a new one, with its parsers, on each call)."""
        if self._js is None:
            self._js = self.nc.jetstream()
        return self._js

    # ---- orders -------------------------------------------------------------------------------
    def build_order(self, account: str, symbol: str, side: str, qty: int, price: Decimal | str | None = None,
                    **fields: Any) -> NewOrder:
        """Validate an order without publishing it (raises OrderValidationError naming the fields)."""
        if "order_id" not in fields or fields["order_id"] is None:
            fields["order_id"] = new_order_id()
        if isinstance(price, float):
            price = Decimal(str(price))
        try:
            return NewOrder(account=account, symbol=symbol, side=side, qty=qty, price=price, **fields)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        except TypeError as exc:
            raise OrderValidationError(f"invalid order: {exc}", ()) from None

    async def place_order(self, account: str, symbol: str, side: str, qty: int,
                          price: Decimal | str | None = None, **fields: Any) -> str:
        """Publish an order; returns its id once the broker has stored it. Same id twice = one order."""
        order = self.build_order(account, symbol, side, qty, price, **fields)
        await self.submit(order)
        return order.order_id

    async def submit(self, order: NewOrder) -> None:
        received = OrderReceived(**order.model_dump())
        envelope = wrap(received, event_id=order_received_id(order.order_id))
        subject = subjects.orders_received(subjects.partition_of(order.account, self.partitions))
        self.placed_at.setdefault(order.order_id, time.monotonic_ns())
        self._forgotten.pop(order.order_id, None)  # placed again: the same order, tracked again
        self._track_or_new(order.order_id)
        self._rehome(order.order_id)
        await self._store(subject, envelope, f"order {order.order_id}")

    async def _store(self, subject: str, envelope: Any, what: str) -> None:
        """Publish to a stream and wait for the broker's ack; a clear error instead of a hang."""
        if self._publisher is None:
            raise RuntimeError("TradingClient is not connected: use `async with` or call connect()")
        try:
            await self._publisher.store([(subject, encode(envelope), {MSG_ID_HEADER: str(envelope.event_id)})],
                                        self.publish_timeout)
        except (TimeoutError, NoStreamResponseError) as exc:
            raise BrokerUnavailable(f"{what} not stored: no answer from the broker within "
                                    f"{self.publish_timeout}s ({type(exc).__name__})") from exc
        except APIError as exc:
            raise PublishRejected(f"{what} refused by the broker: {exc.description}") from exc
        except NatsError as exc:  # closed, draining, or the reconnect buffer is full
            raise BrokerUnavailable(f"{what} not stored: {type(exc).__name__}: {exc}") from exc

    async def cancel(self, order_id: str, account: str, venue: str = "SIM", reason: str = "client request") -> str:
        """Ask to cancel a working order; returns the request id once the broker has stored it. The
        answer is an OrderCanceled (the order's outcome) or an OrderCancelRejected (see
        `wait_cancel`)."""
        try:
            request = OrderCancelRequested(order_id=order_id, account=account, venue=venue, reason=reason)
        except ValidationError as exc:
            raise _validation_error(exc) from None
        envelope = wrap(request, event_id=uuid.uuid4())
        await self._store(subjects.orders_cancel(venue), envelope, f"cancel of {order_id}")
        return str(envelope.event_id)

    async def wait_cancel(self, order_id: str, request_id: str, timeout: float = 30.0) -> OrderOutcome:
        """The outcome once the cancel request is answered: the order canceled, or `cancel_rejected` set
        from the refusal of this request (e.g. the order had filled). OrderTimeout otherwise."""
        deadline = time.monotonic() + timeout
        with self.retaining([order_id]):
            while time.monotonic() < deadline:
                track = self.track(order_id)
                answered = any(env.causation_id == request_id for env, _ in track.events.values())
                outcome = track.outcome()
                if answered or (outcome.status is OrderStatus.CANCELED and outcome.settled):
                    return outcome
                await asyncio.sleep(0.02)
            status = self.outcome(order_id).status
        raise OrderTimeout(f"cancel of {order_id}: no answer within {timeout}s (status {status})")

    async def positions(self, account: str | None = None) -> list[dict[str, Any]]:
        """Positions per account and symbol: quantity, avg cost, realised and unrealised P&L at the
        reference price (see `cluster.ops.positions.query_positions`)."""
        from cluster.ops.positions import query_positions

        return list((await query_positions(self.nc, account))["positions"])

    # ---- outcomes -----------------------------------------------------------------------------
    async def _on_event(self, msg: Any) -> None:
        try:
            envelope, event = decode(msg.data)
        except DecodeError:
            self.undecodable += 1
            return
        order_id = event.order_id
        if order_id in self._forgotten:
            self.late_events += 1
            return
        track = self._track_or_new(order_id)
        track.add(envelope, event)
        if track.settled():
            self.settled_at.setdefault(order_id, time.monotonic_ns())
            outcome = track.outcome()
            for fut in self._waiters.pop(order_id, []):
                if not fut.done():
                    fut.set_result(outcome)
            for listener in self._listeners:
                listener(outcome)
        self._rehome(order_id)

    def on_settled(self, listener: Callable[[OrderOutcome], None]) -> None:
        self._listeners.append(listener)

    def off_settled(self, listener: Callable[[OrderOutcome], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def outcome(self, order_id: str) -> OrderOutcome:
        return self.track(order_id).outcome()

    def track(self, order_id: str) -> OrderTrack:
        """Everything seen of an order (a new, empty track for one not seen yet); OrderForgotten for one
        settled long enough ago that the client no longer keeps it."""
        if order_id in self._forgotten:
            raise OrderForgotten(f"order {order_id} settled and was forgotten: the client keeps the latest "
                                 f"{self.keep_settled} orders beyond those placed and unsettled, waited on or "
                                 "retained (TradingClient(keep_settled=...), retaining())")
        track = self._track_or_new(order_id)
        self._rehome(order_id)
        return track

    @contextlib.contextmanager
    def retaining(self, order_ids: Iterable[str]) -> Iterator[None]:
        """Keep these orders' tracks (and their timestamps), settled or not, until the block ends: for a
        driver that inspects a whole run's outcomes afterwards, as `run_load` does."""
        ids = list(order_ids)
        for order_id in ids:
            self._retained[order_id] = self._retained.get(order_id, 0) + 1
            self._forgotten.pop(order_id, None)
            self._rehome(order_id)
        try:
            yield
        finally:
            for order_id in ids:
                if self._retained.get(order_id, 0) <= 1:
                    self._retained.pop(order_id, None)
                else:
                    self._retained[order_id] -= 1
                self._rehome(order_id)

    @property
    def tracked(self) -> int:
        """How many orders the client holds now."""
        return len(self._pinned) + len(self._recent)

    def _held(self, order_id: str) -> OrderTrack | None:
        return self._pinned.get(order_id) or self._recent.get(order_id)

    def _track_or_new(self, order_id: str) -> OrderTrack:
        track = self._held(order_id)
        if track is None:
            track = self._recent[order_id] = OrderTrack(order_id)
        return track

    def _rehome(self, order_id: str) -> None:
        """Pin the order or put it last in the recent ones (forgetting the oldest beyond the bound)."""
        track = self._held(order_id)
        if track is None:
            return
        pin = (order_id in self._retained or bool(self._waiters.get(order_id))
               or (order_id in self.placed_at and not track.settled()))
        if pin:
            if self._recent.pop(order_id, None) is not None:
                self._pinned[order_id] = track
            return
        if self._pinned.pop(order_id, None) is not None:
            self._recent[order_id] = track
        else:
            self._recent.move_to_end(order_id)
        while len(self._recent) > self.keep_settled:
            old, _ = self._recent.popitem(last=False)
            self.placed_at.pop(old, None)
            self.settled_at.pop(old, None)
            self._forgotten[old] = None
        while len(self._forgotten) > max(10 * self.keep_settled, 100_000):
            self._forgotten.popitem(last=False)

    async def wait(self, order_id: str, timeout: float = 30.0, working_ok: bool = False) -> OrderOutcome:
        """The order's terminal outcome (with its allocations), or OrderTimeout. With `working_ok`, an
        order resting at the venue (accepted or partly filled, nothing new for a moment) is returned too."""
        current = self.outcome(order_id)
        if current.settled:
            return current
        fut: asyncio.Future[OrderOutcome] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(order_id, []).append(fut)
        self._rehome(order_id)
        deadline = time.monotonic() + timeout
        try:
            if working_ok:
                return await self._settled_or_working(order_id, fut, deadline)
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise OrderTimeout(f"order {order_id}: no terminal outcome within {timeout}s "
                               f"(last status {self.outcome(order_id).status})") from None
        finally:
            waiting = [f for f in self._waiters.get(order_id, []) if f is not fut]
            if waiting:
                self._waiters[order_id] = waiting
            else:
                self._waiters.pop(order_id, None)
            self._rehome(order_id)

    async def _settled_or_working(self, order_id: str, fut: asyncio.Future[OrderOutcome],
                                  deadline: float, quiet_s: float = 0.25) -> OrderOutcome:
        seen = -1
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            done, _ = await asyncio.wait([fut], timeout=min(quiet_s, left))
            if done:
                return fut.result()
            track = self.track(order_id)
            outcome = track.outcome()
            if outcome.status in (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED) and len(track.events) == seen:
                return outcome
            seen = len(track.events)


