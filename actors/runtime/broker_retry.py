"""Retrying what failed on the broker's side, for as long as the broker needs.

A publish that is not acknowledged (not connected, no responders while a stream elects a leader, a
timeout, a stream that is full), an applied-log read or write that fails: none of these is the input's
fault, so none may use up the input's deliveries. The caller holds the input (in progress at the
broker) and retries here with backoff until the broker takes the operation. An operator hears of it:
an alarm once it has failed for `alarm_after` seconds. Only stopping the loop ends the retries
(`Stopping`), leaving the input unsettled for whoever consumes next.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from actors.runtime.alarms import Alarms

__all__ = ["BrokerRetry", "Stopping"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_BACKOFF_S = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class Stopping(Exception):
    """The loop is stopping while the broker still refuses: the inputs stay unsettled."""


class BrokerRetry:
    def __init__(self, stage: str, alarms: Alarms, stopping: asyncio.Event, alarm_after: float = 5.0,
                 give_up_when_stopping_after: float = 5.0, on_retry: Callable[[], None] | None = None) -> None:
        self._stage = stage
        self._alarms = alarms
        self._stopping = stopping
        self._alarm_after = alarm_after
        self._stop_grace = give_up_when_stopping_after
        self._on_retry = on_retry
        #: Operations retried so far (each failed attempt counts once).
        self.retries = 0

    async def run(self, what: str, op: Callable[[], Awaitable[T]]) -> T:
        """`op()`'s result, once the broker took it. Raises `Stopping` when the loop stops meanwhile."""
        first_failure: float | None = None
        alarmed = False
        attempt = 0
        clock = asyncio.get_running_loop()  # the clock its sleeps are measured in (monotonic)
        while True:
            try:
                return await op()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                now = clock.time()
                if first_failure is None:
                    first_failure = now
                    log.warning("%s: %s failed on the broker (%r); retrying", self._stage, what, exc)
                self.retries += 1
                if self._on_retry is not None:
                    self._on_retry()
                if not alarmed and now - first_failure >= self._alarm_after:
                    alarmed = True
                    self._alarms.raise_("broker_refuses", f"{self._stage}: {what} has failed for "
                                        f"{now - first_failure:.0f}s: {exc!r}; inputs are held and retried", "-",
                                        "critical")
                if self._stopping.is_set() and now - first_failure >= self._stop_grace:
                    raise Stopping(f"{what}: {exc!r}") from exc
            delay = _BACKOFF_S[min(attempt, len(_BACKOFF_S) - 1)]
            attempt += 1
            await asyncio.sleep(delay)
