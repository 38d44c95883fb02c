"""The supervisor's own connection to NATS: bounded connect time, endless reconnects; one `NatsLink`
shared by the supervisor's state store, event publisher and breaker status."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext

__all__ = ["NatsLink", "connect"]

log = logging.getLogger(__name__)


async def connect(url: str, *, name: str, connect_timeout: float = 5.0) -> Client:
    async def _error(exc: Exception) -> None:
        log.debug("nats %s: %s", name, exc)

    return await asyncio.wait_for(nats.connect(url, name=name, connect_timeout=min(connect_timeout, 2.0),
                                               allow_reconnect=True, max_reconnect_attempts=-1,
                                               reconnect_time_wait=0.1, ping_interval=2, max_outstanding_pings=3,
                                               error_cb=_error), timeout=connect_timeout)


class NatsLink:
    """A connection made when first needed, to `url` (which a re-applied plan may change)."""

    def __init__(self, url: str, name: str = "supervisor") -> None:
        self.url = url
        self._name = name
        self._nc: Client | None = None
        self._connecting = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._nc is not None

    async def client(self) -> Client:
        async with self._connecting:
            if self._nc is None:
                self._nc = await connect(self.url, name=self._name)
            return self._nc

    async def jetstream(self) -> JetStreamContext:
        return (await self.client()).jetstream()

    async def retarget(self, url: str) -> None:
        """Point at another server: the current connection is closed; the next use connects anew."""
        if url != self.url:
            await self.close()
            self.url = url

    async def close(self, drain: bool = False) -> None:
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await (nc.drain() if drain else nc.close())
