"""The gateway's side of its venue's circuit breaker: the pure state machine (supervision.breaker)
with the wall clock, persisted to the BREAKERS bucket on every transition, and following operator
overrides (`trade breaker open|close`) written there by others."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from nats.aio.client import Client

from messages import MSG_ID_HEADER, BreakerChanged, encode, subjects, wrap
from supervision.breaker import BreakerSettings, BreakerState, BreakerTransition, CircuitBreaker
from supervision.breaker_store import BreakerConflict, BreakerStore

__all__ = ["VenueBreaker"]

log = logging.getLogger(__name__)


class VenueBreaker:
    def __init__(self, nc: Client, venue: str, settings: BreakerSettings) -> None:
        self._nc = nc
        self._store = BreakerStore(nc.jetstream())
        self.venue = venue
        self.settings = settings
        self.breaker = CircuitBreaker(venue, settings, time.time())
        self._revision = 0
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.transitions: list[BreakerTransition] = []

    async def start(self) -> None:
        data, self._revision = await self._store.load(self.venue)
        if data is not None:
            self.breaker = CircuitBreaker.from_dict(data, self.settings)
            self.breaker.rebase(time.time())  # saved by a process whose clock may differ from ours
        self.breaker.add_listener(self._on_transition)
        self._tasks = [asyncio.create_task(self._persist(), name=f"breaker-{self.venue}-persist"),
                       asyncio.create_task(self._follow(), name=f"breaker-{self.venue}-follow")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # ---- the call protocol (wall clock: the state is shared across processes) ---------------------
    def allow(self) -> bool:
        return self.breaker.allow(time.time())

    def wait_hint(self) -> float:
        """Seconds until the breaker may let a call through (0 when it does now)."""
        if self.breaker.state is BreakerState.CLOSED:
            return 0.0
        until = self.breaker.open_until
        if until is None:
            return 0.1 if self.breaker.state is BreakerState.HALF_OPEN else 0.25  # half-open busy or forced
        return max(0.0, until - time.time())

    def success(self, duration: float) -> None:
        self.breaker.record_success(time.time(), duration)

    def failure(self, duration: float, reason: str) -> None:
        self.breaker.record_failure(time.time(), duration, reason)

    # ---- persistence ------------------------------------------------------------------------------
    def _on_transition(self, transition: BreakerTransition) -> None:
        self.transitions.append(transition)
        log.warning("breaker %s: %s -> %s (%s)", self.venue, transition.old, transition.new, transition.reason)
        self._dirty.set()
        event = BreakerChanged(path=f"root.gateway-{self.venue}", child=f"gateway-{self.venue}", venue=self.venue,
                               old=transition.old.value, new=transition.new.value, detail=transition.reason)
        envelope = wrap(event, event_id=uuid.uuid4())
        self._tasks.append(asyncio.create_task(self._publish(envelope)))

    async def _publish(self, envelope: Any) -> None:
        with contextlib.suppress(Exception):
            await self._nc.jetstream().publish(subjects.supervision(f"breaker.{self.venue}"), encode(envelope),
                                               headers={MSG_ID_HEADER: str(envelope.event_id)}, timeout=2.0)

    async def _persist(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                self._revision = await self._store.save(self.venue, self.breaker.to_dict(), self._revision)
            except BreakerConflict:
                await self._adopt_remote()
            except Exception as exc:  # broker away: try again shortly
                log.debug("breaker %s not saved: %r", self.venue, exc)
                await asyncio.sleep(0.5)
                self._dirty.set()

    async def _follow(self) -> None:
        """Pick up what operators write (forced open/close) by polling the key's revision."""
        while True:
            await asyncio.sleep(0.2)
            with contextlib.suppress(Exception):
                _, revision = await self._store.load(self.venue)
                if revision > self._revision:
                    await self._adopt_remote()

    async def _adopt_remote(self) -> None:
        data, revision = await self._store.load(self.venue)
        if data is None:
            return
        remote = CircuitBreaker.from_dict(data, self.settings)
        now = time.time()
        remote.rebase(now)
        if remote.forced and not self.breaker.forced:
            self.breaker.force_open(now, "operator")
        else:
            closed_by_operator = (remote.state is BreakerState.CLOSED and self.breaker.state is not BreakerState.CLOSED
                                  and remote.since > self.breaker.since)
            if (self.breaker.forced and not remote.forced) or closed_by_operator:
                self.breaker.force_close(now, "operator")
        self._revision = revision
        self._dirty.clear()
