"""Durable memory of applied inputs, per consumer (partition): idempotency past the broker's 2-minute
duplicate window.

A consumer's applied inputs are remembered by their stream sequence, in ranges of `RANGE_SPAN`
sequences: the APPLIED bucket's key `<durable>.r<n>` holds a bitmap of the sequences
`n * RANGE_SPAN ..` that were applied. A handled batch sets its bits with one write per range it
touches (usually one), after its outputs are stored and before its inputs are acknowledged; the
write is a compare-and-set on the key's revision, so a second writer (a replica that was presumed
dead) cannot undo bits, and a lost race is merged and written again. A redelivered message is
looked up by its sequence, which is the same on every delivery.

A message replayed from the dead-letter queue (`trade dlq replay`) is a new message with a new
sequence: it carries the original's sequence (`REPLAY_OF_HEADER`), which is looked up instead, and
once applied it is also remembered by its event id (`<durable>.<event_id>`), so a second replay of
the same letter is recognised too. Marks by event id were the only kind before ranges; they are
still read, so a log written by an earlier version keeps working.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import BadRequestError

from actors.runtime.broker import KvBucket, KvWrite, Publisher
from actors.runtime.nats_broker import NatsBucket

__all__ = [
    "APPLIED_BUCKET",
    "RANGE_SPAN",
    "REPLAY_HEADER",
    "REPLAY_OF_HEADER",
    "Applied",
    "AppliedLog",
    "RangeBits",
    "applied_key",
    "range_key",
]

APPLIED_BUCKET = "APPLIED"
#: Set by `trade dlq replay` on a republished message, so the loop checks the applied log for it.
REPLAY_HEADER = "Trade-Replay"
#: The replayed message's original stream sequence (set by `trade dlq replay`).
REPLAY_OF_HEADER = "Trade-Replay-Of"
#: Stream sequences per range key (a 512-byte bitmap).
RANGE_SPAN = 4096
#: Ranges kept in memory per consumer (a range is re-read from the bucket when it was forgotten).
_CACHED_RANGES = 64
#: Attempts at a range write that keeps losing compare-and-set races.
_WRITE_ATTEMPTS = 4
_REAFFIRM_TIMEOUT_S = 5.0


def applied_key(durable: str, event_id: str) -> str:
    return f"{durable}.{event_id}"


def range_key(durable: str, index: int) -> str:
    return f"{durable}.r{index}"


class RangeBits:
    """Which sequences of one range are applied (pure: a bitmap over RANGE_SPAN sequences)."""

    __slots__ = ("bits", "index")

    def __init__(self, index: int, bits: bytes | None = None) -> None:
        self.index = index
        self.bits = bytearray(RANGE_SPAN // 8)
        if bits:
            self.bits[:len(bits)] = bits[:RANGE_SPAN // 8]

    @staticmethod
    def index_of(seq: int) -> int:
        return seq // RANGE_SPAN

    def __contains__(self, seq: object) -> bool:
        if not isinstance(seq, int) or seq // RANGE_SPAN != self.index:
            return False
        offset = seq % RANGE_SPAN
        return bool(self.bits[offset >> 3] & (1 << (offset & 7)))

    def with_seqs(self, seqs: Iterable[int]) -> RangeBits:
        """A copy with these sequences (all of this range) set."""
        out = RangeBits(self.index, bytes(self.bits))
        for seq in seqs:
            if seq // RANGE_SPAN != self.index:
                raise ValueError(f"sequence {seq} is not in range {self.index}")
            offset = seq % RANGE_SPAN
            out.bits[offset >> 3] |= 1 << (offset & 7)
        return out


@dataclass(frozen=True)
class Applied:
    """One input as the applied log sees it."""

    event_id: str
    seq: int
    #: A dead letter replayed by `trade dlq replay` (remembered by event id as well).
    replayed: bool = False
    #: For a replayed dead letter: the original message's sequence, when the letter has it.
    replay_of: int | None = None


class AppliedLog:
    """The applied marks of one consumer (`durable`) in the bucket APPLIED.

    Built on a JetStream context and the publisher its writes go through (`AppliedLog(js, durable,
    publisher)`), or on any `KvBucket` (`AppliedLog(None, durable, bucket=...)`).
    """

    def __init__(self, js: JetStreamContext | None, durable: str, publisher: Publisher | None = None, *,
                 bucket: KvBucket | None = None) -> None:
        if bucket is None:
            if js is None or publisher is None:
                raise ValueError("an applied log needs a JetStream context and a publisher, or a bucket")
            bucket = NatsBucket(js, APPLIED_BUCKET, publisher)
        self._bucket = bucket
        self._durable = durable
        #: range index -> (bits, the key's revision in the bucket; 0 when it has none)
        self._ranges: OrderedDict[int, tuple[RangeBits, int]] = OrderedDict()

    async def applied(self, items: list[Applied]) -> set[str]:
        """The event ids of these inputs that this consumer already applied."""
        found: set[str] = set()
        unknown: list[Applied] = []
        reaffirm: list[str] = []
        for item in items:
            if await self._has(item.seq):
                found.add(item.event_id)
                if item.replayed:  # its event-id mark may have been lost with the batch's ack
                    reaffirm.append(item.event_id)
            elif item.replay_of is not None and await self._has(item.replay_of):
                found.add(item.event_id)
            else:
                unknown.append(item)
        if unknown:  # applied once as a replay, or marked by an earlier version: by event id
            found |= await self._by_event_id([i.event_id for i in unknown])
        if reaffirm:
            await self._bucket.put(self._event_marks(reaffirm), _REAFFIRM_TIMEOUT_S)
        return found

    async def _has(self, seq: int) -> bool:
        return seq in (await self._range(RangeBits.index_of(seq)))[0]

    async def mark(self, items: list[Applied], timeout: float) -> None:
        """Record the inputs as applied; raises when the broker does not confirm in time."""
        if not items:
            return
        by_range: dict[int, list[int]] = {}
        for item in items:
            by_range.setdefault(RangeBits.index_of(item.seq), []).append(item.seq)
        replayed = [i.event_id for i in items if i.replayed]
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                await self._write(by_range, replayed, timeout)
                return
            except BadRequestError:  # another writer moved a range on: re-read it, merge, write again
                if attempt == _WRITE_ATTEMPTS - 1:
                    raise
                for index in by_range:
                    self._ranges.pop(index, None)

    async def _write(self, by_range: dict[int, list[int]], replayed: list[str], timeout: float) -> None:
        updates: list[tuple[int, RangeBits]] = []
        writes: list[KvWrite] = []
        for index, seqs in by_range.items():
            current, revision = await self._range(index)
            updated = current.with_seqs(seqs)
            updates.append((index, updated))
            writes.append(KvWrite(range_key(self._durable, index), bytes(updated.bits), revision))
        writes += self._event_marks(replayed)
        revisions = await self._bucket.put(writes, timeout)
        for (index, updated), revision in zip(updates, revisions, strict=False):
            self._remember(index, updated, revision)

    def _event_marks(self, event_ids: list[str]) -> list[KvWrite]:
        return [KvWrite(applied_key(self._durable, eid), b"1") for eid in event_ids]

    async def _range(self, index: int) -> tuple[RangeBits, int]:
        cached = self._ranges.get(index)
        if cached is not None:
            self._ranges.move_to_end(index)
            return cached
        entry = await self._bucket.get(range_key(self._durable, index))  # never written: no bits, revision 0
        read = (RangeBits(index, entry.value), entry.revision)
        self._remember(index, *read)
        return read

    def _remember(self, index: int, bits: RangeBits, revision: int) -> None:
        self._ranges[index] = (bits, revision)
        self._ranges.move_to_end(index)
        while len(self._ranges) > _CACHED_RANGES:
            self._ranges.popitem(last=False)

    async def _by_event_id(self, event_ids: list[str]) -> set[str]:
        async def _one(eid: str) -> str | None:
            entry = await self._bucket.get(applied_key(self._durable, eid))
            return eid if entry.value is not None else None

        found = await asyncio.gather(*(_one(e) for e in event_ids))
        return {e for e in found if e is not None}
