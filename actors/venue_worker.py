"""The venue simulator's Ray actor: a separate process with its own record of trades."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import ray

from actors.venue_sim import VenueSession
from actors.workers import WorkerBase
from cluster.nats_conn import connect_retrying

__all__ = ["VenueWorker"]

log = logging.getLogger(__name__)


@ray.remote(max_restarts=0, max_concurrency=64)
class VenueWorker(WorkerBase):
    """The venue simulator: a separate process with its own record of trades."""

    def __init__(self, cfg_json: str, name: str, venue: str) -> None:
        super().__init__(cfg_json, name)
        self.venue = venue
        self.session: VenueSession | None = None

    async def run(self) -> dict[str, Any]:
        nc = await connect_retrying(self.cfg.nats.url, name=self.name)
        try:
            self.session = VenueSession(nc, nc.jetstream(), self.venue)
            restored = await self.session.restore()
            log.info("venue %s restored %d reports from its drop copy", self.venue, restored)
            await self.session.serve()
            self._ready.set()
            await self._stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await nc.drain()
        return {"served": self.session.served}

    def stats(self) -> dict[str, Any]:
        return {"served": self.session.served if self.session else 0}
