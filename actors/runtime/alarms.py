"""Alarms: things an operator must look at, published as AlarmRaised on `supervision.alarm.<kind>`.

Raising one never blocks and never fails the caller: the event is published in the background (a
broker that is away loses it, the log line and the count stay), and every alarm is logged and counted
by kind for the metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import Counter
from typing import Literal

from nats.aio.client import Client

from messages import MSG_ID_HEADER, AlarmRaised, encode, subjects, wrap

__all__ = ["Alarms"]

log = logging.getLogger(__name__)

_PUBLISH_TIMEOUT_S = 2.0


class Alarms:
    """The alarms of one process (`source` names it: a child's name, a tool)."""

    def __init__(self, nc: Client | None, source: str) -> None:
        self._nc = nc
        self.source = source
        self.counts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()

    def raise_(self, kind: str, detail: str, order_id: str = "-",
               severity: Literal["warning", "critical"] = "warning") -> None:
        self.counts[kind] += 1
        log.warning("ALARM %s (%s) from %s: %s", kind, severity, self.source, detail)
        if self._nc is None:
            return
        event = AlarmRaised(order_id=order_id, source=self.source, kind=kind, detail=detail[:2000], severity=severity)
        envelope = wrap(event, event_id=uuid.uuid4())
        try:
            task = asyncio.get_running_loop().create_task(self._publish(kind, encode(envelope), str(envelope.event_id)))
        except RuntimeError:  # no running loop (a synchronous caller): counted and logged only
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, kind: str, data: bytes, event_id: str) -> None:
        assert self._nc is not None
        with contextlib.suppress(Exception):
            await self._nc.jetstream().publish(subjects.alarm(kind), data, headers={MSG_ID_HEADER: event_id},
                                               timeout=_PUBLISH_TIMEOUT_S)
