"""Circuit-breaker state in JetStream KV, so every gateway instance, the supervisor and the CLI see
one state per venue. Writes are compare-and-set on the key's revision."""

from __future__ import annotations

import json
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError

__all__ = ["BREAKERS_BUCKET", "BreakerConflict", "BreakerStore"]

BREAKERS_BUCKET = "BREAKERS"


class BreakerConflict(RuntimeError):
    """Someone else wrote the breaker since it was read: read again and retry."""


class BreakerStore:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    async def load(self, venue: str) -> tuple[dict[str, Any] | None, int]:
        """The stored state and its revision (0 when there is none yet)."""
        kv = await self._js.key_value(BREAKERS_BUCKET)
        try:
            entry = await kv.get(venue)
        except NotFoundError:
            return None, 0
        return json.loads(entry.value or b"{}"), int(entry.revision or 0)

    async def save(self, venue: str, state: dict[str, Any], revision: int) -> int:
        """Compare-and-set: write only if the stored revision is still `revision` (0: must not exist)."""
        kv = await self._js.key_value(BREAKERS_BUCKET)
        data = json.dumps(state).encode()
        try:
            if revision == 0:
                return int(await kv.create(venue, data))
            return int(await kv.update(venue, data, last=revision))
        except KeyWrongLastSequenceError as exc:
            raise BreakerConflict(f"breaker {venue} changed since revision {revision}") from exc
