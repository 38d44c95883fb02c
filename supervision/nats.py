"""The supervisor's own connection to NATS: bounded connect time, endless reconnects."""

from __future__ import annotations

import asyncio
import logging

import nats
from nats.aio.client import Client

__all__ = ["connect"]

log = logging.getLogger(__name__)


async def connect(url: str, *, name: str, connect_timeout: float = 5.0) -> Client:
    async def _error(exc: Exception) -> None:
        log.debug("nats %s: %s", name, exc)

    return await asyncio.wait_for(nats.connect(url, name=name, connect_timeout=min(connect_timeout, 2.0),
                                               allow_reconnect=True, max_reconnect_attempts=-1,
                                               reconnect_time_wait=0.1, ping_interval=2, max_outstanding_pings=3,
                                               error_cb=_error), timeout=connect_timeout)
