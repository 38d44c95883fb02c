"""Durable memory of applied inputs, per consumer (partition): idempotency past the broker's 2-minute
duplicate window. A marker `<durable>.<event_id>` is stored in the APPLIED bucket after a message's
outputs are stored and before it is acknowledged; a redelivered or replayed message whose marker
exists is acknowledged without a second effect."""

from __future__ import annotations

import asyncio

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from actors.publisher import AckedPublisher

__all__ = ["APPLIED_BUCKET", "REPLAY_HEADER", "AppliedLog", "applied_key"]

APPLIED_BUCKET = "APPLIED"
#: Set by `trade dlq replay` on a republished message, so the loop checks the applied log for it.
REPLAY_HEADER = "Trade-Replay"


def applied_key(durable: str, event_id: str) -> str:
    return f"{durable}.{event_id}"


class AppliedLog:
    def __init__(self, js: JetStreamContext, durable: str, publisher: AckedPublisher) -> None:
        self._js = js
        self._publisher = publisher
        self._durable = durable
        self._subject = f"$KV.{APPLIED_BUCKET}."

    async def applied(self, event_ids: list[str]) -> set[str]:
        """Which of these event ids this consumer already applied (looked up concurrently)."""
        if not event_ids:
            return set()
        kv = await self._js.key_value(APPLIED_BUCKET)

        async def _one(eid: str) -> str | None:
            try:
                await kv.get(applied_key(self._durable, eid))
                return eid
            except NotFoundError:
                return None

        found = await asyncio.gather(*(_one(e) for e in event_ids))
        return {e for e in found if e is not None}

    async def mark(self, event_ids: list[str], timeout: float) -> None:
        """Record the ids as applied; raises when the broker does not confirm in time."""
        await self._publisher.store(((self._subject + applied_key(self._durable, eid), b"1", None)
                                     for eid in event_ids), timeout)
