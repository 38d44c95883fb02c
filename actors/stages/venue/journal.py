"""The book-mode venue's input journal `venue.<V>.input`: writing it, and reading it back.

Writing: three stages, each in command order. Publish the journal entry; once the broker has
acknowledged it, publish the command's drop-copy entries (so the drop copy never holds a report its
journal lacks); once those are acknowledged, the command is done (its reply may go out, and a
snapshot that covers it may be stored). Any failed write fails the venue (`SessionCore.fail`): its
memory may no longer be what its journal says.

Reading back: after the snapshot (if any), every record must follow the one before it (n+1, n+2 ...).
A gap, a record out of order or a journal that starts after 1 with no snapshot to cover what came
before is `JournalBroken`: the venue refuses to start rather than rebuild a different book.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from actors.domain.book_venue import BookVenue, JournalRecord
from actors.runtime.streams import read_stream
from actors.stages.venue.core import ACK_TIMEOUT, SessionCore, VenueDiverged
from actors.stages.venue.snapshots import VenueSnapshot
from messages import MSG_ID_HEADER, subjects
from messages.venue import ExecReport

__all__ = ["DROPCOPY_STREAM", "JOURNAL_STREAM", "JournalBroken", "JournalWriter", "Pending", "Replayed",
           "repair_dropcopy", "replay_journal", "settle"]

log = logging.getLogger(__name__)

JOURNAL_STREAM = "VENUE_INPUT"
DROPCOPY_STREAM = "VENUE"


class JournalBroken(RuntimeError):
    """The journal after the snapshot is not the unbroken sequence of commands: the venue cannot
    rebuild its memory and must not start from anything else."""


@dataclass(eq=False)
class Pending:
    """One executed book command on its way to the journal and the drop copy."""

    n: int
    journal: bytes
    reports: tuple[ExecReport, ...]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    #: The journal record's stream sequence, once the broker stored it.
    journal_seq: int = 0
    #: The drop copy's stream sequence once this command's reports (and every earlier one's) are stored.
    dropcopy_seq: int = 0

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(exc)
            self.done.exception()  # retrieved: nobody may be waiting for it


class JournalWriter:
    """The write pipeline of one venue (see the module's docstring)."""

    def __init__(self, core: SessionCore) -> None:
        self._core = core
        self._journal_q: asyncio.Queue[Pending] = asyncio.Queue()
        self._dropcopy_q: asyncio.Queue[tuple[Pending, asyncio.Future[Any]]] = asyncio.Queue()
        self._commit_q: asyncio.Queue[tuple[Pending, list[asyncio.Future[int]]]] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []
        self._halted = asyncio.Event()
        #: The drop copy's stream sequence after the last report of a done command.
        self.dropcopy_seq = 0

    def start(self) -> None:
        venue = self._core.venue
        self._workers = [asyncio.create_task(coro, name=f"venue-{venue}-{coro.__name__}") for coro in
                         (self._write_journal(), self._write_dropcopy(), self._commit())]

    def put(self, item: Pending) -> None:
        self._journal_q.put_nowait(item)

    async def stop(self, timeout: float) -> None:
        """Stop the writers (the caller let the writes in flight settle first)."""
        self._halted.set()
        workers, self._workers = self._workers, []
        for task in workers:
            task.cancel()
        if workers:
            await asyncio.wait(workers, timeout=timeout)

    async def _write_journal(self) -> None:
        subject = subjects.venue_input(self._core.venue)
        while not self._halted.is_set():
            item = await self._journal_q.get()
            if self._core.failure is None and not self._core.connected:
                # Never buffered for a reconnect: an earlier record may be lost with the broken connection,
                # and this one stored after it would leave a gap the journal cannot be replayed across.
                self._core.connection_lost()
            if self._core.failure is not None:
                item.fail(self._core.failure)
                continue
            try:
                ack = await self._core.js.publish_async(
                    subject, item.journal, headers={MSG_ID_HEADER: f"{self._core.venue}:in:{item.n}"})
            except Exception as exc:
                self._core.fail(exc, f"journal write {item.n}")
                item.fail(exc)
                continue
            self._dropcopy_q.put_nowait((item, ack))

    async def _write_dropcopy(self) -> None:
        while not self._halted.is_set():
            item, ack = await self._dropcopy_q.get()
            if self._core.failure is not None:
                ack.cancel()
                item.fail(self._core.failure)
                continue
            try:
                stored = await asyncio.wait_for(ack, ACK_TIMEOUT)
                if getattr(stored, "duplicate", False):
                    # Another entry already has this number: this command is not on record.
                    raise VenueDiverged(f"journal entry {self._core.venue}:in:{item.n} was already stored")
                item.journal_seq = int(stored.seq)
            except Exception as exc:
                self._core.fail(exc, f"journal write {item.n}")
                item.fail(exc)
                continue
            try:
                futures = [await self._core.publish_report(r) for r in item.reports]
            except Exception as exc:
                self._core.fail(exc, f"drop copy of journal entry {item.n}")
                item.fail(exc)
                continue
            self._commit_q.put_nowait((item, futures))

    async def _commit(self) -> None:
        while not self._halted.is_set():
            item, futures = await self._commit_q.get()
            if self._core.failure is not None:
                for future in futures:
                    future.cancel()
                item.fail(self._core.failure)
                continue
            try:
                seqs = await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT) if futures else []
            except Exception as exc:
                self._core.fail(exc, f"drop copy of journal entry {item.n}")
                item.fail(exc)
                continue
            self.dropcopy_seq = max([self.dropcopy_seq, *seqs])
            item.dropcopy_seq = self.dropcopy_seq
            if not item.done.done():
                item.done.set_result(None)


@dataclass(frozen=True)
class Replayed:
    """What a replay did: the last journal number now applied, the records read, the client reports
    they produced (to compare with the drop copy)."""

    n: int
    records: int
    produced: list[ExecReport]


async def replay_journal(core: SessionCore, book: BookVenue, after: VenueSnapshot | None) -> Replayed:
    """Apply to `book` (restored from `after`, or fresh) every journal record after the snapshot.
    Raises JournalBroken unless they are exactly records n+1, n+2, ... of the snapshot's n (1, 2, ...
    without a snapshot)."""
    expected = after.n + 1 if after is not None else 1
    start_seq = after.journal_seq + 1 if after is not None else None
    if after is not None:
        last_seq = (await core.js.stream_info(JOURNAL_STREAM)).state.last_seq
        if last_seq < after.journal_seq:
            raise JournalBroken(f"venue {core.venue}: the journal stream ends at sequence {last_seq}, before the "
                                f"snapshot's record {after.n} (sequence {after.journal_seq}): was {JOURNAL_STREAM} "
                                "recreated? The venue cannot rebuild its memory")
    journal = await read_stream(core.js, JOURNAL_STREAM, subjects.venue_input(core.venue), start_seq=start_seq)
    produced: list[ExecReport] = []
    for msg in journal:
        record = JournalRecord.model_validate_json(msg.data)
        if record.n != expected:
            covered = f"the snapshot covers records up to {after.n}" if after is not None else "there is no snapshot"
            raise JournalBroken(f"venue {core.venue}: journal record {record.n} (stream sequence {msg.seq}) where "
                                f"record {expected} was expected ({covered}): records are missing or out of "
                                "order; the venue cannot rebuild its memory")
        produced.extend(book.apply(record.command).reports)
        expected += 1
    return Replayed(n=expected - 1, records=len(journal), produced=produced)


async def repair_dropcopy(core: SessionCore, produced: list[ExecReport], after_seq: int) -> tuple[int, int]:
    """Publish every report of `produced` the drop copy lacks (a crash between journal and drop copy),
    looking only at drop-copy records after stream sequence `after_seq`. Returns (reports republished,
    the drop copy's stream sequence after the last of this venue's records)."""
    stored = await read_stream(core.js, DROPCOPY_STREAM, subjects.venue_dropcopy(core.venue),
                               start_seq=after_seq + 1)
    last = max(after_seq, stored[-1].seq if stored else 0)
    present = {m.headers.get(MSG_ID_HEADER) or "" for m in stored}
    missing = [r for r in produced if core.report_id(r) not in present]
    if missing:
        log.warning("venue %s: %d report(s) of the journal were missing from the drop copy; republishing",
                    core.venue, len(missing))
        futures: list[Awaitable[int]] = [await core.publish_report(r) for r in missing]
        seqs = await asyncio.wait_for(asyncio.gather(*futures), ACK_TIMEOUT + len(missing) * 0.01)
        last = max([last, *seqs])
    return len(missing), last


async def settle(item: Pending | None, timeout: float) -> None:
    """Wait (up to `timeout`) for a command's writes to settle, whatever their outcome."""
    if item is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(item.done), timeout)
