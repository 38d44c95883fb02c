"""Supervision events onto `supervision.<tree path>` (the SUPERVISION stream), in the order they were
made, each retried with its own message id while the broker is away (the stream drops a copy)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from messages import MSG_ID_HEADER, SupervisionEvent, encode, subjects, wrap
from supervision.nats import NatsLink

__all__ = ["EventPublisher"]

log = logging.getLogger(__name__)


class EventPublisher:
    def __init__(self, link: NatsLink, capacity: int = 10_000, retry_every: float = 0.5) -> None:
        self._link = link
        self._queue: asyncio.Queue[tuple[str, bytes, str, str]] = asyncio.Queue(maxsize=capacity)
        self._retry_every = retry_every
        self._task: asyncio.Task[None] | None = None

    def publish(self, event: SupervisionEvent) -> None:
        """Queue an event; it is published after those queued before it."""
        envelope = wrap(event, event_id=uuid.uuid4())
        if self._queue.full():
            log.error("supervision event queue full; dropping %s for %s", envelope.type, event.child)
            return
        self._queue.put_nowait((subjects.supervision(event.path), encode(envelope), str(envelope.event_id),
                                envelope.type))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="supervision-events")

    async def _run(self) -> None:
        while True:
            subject, data, msg_id, kind = await self._queue.get()
            while True:
                try:
                    js = await self._link.jetstream()
                    await js.publish(subject, data, timeout=2.0, headers={MSG_ID_HEADER: msg_id})
                    self._queue.task_done()
                    break
                except Exception as exc:  # the broker is away: the same id again is deduplicated
                    log.warning("supervision event %s not yet published: %r", kind, exc)
                    await asyncio.sleep(self._retry_every)

    async def flush(self, timeout: float = 5.0) -> None:
        """Wait (at most `timeout`) until every queued event is published."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
