"""Orders a gateway closed without the venue: the decision is stored before it is published.

A gateway closes an order itself only when it knows the venue never received it (trading halted before
it was sent, or every attempt found no venue subscribed until the hold ran out). A later process that
gets the same approval again cannot know that: for it, an earlier process may have sent the order. So
the decision is stored first (KV bucket GATEWAY, one key per order, kept as long as the streams keep
their messages); the later process finds it and publishes the same event again (the stream drops the
copy) instead of asking the venue to close the order a second time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from messages import Envelope, encode, order_received_id

__all__ = ["CLOSURES_BUCKET", "Closures"]

log = logging.getLogger(__name__)

T = TypeVar("T")

CLOSURES_BUCKET = "GATEWAY"
_RETRY_S = (0.1, 0.2, 0.5, 1.0)


class Closures:
    def __init__(self, js: JetStreamContext, venue: str) -> None:
        self._js = js
        self._venue = venue
        self._kv: KeyValue | None = None

    def _key(self, order_id: str) -> str:
        return f"{self._venue}.{order_received_id(order_id)}"  # order ids may hold characters keys may not

    async def record(self, envelope: Envelope) -> None:
        """Store the closing event; retried for as long as the broker does not take it."""
        await self._retrying("store", lambda kv: kv.put(self._key(envelope.correlation_id), encode(envelope)))

    async def find(self, order_id: str) -> Envelope | None:
        """The closing event stored for this order, if a gateway closed it."""

        async def _get(kv: KeyValue) -> Envelope | None:
            try:
                entry = await kv.get(self._key(order_id))
            except (KeyNotFoundError, NotFoundError):
                return None
            return Envelope.model_validate_json(entry.value) if entry.value else None

        return await self._retrying("read", _get)

    async def _retrying(self, what: str, op: Callable[[KeyValue], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            try:
                if self._kv is None:
                    self._kv = await self._js.key_value(CLOSURES_BUCKET)
                return await op(self._kv)
            except (KeyNotFoundError, NotFoundError):
                raise
            except Exception as exc:  # the broker is away or electing: it is not the order's fault
                delay = _RETRY_S[min(attempt, len(_RETRY_S) - 1)]
                attempt += 1
                log.warning("gateway %s: closure %s failed (%r); retrying in %.1fs", self._venue, what, exc, delay)
                await asyncio.sleep(delay)
