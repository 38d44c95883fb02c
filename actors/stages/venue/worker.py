"""The venue simulator's Ray actor: a separate process with its own record of trades."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from actors.runtime.nats_conn import connect_retrying
from actors.runtime.waiting import first_of
from actors.stages.payload import ChildPayload
from actors.stages.venue.session import VenueDiverged, VenueSession
from actors.stages.venue.settings import VenueConfig, VenueMode
from actors.stages.worker_base import WorkerBase

__all__ = ["VenueWorker"]

log = logging.getLogger(__name__)


class VenueWorker(WorkerBase):
    """The venue simulator: a separate process with its own record of trades."""

    def __init__(self, payload: ChildPayload, name: str) -> None:
        super().__init__(payload, name)
        assert payload.venue is not None, "a venue worker runs one venue"
        self.venue = payload.venue
        self.vcfg = VenueConfig.model_validate(payload.settings)
        self.session: VenueSession | None = None

    async def _run(self) -> dict[str, Any]:
        """Serves until stopped. Raises VenueDiverged when a journal write failed or the connection to the
        broker broke: the supervisor then restarts the venue, which rebuilds itself from its journal."""
        async def _disconnected() -> None:  # a book's journal must have no gap: see SessionCore.connection_lost
            if self.session is not None and self.session.mode is VenueMode.BOOK:
                self.session.connection_lost()

        nc = await connect_retrying(self.payload.nats_url, name=self.name, on_disconnected=_disconnected)
        session: VenueSession | None = None
        try:
            session = self.session = VenueSession(nc, nc.jetstream(), self.venue, self.vcfg)
            restored = await session.restore()
            log.info("venue %s (%s mode) restored %d records", self.venue, session.mode, restored)
            await session.serve()
            self._ready.set()
            await first_of(self._stop, session.failed)
            if session.failure is not None:
                raise VenueDiverged(str(session.failure)) from session.failure
        finally:
            if session is not None:
                with contextlib.suppress(Exception):
                    await session.close(timeout=2.0)
            with contextlib.suppress(Exception):
                await nc.drain()
        return {"served": session.served}

    def stats(self) -> dict[str, Any]:
        return {"served": self.session.served if self.session else 0}
