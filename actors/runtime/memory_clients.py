"""The in-memory broker's side of the broker interfaces (actors.runtime.broker): its delivered
messages, pull sources, publishers and KV buckets (see actors.runtime.memory_broker)."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nats.errors import MaxPayloadError, MsgAlreadyAckdError

from actors.runtime.broker import KvEntry, KvWrite, Publisher, Stored, kv_subject
from actors.runtime.nats_broker import kv_messages

if TYPE_CHECKING:
    from actors.runtime.memory_broker import MemoryBroker, MemoryConsumer, StoredMsg

__all__ = [
    "NO_ANSWER",
    "MemoryBucket",
    "MemoryMetadata",
    "MemoryMsg",
    "MemoryPending",
    "MemoryPublisher",
    "MemoryPull",
    "MemorySequence",
    "Outcome",
]


class _NoAnswer:
    def __repr__(self) -> str:
        return "NO_ANSWER"


#: The broker's answer to a store that it never answers (the waiter times out).
NO_ANSWER = _NoAnswer()

#: What the broker answers to one store: its sequence, its error, or nothing.
Outcome = int | Exception | _NoAnswer


@dataclass(frozen=True)
class MemorySequence:
    stream: int
    consumer: int


@dataclass(frozen=True)
class MemoryMetadata:
    sequence: MemorySequence
    num_delivered: int
    timestamp: datetime.datetime
    stream: str
    consumer: str


class MemoryMsg:
    """One delivery of a stored message to a consumer (a `Delivered`)."""

    def __init__(self, consumer: MemoryConsumer, stored: StoredMsg, deliveries: int, consumer_seq: int) -> None:
        self._consumer = consumer
        self.subject = stored.subject
        self.data = stored.data
        self.headers = dict(stored.headers) if stored.headers else None
        self.metadata = MemoryMetadata(MemorySequence(stored.seq, consumer_seq), deliveries, stored.stamp,
                                       consumer.stream.name, consumer.durable)
        self._settled = False

    def __repr__(self) -> str:
        md = self.metadata
        return f"<MemoryMsg {md.stream}#{md.sequence.stream} {self.subject} delivery {md.num_delivered}>"

    def _settle(self) -> None:
        if self._settled:
            raise MsgAlreadyAckdError(self)
        self._settled = True

    async def ack(self) -> None:
        self._settle()
        self._consumer.ack(self.metadata.sequence.stream)

    async def nak(self, delay: float | None = None) -> None:
        self._settle()
        self._consumer.nak(self.metadata.sequence.stream, delay)

    async def in_progress(self) -> None:
        self._consumer.in_progress(self.metadata.sequence.stream)


class MemoryPull:
    """A pull source on an in-memory consumer (a `PullSource`). Messages are delivered when asked for;
    with `prefetch`, a batch more is delivered into the buffer after each one handed out."""

    def __init__(self, broker: MemoryBroker, consumer: MemoryConsumer, batch: int, prefetch: bool = False) -> None:
        self._broker = broker
        self._consumer = consumer
        self._batch = batch
        self._prefetch = prefetch
        self._buffer: list[MemoryMsg] = []
        self._paused = False
        self._closed = False
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> list[MemoryMsg]:
        self._closed = True
        left, self._buffer = self._buffer, []
        return left

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False

    def buffered(self) -> int:
        return len(self._buffer)

    def buffered_msgs(self) -> list[MemoryMsg]:
        return list(self._buffer)

    def wake(self) -> None:
        self._broker.notify()

    def _fill(self) -> None:
        if not self._paused and not self._closed and len(self._buffer) < self._batch:
            self._buffer.extend(self._consumer.take(self._batch - len(self._buffer)))

    async def next_batch(self, max_n: int, timeout: float) -> list[MemoryMsg]:
        clock = asyncio.get_running_loop()
        deadline = clock.time() + timeout
        while True:
            if not self._buffer:
                self._fill()
            if self._buffer:
                out, self._buffer = self._buffer[:max_n], self._buffer[max_n:]
                if self._prefetch:
                    self._fill()
                return out
            left = deadline - clock.time()
            if left <= 0:
                return []
            due_in = left if self._paused else self._consumer.next_due_in()
            await self._broker.changed(max(min(left, due_in), 0.001))


class MemoryPending:
    """The broker's answers to stores submitted together (a `PendingAcks`)."""

    def __init__(self, outcomes: list[Outcome]) -> None:
        self._outcomes = outcomes

    def __len__(self) -> int:
        return len(self._outcomes)

    async def wait(self, timeout: float) -> list[int]:
        seqs: list[int] = []
        for outcome in self._outcomes:
            if isinstance(outcome, _NoAnswer):
                await asyncio.sleep(timeout)
                raise TimeoutError(f"no acknowledgement within {timeout}s")
            if isinstance(outcome, Exception):
                raise outcome
            seqs.append(outcome)
        return seqs


class MemoryPublisher:
    """Stores in the in-memory broker (a `Publisher`): each message is stored (or refused) when it
    is submitted; the answers are read with `MemoryPending.wait`."""

    def __init__(self, broker: MemoryBroker) -> None:
        self._broker = broker
        self.started = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def submit(self, messages: Sequence[Stored]) -> MemoryPending:
        outcomes: list[Outcome] = []
        for subject, payload, headers in messages:
            size = len(payload) + sum(len(k) + len(v) + 4 for k, v in (headers or {}).items())
            if size > self._broker.max_payload:
                raise MaxPayloadError()
            outcomes.append(self._broker.store(subject, payload, headers))
        return MemoryPending(outcomes)

    async def store(self, messages: Sequence[Stored], timeout: float) -> list[int]:
        return await (await self.submit(messages)).wait(timeout)


class MemoryBucket:
    """A KV bucket of the in-memory broker (a `KvBucket`): read from its stream, written through a
    publisher."""

    def __init__(self, broker: MemoryBroker, name: str, publisher: Publisher) -> None:
        self._broker = broker
        self.name = name
        self._publisher = publisher

    async def get(self, key: str) -> KvEntry:
        return self._broker.kv_get(self.name, key)

    async def put(self, writes: Sequence[KvWrite], timeout: float) -> list[int]:
        return await self._publisher.store(kv_messages(self.name, writes), timeout)

    async def delete(self, key: str) -> int:
        """Delete the key (a delete marker becomes its latest entry); returns the marker's revision."""
        (revision,) = await self._publisher.store([(kv_subject(self.name, key), b"", {"KV-Operation": "DEL"})], 5.0)
        return revision
