"""The rig the consumer loop's unit tests share (no tests of its own): one `ConsumerLoop` on an
in-memory broker (actors.runtime.memory_broker) with streams IN, OUT and DLQ and the bucket APPLIED,
a scripted handler, and a virtual clock (actors.runtime.virtual_time), so that ack waits, backoffs
and broker retries take no real time and every run is the same."""

from __future__ import annotations

import asyncio
import base64
import inspect
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from actors.runtime.alarms import Alarms
from actors.runtime.applied import APPLIED_BUCKET
from actors.runtime.faults import FaultPoints
from actors.runtime.loop import DELIVERY_SLACK, ConsumerLoop, RecentIds
from actors.runtime.memory_broker import MemoryBroker, Op
from actors.runtime.stage import InputMeta, Outgoing, TransientError
from actors.runtime.virtual_time import run_virtual
from cluster.config import DeliveryConfig
from messages import MSG_ID_HEADER, DeadLettered, Envelope, OrderReceived, decode, encode, wrap
from messages.ids import order_received_id
from supervision.decider import Decider

__all__ = ["ACK_WAIT", "BIG", "DUPLICATE_WINDOW", "NONE", "OK", "POISON", "TRANSIENT", "Echo", "Rig", "envelope_of",
           "run_virtual", "virtual"]

ACK_WAIT = 5.0
DUPLICATE_WINDOW = 120.0
DURABLE = "echo"

#: What the scripted handler does on one attempt at an input.
OK, NONE, TRANSIENT, POISON, BIG = "ok", "none", "transient", "poison", "big"


def virtual(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test on a fresh virtual-time event loop (a plain test function for pytest, with
    the test's parameters)."""

    def run(**kwargs: Any) -> None:
        run_virtual(test(**kwargs))

    run.__name__, run.__qualname__, run.__doc__ = test.__name__, test.__qualname__, test.__doc__
    run.__module__ = test.__module__
    run.__signature__ = inspect.signature(test)  # type: ignore[attr-defined]
    return run


def envelope_of(order_id: str) -> Envelope:
    order = OrderReceived(order_id=order_id, account="ACC1", symbol="AAPL", side="BUY", qty=1, price="1")
    return wrap(order, event_id=order_received_id(order_id), ts=0)


class Echo:
    """One output per input (out.0), unless the script for its order says otherwise on that attempt:
    OK, NONE (no output), TRANSIENT (TransientError), POISON (ValueError), BIG (an output too large),
    or an exception to raise. The last step of a script repeats."""

    stage = "echo"
    concurrent = False

    def __init__(self, script: dict[str, list[Any]] | None = None) -> None:
        self.script = script or {}
        self.attempts: Counter[str] = Counter()
        self.metas: list[tuple[str, InputMeta]] = []

    async def handle(self, envelope: Envelope, event: Any, meta: InputMeta) -> list[Outgoing]:
        order_id = event.order_id
        steps = self.script.get(order_id) or [OK]
        step = steps[min(self.attempts[order_id], len(steps) - 1)]
        self.attempts[order_id] += 1
        self.metas.append((order_id, meta))
        if isinstance(step, BaseException):
            raise step
        if step == TRANSIENT:
            raise TransientError(f"{order_id}: try again")
        if step == POISON:
            raise ValueError(f"{order_id}: cannot be handled")
        if step == NONE:
            return []
        out = wrap(event, cause=envelope, ts=envelope.ts)
        if step == BIG:
            out = out.model_copy(update={"payload": {**out.payload, "filler": "x" * 2_000_000}})
        return [Outgoing("out.0", out)]


class Rig:
    """A consumer loop on an in-memory broker; `async with Rig(...) as rig:` runs it."""

    def __init__(self, handler: Any = None, *, max_deliver: int = 3, batch: int = 8, ack_all: bool = False,
                 decider: Decider | None = None, max_payload: int = 1024 * 1024, prefetch: bool = False,
                 seen: RecentIds | None = None, broker: MemoryBroker | None = None) -> None:
        """A loop on a new broker, or on `broker` (another rig's: the next owner of its consumer)."""
        self.delivery = DeliveryConfig(ack_wait=ACK_WAIT, max_deliver=max_deliver, backoff=(0.1, 0.2, 0.4),
                                       batch=batch)
        if broker is None:
            broker = MemoryBroker(max_payload=max_payload, prefetch=prefetch)
            broker.add_stream("IN", ["in.>"], duplicate_window=DUPLICATE_WINDOW)
            broker.add_stream("OUT", ["out.>"])
            broker.add_stream("DLQ", ["dlq.>"])
            broker.add_bucket(APPLIED_BUCKET)
            broker.add_consumer("IN", DURABLE, filter_subject="in.>", ack_wait=ACK_WAIT,
                                max_deliver=max_deliver + DELIVERY_SLACK, ack_all=ack_all)
        self.broker = broker
        self.consumer = broker.consumer("IN", DURABLE)
        self.handler = handler if handler is not None else Echo()
        self.faults = FaultPoints()
        self.alarms = Alarms(None, DURABLE)
        self.loop = ConsumerLoop(None, None, "IN", DURABLE, self.handler, self.delivery, seen, self.faults,
                                 decider=decider, ack_all=ack_all, alarms=self.alarms, broker=self.broker)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Rig:
        self.task = asyncio.create_task(self.loop.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.loop.stop()
        assert self.task is not None
        await asyncio.wait([self.task], timeout=60)
        if not self.task.done():
            self.task.cancel()
        elif not self.task.cancelled() and self.task.exception() is not None and exc[0] is None:
            raise self.task.exception()  # type: ignore[misc]

    def publish(self, order_id: str, *, msg_id: str | None = None, headers: dict[str, str] | None = None,
                data: bytes | None = None) -> int:
        """An input on in.0 (an OrderReceived for `order_id`); returns its stream sequence."""
        envelope = envelope_of(order_id)
        all_headers = {MSG_ID_HEADER: msg_id or str(envelope.event_id), **(headers or {})}
        return self.broker.publish("in.0", encode(envelope) if data is None else data, all_headers)

    async def until(self, predicate: Callable[[], Any], within: float = 120.0, what: str = "condition") -> None:
        """Wait (in virtual time) until `predicate()` is true; fail after `within` virtual seconds."""
        clock = asyncio.get_running_loop()
        deadline = clock.time() + within
        while not predicate():
            if self.task is not None and self.task.done():
                raise AssertionError(f"the loop ended while waiting for {what}: {self.task!r}")
            if clock.time() > deadline:
                raise AssertionError(f"no {what} within {within} virtual seconds")
            await asyncio.sleep(0.01)

    def settled(self) -> bool:
        """Every input delivered and acknowledged (or given up by the broker)."""
        info = self.consumer.info()
        return info.num_pending == 0 and info.num_ack_pending == 0

    def outputs(self) -> list[str]:
        """The order ids of the outputs stored on OUT, in order."""
        return [decode(m.data)[0].correlation_id for m in self.broker.stored("OUT")]

    def letters(self) -> list[DeadLettered]:
        out = []
        for m in self.broker.stored("DLQ"):
            event = decode(m.data)[1]
            assert isinstance(event, DeadLettered)
            out.append(event)
        return out

    def held(self, seq: int) -> bool:
        """Delivered, unacked, and its ack wait not run out: the broker would not redeliver it now."""
        pending = self.consumer.pending.get(seq)
        return pending is not None and pending.due > self.broker.clock()

    def ops(self, kind: str, stream: str = "IN") -> list[Op]:
        return self.broker.ops_of(kind, stream)

    def acks_of(self, seq: int) -> int:
        return sum(1 for op in self.ops("ack") if op.seq == seq)

    def naks_of(self, seq: int) -> int:
        return sum(1 for op in self.ops("nak") if op.seq == seq)

    def deliveries_of(self, seq: int) -> int:
        return sum(1 for op in self.ops("deliver") if op.seq == seq)

    def payload_of(self, letter: DeadLettered) -> bytes:
        return base64.b64decode(letter.payload_b64)
