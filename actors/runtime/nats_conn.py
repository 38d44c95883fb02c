"""Connecting to NATS the same way everywhere: bounded connect time, endless reconnects."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client

__all__ = ["BrokerUnavailable", "connect", "connect_retrying"]

log = logging.getLogger(__name__)


class BrokerUnavailable(ConnectionError):
    """The NATS server could not be reached within the timeout."""


async def connect(
    url: str,
    *,
    name: str,
    connect_timeout: float = 5.0,
    on_reconnected: Callable[[], Awaitable[None]] | None = None,
    on_disconnected: Callable[[], Awaitable[None]] | None = None,
    reconnect_forever: bool = True,
) -> Client:
    async def _error(exc: Exception) -> None:
        log.debug("nats %s: %s", name, exc)

    async def _reconnected() -> None:
        log.info("nats %s reconnected", name)
        if on_reconnected is not None:
            await on_reconnected()

    async def _disconnected() -> None:
        log.info("nats %s disconnected", name)
        if on_disconnected is not None:
            await on_disconnected()

    try:
        return await asyncio.wait_for(nats.connect(
            url,
            name=name,
            connect_timeout=min(connect_timeout, 2.0),
            allow_reconnect=True,
            max_reconnect_attempts=-1 if reconnect_forever else 3,
            reconnect_time_wait=0.1,
            ping_interval=2,
            max_outstanding_pings=3,
            error_cb=_error,
            reconnected_cb=_reconnected,
            disconnected_cb=_disconnected,
        ), timeout=connect_timeout)
    except Exception as exc:  # nats raises several types (NoServersError, OSError, TimeoutError)
        raise BrokerUnavailable(f"cannot reach NATS at {url}: {exc or type(exc).__name__}") from exc


async def connect_retrying(url: str, *, name: str, on_reconnected: Callable[[], Awaitable[None]] | None = None,
                           on_disconnected: Callable[[], Awaitable[None]] | None = None,
                           retry_every: float = 0.2) -> Client:
    """Connect, waiting for the broker as long as it takes (a stage started during an outage waits
    for the broker instead of failing, which would count against its supervisor's intensity)."""
    while True:
        try:
            return await connect(url, name=name, connect_timeout=2.0, on_reconnected=on_reconnected,
                                 on_disconnected=on_disconnected)
        except BrokerUnavailable as exc:
            log.info("%s: %s; retrying", name, exc)
            await asyncio.sleep(retry_every)
