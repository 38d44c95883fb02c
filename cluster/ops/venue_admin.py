"""Run-time fault injection into a running venue simulator (core NATS request/reply, JSON).

    await set_venue_faults(nc, "SIM", reject_rate=0.2, latency=0.05)   # -> the venue's settings
    await set_venue_faults(nc, "SIM")                                   # -> read them
    await set_venue_faults(nc, "SIM", clear=True)                       # -> back to no faults

Settings (see actors.domain.venue_faults): latency (seconds before each session reply), reject_rate
(0..1 of new orders rejected), disconnect (the venue leaves its session subject), stall (the
venue stops answering). They live in the venue process: a restarted venue starts without faults.
"""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from actors.domain.venue_faults import FaultSettings, InvalidFaultSettings
from cluster.client.errors import TradingError
from messages import subjects

__all__ = ["VenueAdminUnavailable", "VenueFaultsRefused", "set_venue_faults"]


class VenueAdminUnavailable(TradingError):
    """No venue simulator answered on `admin.venue.<venue>` (not running, or not this venue)."""


class VenueFaultsRefused(TradingError, ValueError):
    """The fault settings are invalid (unknown key, value out of range); nothing was changed."""


async def set_venue_faults(nc: Client, venue: str, *, timeout: float = 2.0, **settings: Any) -> dict[str, Any]:
    """Change (or, with no settings, read) a venue's fault injection; returns its current settings."""
    try:
        FaultSettings().updated(settings)  # refuse bad input before anything is sent
        subject = subjects.venue_admin(venue)
    except (InvalidFaultSettings, ValueError) as exc:
        raise VenueFaultsRefused(str(exc)) from None
    try:
        msg = await nc.request(subject, json.dumps(settings).encode(), timeout=timeout)
    except (NoRespondersError, NatsTimeoutError, TimeoutError) as exc:
        raise VenueAdminUnavailable(f"venue {venue} did not answer on {subject} "
                                    f"({type(exc).__name__}): is its simulator running?") from exc
    answer: dict[str, Any] = json.loads(msg.data)
    if "error" in answer:
        raise VenueFaultsRefused(f"venue {venue} refused {settings}: {answer['error']}")
    return answer
