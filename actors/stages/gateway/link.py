"""The session to one venue, as the gateway sees it: a request with a timeout, behind the venue's
circuit breaker, with failures told apart by what they say about the venue's state.

- `VenueUnreachable`: nobody was subscribed to the session (NATS "no responders"): the request
  reached no venue, so nothing was done there.
- `VenueNoAnswer`: no answer within `call_timeout`. The venue may have executed the request anyway
  (a slow venue answers late; a stalled one drops it): the caller must not assume either.
- `VenueRefused`: the venue answered that it could not serve the request (its journal was
  unavailable, a malformed request). Not a statement about the order either.

Waiting on the venue (a call, a backoff, an open breaker) is the venue's time, not the gateway's:
`waiting` counts the callers doing it, so liveness checks do not take it for a hang.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from pydantic import ValidationError

from actors.runtime.broker_clock import BrokerClock
from actors.runtime.stage import Released, TransientError
from actors.stages.gateway.breaker import VenueBreaker
from actors.stages.gateway.settings import GatewaySettings
from messages import subjects
from messages.venue import SessionReply, SessionRequest

__all__ = ["VenueLink", "VenueNoAnswer", "VenueRefused", "VenueUnreachable"]


class VenueUnreachable(TransientError):
    """No venue is subscribed to the session: the request was not delivered."""


class VenueNoAnswer(TransientError):
    """No answer in time: the venue may or may not have executed the request."""


class VenueRefused(TransientError):
    """The venue answered, but could not serve the request."""


class VenueLink:
    """One venue's session: `send` one request, `allow` asks the breaker, `pause` backs off."""

    def __init__(self, nc: Client, venue: str, settings: GatewaySettings, breaker: VenueBreaker | None = None,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._nc = nc
        self.venue = venue
        self.settings = settings
        self._session = subjects.venue_session(venue)
        self._rng = rng or random.Random()
        self.clock = clock
        #: The broker's time, from the stamps of the messages the gateway handles (see BrokerClock).
        self.broker_clock = BrokerClock()
        self.breaker = breaker
        #: Requests sent and backoffs taken so far: evidence of progress while orders wait for the venue.
        self.activity = 0
        #: Callers waiting on the venue now (in a call, a backoff, or for the breaker).
        self.waiting = 0
        self._woken = asyncio.Event()
        #: The process is stopping: whoever waits on the venue lets its input go (see `check_released`).
        self.released = False

    def release(self) -> None:
        """The process is stopping: every caller waiting on the venue wakes and lets its input go, to be
        redelivered to the next process at once, instead of holding the stop up until the venue answers."""
        self.released = True
        self.wake()

    def check_released(self, what: str) -> None:
        """Raise Released once `release` was called."""
        if self.released:
            raise Released(f"gateway for {self.venue} stopping: {what} handed back to the next process")

    async def send(self, request: SessionRequest) -> SessionReply:
        """One request, its outcome recorded in the breaker (if any). Raises VenueUnreachable,
        VenueNoAnswer or VenueRefused."""
        self.activity += 1
        started = self.clock()
        try:
            raw = await self._nc.request(self._session, request.model_dump_json().encode(),
                                         timeout=self.settings.call_timeout)
        except NoRespondersError as exc:
            self._failed(started, "no responders")
            raise VenueUnreachable(f"venue {self.venue} is not connected to its session") from exc
        except (NatsTimeout, TimeoutError) as exc:
            self._failed(started, "timeout")
            raise VenueNoAnswer(f"venue {self.venue} did not answer within {self.settings.call_timeout}s") from exc
        try:
            reply = SessionReply.model_validate_json(raw.data)
        except ValidationError as exc:
            self._failed(started, "unreadable reply")
            raise VenueRefused(f"venue {self.venue} sent an unreadable reply") from exc
        if not reply.ok:
            self._failed(started, reply.error)
            raise VenueRefused(f"venue {self.venue}: {reply.error}")
        if self.breaker is not None:
            self.breaker.success(self.clock() - started)
        return reply

    def observe(self, stored_ns: int) -> None:
        """A message the broker stored at `stored_ns` (its clock) is handled now."""
        self.broker_clock.observe(stored_ns, int(self.clock() * 1e9))

    def age_s(self, stored_ns: int) -> float | None:
        """How long ago the broker stored a message, in the broker's clock (None: not known yet)."""
        return self.broker_clock.age_s(stored_ns, int(self.clock() * 1e9))

    def allow(self) -> bool:
        """May a request go to the venue now (always, with no breaker)?"""
        return self.breaker is None or self.breaker.allow()

    def breaker_wait(self) -> float:
        """Seconds to wait before asking the breaker again."""
        if self.breaker is None:
            return 0.0
        return min(max(self.breaker.wait_hint(), 0.02), 0.25)

    def backoff(self, delay: float) -> float:
        """The next retry delay after `delay` (exponential up to retry_max), with +-20% jitter applied."""
        return min(delay * 2, self.settings.retry_max) * self._rng.uniform(0.8, 1.2)

    async def pause(self, seconds: float, also: asyncio.Event | None = None) -> None:
        """Sleep `seconds`, or less when the link is woken (a reconnect) or `also` is set."""
        self.activity += 1
        waits = [asyncio.ensure_future(self._woken.wait())]
        if also is not None:
            waits.append(asyncio.ensure_future(also.wait()))
        try:
            await asyncio.wait(waits, timeout=max(0.0, seconds), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*waits, return_exceptions=True)

    def wake(self) -> None:
        """Every caller backing off tries again now (the connection came back: answers may have been lost)."""
        self._woken.set()
        self._woken = asyncio.Event()

    def _failed(self, started: float, reason: str) -> None:
        if self.breaker is not None:
            self.breaker.failure(self.clock() - started, reason)
