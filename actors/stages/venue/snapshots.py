"""The venue's snapshots: its whole state after one journal record, kept in the JetStream object
store `VENUE_SNAPSHOTS`, and when to take the next one.

A snapshot holds the state (`BookVenue.snapshot`, or the fill_all venue's memory), the journal
record `n` it covers with that record's stream sequence, and the drop copy's stream sequence at that
point (every report of a command up to `n` is at or before it, every later one after it). A restarted
venue loads it, replays only the journal after it and compares only the drop copy after it, so its
restart time does not grow with the journal. Only the latest snapshot of each venue is kept (the
object is replaced), compressed (zlib) JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import zlib
from dataclasses import dataclass
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

__all__ = ["STORE_TIMEOUT", "VENUE_SNAPSHOTS_BUCKET", "SnapshotSchedule", "SnapshotStore", "VenueSnapshot",
           "encode_state"]

log = logging.getLogger(__name__)

VENUE_SNAPSHOTS_BUCKET = "VENUE_SNAPSHOTS"

#: Seconds a snapshot's load or store may take before it counts as failed.
STORE_TIMEOUT = 30.0


@dataclass(frozen=True)
class VenueSnapshot:
    """The venue's state after journal record `n` (stream sequence `journal_seq`); `dropcopy_seq` is
    the drop copy's stream sequence at that point. fill_all venues have no journal: n = journal_seq = 0."""

    n: int
    journal_seq: int
    dropcopy_seq: int
    state: dict[str, Any]

    def encode(self) -> bytes:
        """Uncompressed JSON (`SnapshotStore.save` compresses it)."""
        return self.frame(self.n, self.journal_seq, self.dropcopy_seq, encode_state(self.state))

    @staticmethod
    def frame(n: int, journal_seq: int, dropcopy_seq: int, state: bytes) -> bytes:
        """What `encode` gives, around a state already encoded (`encode_state`): a venue serializes its
        state right after a command, and learns the stream sequences only once the command is stored."""
        return b'{"n":%d,"journal_seq":%d,"dropcopy_seq":%d,"state":%s}' % (n, journal_seq, dropcopy_seq, state)

    @classmethod
    def decode(cls, data: bytes) -> VenueSnapshot:
        """From what `encode` wrote, compressed or not."""
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)
        raw = json.loads(data)
        return cls(n=int(raw["n"]), journal_seq=int(raw["journal_seq"]), dropcopy_seq=int(raw["dropcopy_seq"]),
                   state=dict(raw["state"]))


def encode_state(state: dict[str, Any]) -> bytes:
    """A venue's state as compact JSON."""
    return json.dumps(state, separators=(",", ":")).encode()


class SnapshotStore:
    """One venue's snapshot object (`name`) in the bucket. A missing bucket (a topology created before
    snapshots existed) means no snapshots: loads find none, stores are skipped with a warning."""

    def __init__(self, js: JetStreamContext, name: str, bucket: str = VENUE_SNAPSHOTS_BUCKET) -> None:
        self._js = js
        self.name = name
        self.bucket = bucket
        self._store: ObjectStore | None = None
        self._warned = False

    async def _open(self) -> ObjectStore | None:
        if self._store is None:
            try:
                self._store = await self._js.object_store(self.bucket)
            except BucketNotFoundError:
                if not self._warned:
                    log.warning("object store bucket %s does not exist (run the topology): snapshots of %s are "
                                "off, its journal is not trimmed", self.bucket, self.name)
                    self._warned = True
                return None
        return self._store

    async def load(self) -> VenueSnapshot | None:
        """The stored snapshot, or None when there is none. Any other failure raises."""
        store = await self._open()
        if store is None:
            return None
        try:
            result = await asyncio.wait_for(store.get(self.name), STORE_TIMEOUT)
        except ObjectNotFoundError:
            return None
        return VenueSnapshot.decode(result.data or b"")

    async def save(self, encoded: bytes) -> int | None:
        """Store an encoded snapshot (compressed in a thread: zlib lets the event loop run). Returns the
        bytes stored, or None when there is no bucket. Raises when the store fails."""
        store = await self._open()
        if store is None:
            return None
        packed = await asyncio.to_thread(zlib.compress, encoded, 1)
        await asyncio.wait_for(store.put(self.name, packed), STORE_TIMEOUT)
        return len(packed)


class SnapshotSchedule:
    """When the next snapshot is due, after record `n` at monotonic time `now`: `every` records after
    the last one, or `interval` seconds after it if anything changed, or at once after `force()` (end of
    day). One snapshot at a time; one that failed is retried on the same schedule, not at once."""

    def __init__(self, every: int, interval: float, covered: int = 0, now: float = 0.0) -> None:
        self.every = every
        self.interval = interval
        #: The record the last stored (or restored) snapshot covers.
        self.covered = covered
        self.busy = False
        self._taken = covered
        self._taken_at = now
        self._forced = False

    def force(self) -> None:
        """Take one at the next chance (even if one is being stored now: after it)."""
        self._forced = True

    def due(self, n: int, now: float) -> bool:
        if self.busy or n <= self._taken:
            return False
        return self._forced or n - self._taken >= self.every or now - self._taken_at >= self.interval

    def taking(self, n: int, now: float) -> None:
        """A snapshot of the state after record `n` was just serialized."""
        self.busy = True
        self._taken = n
        self._taken_at = now
        self._forced = False

    def finished(self, n: int, stored: bool) -> None:
        self.busy = False
        if stored:
            self.covered = max(self.covered, n)
