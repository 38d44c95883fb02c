"""The broker interfaces (actors.runtime.broker) on a real NATS JetStream connection, with nats-py."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from actors.runtime.broker import EXPECTED_LAST_SUBJECT_SEQ, KvEntry, KvWrite, Publisher, Stored, kv_subject
from actors.runtime.publisher import AckedPublisher
from actors.runtime.pull import PullConsumer

__all__ = ["NatsBroker", "NatsBucket"]

#: What the broker takes when the connection has not said (nats-server's default).
_DEFAULT_MAX_PAYLOAD = 1024 * 1024


class NatsBucket:
    """A JetStream KV bucket: read with nats-py's KV API, written through a publisher (a KV write is a
    store to the bucket's stream, so many writes share one round trip)."""

    def __init__(self, js: JetStreamContext, name: str, publisher: Publisher) -> None:
        self._js = js
        self.name = name
        self._publisher = publisher
        self._kv: KeyValue | None = None
        self._lookup = asyncio.Lock()

    async def _handle(self) -> KeyValue:
        """The bucket handle, looked up once (each lookup is a round trip to the broker)."""
        if self._kv is None:
            async with self._lookup:  # concurrent first reads share one lookup
                if self._kv is None:
                    self._kv = await self._js.key_value(self.name)
        return self._kv

    async def get(self, key: str) -> KvEntry:
        kv = await self._handle()
        try:
            entry = await kv.get(key)
        except NotFoundError as exc:  # never written (0), or deleted: its delete marker is the revision
            marker = getattr(exc, "entry", None)
            return KvEntry(None, int(getattr(marker, "revision", 0) or 0))
        return KvEntry(entry.value, int(entry.revision or 0))

    async def put(self, writes: Sequence[KvWrite], timeout: float) -> list[int]:
        return await self._publisher.store(kv_messages(self.name, writes), timeout)


def kv_messages(bucket: str, writes: Sequence[KvWrite]) -> list[Stored]:
    """The stores that make these KV writes (a compare-and-set carries the expected revision)."""
    return [(kv_subject(bucket, w.key), w.value,
             None if w.expected_revision is None else {EXPECTED_LAST_SUBJECT_SEQ: str(w.expected_revision)})
            for w in writes]


class NatsBroker:
    """The broker a consumer loop uses in production: one nats-py connection and its JetStream context."""

    def __init__(self, nc: Client, js: JetStreamContext | None = None) -> None:
        self._nc = nc
        self._js = js if js is not None else nc.jetstream()

    @property
    def max_payload(self) -> int:
        return self._nc.max_payload or _DEFAULT_MAX_PAYLOAD

    def pull(self, stream: str, durable: str, batch: int) -> PullConsumer:
        return PullConsumer(self._nc, stream, durable, batch=batch)

    def publisher(self) -> AckedPublisher:
        return AckedPublisher(self._nc)

    def bucket(self, name: str, publisher: Publisher) -> NatsBucket:
        return NatsBucket(self._js, name, publisher)
