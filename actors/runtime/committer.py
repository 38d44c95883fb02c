"""The tail of the consumer loop: a handled batch's outputs stored, its inputs marked applied, then acked.

Pipelined group commit: the loop publishes a batch's outputs and goes on; the committer, behind it,
waits for the broker to acknowledge them, marks the inputs applied (one applied-log write for every
batch finished while the previous commit was on the wire) and acks them. The order of steps for each
input is fixed (outputs stored, then marked, then acked), so a crash at any step redelivers the input,
and its republished outputs carry the same ids (the stream drops the copies).

A step the broker does not take is retried (`BrokerRetry`) with the inputs held in progress, never
nak'ed: a broker outage, a leader election or a full stream uses up no input's deliveries. Outputs not
acknowledged are published again (same ids) before they are waited for again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from actors.runtime.applied import Applied, AppliedLog
from actors.runtime.broker import Delivered, PendingAcks, Publisher, Stored
from actors.runtime.broker_retry import BrokerRetry, Stopping
from actors.runtime.faults import FaultPoints
from actors.runtime.held import Held

__all__ = ["Commit", "Committer"]

log = logging.getLogger(__name__)

#: Seconds to wait for the broker to acknowledge one batch's outputs (or one applied-log write).
ACK_TIMEOUT_S = 5.0


@dataclass
class Commit:
    """A handled batch waiting to be stored, marked applied and acknowledged."""

    #: Inputs that caused outputs: only these need a durable mark.
    effective: list[Applied]
    to_ack: list[Delivered]
    #: Event ids of the inputs handled (remembered once committed).
    applied: list[str]
    batch_size: int
    outputs: list[Stored] = field(default_factory=list)
    #: The outputs as published by the loop; their acknowledgements are awaited here.
    submitted: PendingAcks | None = None


class Committer:
    def __init__(self, publisher: Publisher, applied_log: AppliedLog, held: Held, retry: BrokerRetry,
                 faults: FaultPoints, on_committed: Callable[[Commit], None], ack_all: bool = False) -> None:
        self._publisher = publisher
        self._applied_log = applied_log
        self._held = held
        self._retry = retry
        self._faults = faults
        self._on_committed = on_committed
        self._ack_all = ack_all
        self._queue: list[Commit] = []
        self._queued_msgs = 0
        self._task: asyncio.Task[None] | None = None
        #: Seconds per step, summed (where a batch's time goes), and commits done.
        self.publish_s = 0.0
        self.mark_s = 0.0
        self.ack_s = 0.0
        self.commits = 0

    @property
    def backlog(self) -> int:
        """Inputs handled and waiting for their commit."""
        return self._queued_msgs

    async def submit(self, commit: Commit) -> None:
        """Publish the batch's outputs now and queue its commit (done in line for AckPolicy.ALL)."""
        if commit.outputs:
            try:
                commit.submitted = await self._publisher.submit(commit.outputs)
            except Exception as exc:  # not connected: the commit publishes them again
                log.info("outputs not sent yet: %r", exc)
        if self._ack_all:
            await self._commit([commit])
            return
        self._queue.append(commit)
        self._queued_msgs += len(commit.to_ack)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run())

    async def drained(self) -> None:
        """Wait until every queued commit is done (or given up because the loop stops)."""
        while self._task is not None and not self._task.done():
            await asyncio.wait([self._task])

    async def _run(self) -> None:
        while self._queue:
            commits, self._queue = self._queue, []
            self._queued_msgs = 0
            try:
                await self._commit(commits)
            except Stopping as exc:  # left unsettled: redelivered to whoever consumes next
                left, self._queue = [*commits, *self._queue], []
                self._queued_msgs = 0
                log.warning("stopping with %d batch(es) uncommitted: %s", len(left), exc)
                self._held.release(m for c in left for m in c.to_ack)

    async def _commit(self, commits: list[Commit]) -> None:
        t0 = time.perf_counter()
        for commit in commits:
            await self._store(commit)
        self.publish_s += time.perf_counter() - t0
        to_ack = [m for c in commits for m in c.to_ack]
        await self._faults.reach("before_mark")
        t_mark = time.perf_counter()
        effective = [a for c in commits for a in c.effective]
        if effective:
            await self._retry.run("applied-log write", lambda: self._applied_log.mark(effective, ACK_TIMEOUT_S))
        await self._faults.reach("before_ack")
        t_ack = time.perf_counter()
        if self._ack_all:
            # AckPolicy.ALL: acking the last message acks the whole batch. If any of it is to be retried,
            # ack none (an ack would cover the retried one too): the handler folds idempotently.
            (commit,) = commits
            to_ack = ([max(to_ack, key=lambda m: m.metadata.sequence.stream)]
                      if len(to_ack) == commit.batch_size else [])
        for msg in to_ack:
            with contextlib.suppress(Exception):  # a lost ack: redelivered, found applied or harmless
                await msg.ack()
        self._held.release(m for c in commits for m in c.to_ack)
        self.commits += 1
        self.mark_s += t_ack - t_mark
        self.ack_s += time.perf_counter() - t_ack
        for commit in commits:
            self._on_committed(commit)

    async def _store(self, commit: Commit) -> None:
        """The batch's outputs acknowledged by the broker: the first publish, else publish them again."""
        if not commit.outputs:
            return
        first = commit.submitted
        commit.submitted = None

        async def _stored() -> None:
            nonlocal first
            if first is not None:
                submitted, first = first, None
            else:
                submitted = await self._publisher.submit(commit.outputs)
            await submitted.wait(ACK_TIMEOUT_S)

        await self._retry.run(f"storing {len(commit.outputs)} output(s)", _stored)
