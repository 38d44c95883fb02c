"""The one consumer loop every stage shares: fetch batch -> decode -> dedupe -> handle -> publish -> ack.

At-least-once in, idempotent out: outputs carry deterministic `Nats-Msg-Id`s, so a message that is
redelivered after a crash republishes the same ids and the stream drops the copies. A message is
acknowledged only after everything it caused is stored.

Pipelined group commit: once a batch's outputs are published, the loop takes the next batch. One
commit task behind it waits for the broker to acknowledge the outputs, marks the inputs applied and
acks them, for every batch finished while the previous commit was on the wire. The broker's round
trips are then off the order path, and under load one applied-log write covers several batches.
The order of steps for each message is unchanged (outputs stored, then marked, then acknowledged),
so every crash window is as before; a batch whose outputs are not stored is nak'ed. A consumer with
AckPolicy.ALL commits each batch in line (its ack would cover a batch not yet marked).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from actors.applied import REPLAY_HEADER, REPLAY_OF_HEADER, Applied, AppliedLog
from actors.dead_letter import dead_letter
from actors.faults import FaultPoints
from actors.publisher import AckedPublisher, Submitted
from actors.pull import PullConsumer
from actors.stage import Directed, Outgoing, StageHandler, TransientError
from cluster.config import DeliveryConfig
from messages import MSG_ID_HEADER, DecodeError, Envelope, decode, encode
from supervision.decider import Decider, Directive

__all__ = ["ConsumerLoop", "LoopStats", "RecentIds"]

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0


class RecentIds:
    """A bounded set of recently applied event ids (oldest forgotten first)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: str) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)


@dataclass
class LoopStats:
    handled: int = 0
    published: int = 0
    duplicates_skipped: int = 0
    dead_lettered: int = 0
    retried: int = 0
    publish_failures: int = 0
    batches: int = 0
    #: Applied-log writes with their acks (one covers every batch finished while the last was on the wire).
    commits: int = 0
    #: Seconds spent per step, summed over batches (where a batch's time goes).
    handle_s: float = 0.0
    publish_s: float = 0.0
    mark_s: float = 0.0
    ack_s: float = 0.0
    #: Bumped by everything the loop does (a fetch, a handled message, a retry): liveness evidence.
    progress: int = 0
    last_progress: float = field(default_factory=time.monotonic)


@dataclass
class _Commit:
    """A finished batch waiting to be marked applied and acknowledged."""

    effective: list[Applied]
    to_ack: list[Msg]
    applied: list[str]
    batch_size: int
    #: The batch's outputs, published; their acknowledgements are awaited by the commit.
    outputs: Submitted | None = None


@dataclass
class _Work:
    msg: Msg
    envelope: Envelope
    event: Any  # an Event, or what the loop's decoder makes of its stream (e.g. a venue report)


def _applied(w: _Work) -> Applied:
    """The applied log's view of an input: its event id, its stream sequence, and for a replayed dead
    letter the original's sequence."""
    headers = w.msg.headers or {}
    replayed = REPLAY_HEADER in headers
    original = headers.get(REPLAY_OF_HEADER, "") if replayed else ""
    return Applied(str(w.envelope.event_id), w.msg.metadata.sequence.stream, replayed,
                   int(original) if original.isdigit() else None)


class ConsumerLoop:
    """Consumes one durable consumer with one handler until stopped."""

    def __init__(self, nc: Client, js: JetStreamContext, stream: str, durable: str, handler: StageHandler,
                 delivery: DeliveryConfig, seen: RecentIds | None = None, faults: FaultPoints | None = None,
                 gate: Callable[[], float] | None = None,
                 decoder: Callable[[Msg], tuple[Envelope, Any]] | None = None,
                 decider: Decider | None = None, ack_all: bool = False) -> None:
        self._nc = nc
        self._ack_all = ack_all
        self._decider = decider
        self._decode = decoder or (lambda msg: decode(msg.data))
        self._js = js
        self._handler = handler
        self._delivery = delivery
        self._seen = seen if seen is not None else RecentIds()
        self._faults = faults or FaultPoints()
        self._gate = gate
        self._last_hold_tick = 0.0
        self._pull = PullConsumer(nc, stream, durable, batch=delivery.batch)
        self._publisher = AckedPublisher(nc)
        self._applied = AppliedLog(js, durable, self._publisher)
        self._stopping = asyncio.Event()
        self.stats = LoopStats()
        self.durable = durable
        self.in_flight = 0
        self.handling = False  # inside the handler (not waiting on the broker)
        #: A batch a decider's directive interrupted: neither published nor acked; handed back on exit.
        self._interrupted: list[Msg] = []
        #: Batches whose outputs are stored, waiting for the commit task to mark and acknowledge them.
        self._uncommitted: list[_Commit] = []
        self._uncommitted_msgs = 0
        self._committer: asyncio.Task[None] | None = None
        #: Past this many messages waiting for their commit, the loop waits for it before taking more
        #: (well inside max_ack_pending, where the broker would stop delivering).
        self._commit_backlog = max(1, min(delivery.max_ack_pending // 2, 4 * delivery.batch))

    async def run(self) -> None:
        await self._publisher.start()
        await self._pull.start()
        try:
            while not self._stopping.is_set():
                if self._gate is not None and (wait := self._gate()) > 0:
                    await self._hold(wait)
                    continue
                self._pull.resume()
                msgs = await self._pull.next_batch(self._delivery.batch, timeout=0.5)
                if msgs:
                    self.in_flight = len(msgs)
                    self.stats.progress += 1
                    try:
                        await self._process(msgs)
                    finally:
                        self.in_flight = 0
                    self.stats.progress += 1
                    self.stats.last_progress = time.monotonic()
        finally:
            await self._committed()
            left = await self._pull.stop()
            # Hand buffered, unstarted work (and a batch a directive interrupted) back to the stream at
            # once, after the pull stopped, so it goes to whoever consumes next and not back to this loop.
            for msg in [*self._interrupted, *left]:
                with contextlib.suppress(Exception):
                    await msg.nak()
            with contextlib.suppress(Exception):
                await self._publisher.stop()

    async def _hold(self, wait: float) -> None:
        """The gate is shut (e.g. the venue's breaker is open): take nothing new; what is already
        buffered stays here, marked in progress, so the broker neither redelivers nor counts it."""
        self._pull.pause()
        self.stats.progress += 1
        now = time.monotonic()
        if now - self._last_hold_tick >= max(0.05, self._delivery.ack_wait / 3):
            self._last_hold_tick = now
            for msg in self._pull.buffered_msgs():
                with contextlib.suppress(Exception):
                    await msg.in_progress()
        await asyncio.sleep(min(wait, 0.1))

    def wake(self) -> None:
        self._pull.wake()

    def pending(self) -> int:
        """Work waiting on this process's own handler: the batch being handled and what is buffered
        behind it. Waiting on the broker (publish, ack) is not counted: a broker outage is not a hang."""
        return self.in_flight + self._pull.buffered() if self.handling else 0

    async def stop(self) -> None:
        """Stop fetching; the batch in hand is finished and acknowledged first."""
        self._stopping.set()

    async def _process(self, msgs: list[Msg]) -> None:
        work: list[_Work] = []
        outgoing: list[Outgoing] = []
        to_ack: list[Msg] = []
        suspects: list[_Work] = []  # redelivered or replayed: may have been applied by an earlier process
        for msg in msgs:
            try:
                envelope, event = self._decode(msg)
            except DecodeError as exc:
                outgoing.append(Outgoing(*dead_letter(self._handler.stage, msg, exc.reason, exc.error)))
                to_ack.append(msg)
                self.stats.dead_lettered += 1
                continue
            if str(envelope.event_id) in self._seen:
                self.stats.duplicates_skipped += 1
                to_ack.append(msg)
                continue
            item = _Work(msg, envelope, event)
            if msg.metadata.num_delivered > 1 or (msg.headers and REPLAY_HEADER in msg.headers):
                suspects.append(item)
            work.append(item)

        if suspects:
            try:
                done = await self._applied.applied([_applied(w) for w in suspects])
            except Exception as exc:  # cannot tell: leave the batch for redelivery rather than guess
                log.warning("%s: applied-log lookup failed: %r", self._handler.stage, exc)
                await self._nak_all(msgs)
                return
            for item in [w for w in work if str(w.envelope.event_id) in done]:
                work.remove(item)
                to_ack.append(item.msg)
                self.stats.duplicates_skipped += 1

        t0 = time.perf_counter()
        results = await self._handle_with_progress(work)
        self.stats.handle_s += time.perf_counter() - t0
        applied: list[str] = []
        effective: list[Applied] = []  # applied inputs that caused outputs: only these need a durable mark
        for item, result in zip(work, results, strict=True):
            if isinstance(result, BaseException):
                try:
                    settled = await self._failed(item, result, outgoing)
                except Directed:
                    self._interrupted = msgs  # nothing of the batch was published or acked
                    raise
                if settled:
                    to_ack.append(item.msg)
                continue
            outgoing.extend(result)
            to_ack.append(item.msg)
            applied.append(str(item.envelope.event_id))
            if result:
                effective.append(_applied(item))

        await self._finish(msgs, outgoing, effective, to_ack, applied)

    async def _finish(self, msgs: list[Msg], outgoing: list[Outgoing], effective: list[Applied], to_ack: list[Msg],
                      applied: list[str]) -> None:
        """A handled batch's tail: publish its outputs and go on; the commit (behind the loop) waits
        for their acknowledgements, marks the inputs applied and acks them."""
        await self._faults.reach("before_publish")
        outputs = None
        if outgoing:
            try:
                outputs = await self._publisher.submit(
                    (o.subject, encode(o.envelope), {MSG_ID_HEADER: str(o.envelope.event_id)}) for o in outgoing)
            except Exception as exc:  # not connected: nothing is acknowledged, the batch is redelivered
                self._publish_failed(exc)
                await self._nak_all(to_ack)
                return
        self.stats.batches += 1
        commit = _Commit(effective, to_ack, applied, len(msgs), outputs)
        if self._ack_all:
            await self._commit([commit])
            return
        self._uncommitted.append(commit)
        self._uncommitted_msgs += len(to_ack)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_uncommitted(), name=f"commit-{self.durable}")
        if self._uncommitted_msgs > self._commit_backlog:
            await self._committed()

    async def _commit_uncommitted(self) -> None:
        while self._uncommitted:
            commits, self._uncommitted = self._uncommitted, []
            self._uncommitted_msgs = 0
            await self._commit(commits)

    async def _committed(self) -> None:
        """Wait until every finished batch is marked and acknowledged (or nak'ed)."""
        while self._committer is not None and not self._committer.done():
            await asyncio.wait([self._committer])

    async def _commit(self, commits: list[_Commit]) -> None:
        """Once a batch's outputs are acknowledged by the broker, mark its inputs applied (one
        applied-log write for all the batches), then ack them. A batch whose outputs were not
        stored is nak'ed: redelivered and republished with the same ids."""
        deadline = time.monotonic() + PUBLISH_TIMEOUT_S
        t_publish = time.perf_counter()
        stored: list[_Commit] = []
        for commit in commits:
            if commit.outputs is not None:
                try:
                    await commit.outputs.wait(max(0.01, deadline - time.monotonic()))
                except Exception as exc:
                    self._publish_failed(exc)
                    await self._nak_all(commit.to_ack)
                    continue
                self.stats.published += len(commit.outputs)
            stored.append(commit)
        self.stats.publish_s += time.perf_counter() - t_publish
        if not stored:
            return
        commits = stored
        to_ack = [m for c in commits for m in c.to_ack]
        await self._faults.reach("before_mark")
        t_mark = time.perf_counter()
        if not await self._mark_applied([a for c in commits for a in c.effective]):
            await self._nak_all(to_ack)
            return
        await self._faults.reach("before_ack")
        t_ack = time.perf_counter()
        if self._ack_all:
            # AckPolicy.ALL: acking the last message acks the whole batch. If any of it is to be retried,
            # ack none (an ack would cover the retried one too): the handler folds idempotently.
            (commit,) = commits
            to_ack = ([max(to_ack, key=lambda m: m.metadata.sequence.stream)]
                      if len(to_ack) == commit.batch_size else [])
        for msg in to_ack:
            with contextlib.suppress(Exception):
                await msg.ack()
        for commit in commits:
            for event_id in commit.applied:
                self._seen.add(event_id)
            self.stats.handled += len(commit.applied)
        self.stats.commits += 1
        self.stats.mark_s += t_ack - t_mark
        self.stats.ack_s += time.perf_counter() - t_ack

    async def _nak_all(self, msgs: list[Msg]) -> None:
        for msg in msgs:
            with contextlib.suppress(Exception):
                await msg.nak(delay=self._backoff(msg))

    async def _mark_applied(self, items: list[Applied]) -> bool:
        try:
            await self._applied.mark(items, PUBLISH_TIMEOUT_S)
            return True
        except Exception as exc:
            self.stats.publish_failures += 1
            log.warning("%s: applied-log write failed, batch will be redelivered: %r", self._handler.stage, exc)
            return False

    async def _handle_with_progress(self, work: list[_Work]) -> list[list[Outgoing] | BaseException]:
        """Handle the batch; while it runs, tell the broker that it and the messages buffered behind it are
        in progress, so none of them is redelivered to another consumer meanwhile."""
        if not work:
            return []
        interval = max(0.05, self._delivery.ack_wait / 3)
        loop = asyncio.get_running_loop()
        sending: list[asyncio.Task[None]] = []

        async def _in_progress() -> None:
            # The batch in hand and what is buffered behind it: neither is redelivered meanwhile.
            for msg in [w.msg for w in work] + self._pull.buffered_msgs():
                with contextlib.suppress(Exception):
                    await msg.in_progress()

        def _tick() -> None:
            nonlocal timer
            sending[:] = [t for t in sending if not t.done()] + [loop.create_task(_in_progress())]
            timer = loop.call_later(interval, _tick)

        # A timer, not a task: most batches finish long before it fires, and it costs less to cancel.
        timer = loop.call_later(interval, _tick)
        self.handling = True
        try:
            await self._faults.reach("during_handle")
            return await self._handle_all(work)
        finally:
            self.handling = False
            timer.cancel()
            for task in sending:
                task.cancel()

    async def _handle_all(self, work: list[_Work]) -> list[list[Outgoing] | BaseException]:
        if not work:
            return []
        if self._handler.concurrent and len(work) > 1:
            return list(await asyncio.gather(*(self._handle_one(w) for w in work), return_exceptions=True))
        results: list[list[Outgoing] | BaseException] = []
        for w in work:
            try:
                results.append(await self._handle_one(w))
            except Exception as exc:
                results.append(exc)
        return results

    async def _handle_one(self, w: _Work) -> list[Outgoing]:
        self._faults.maybe_raise()  # an injected handler error (fault tests); disarmed: one attribute check
        return await self._handler.handle(w.envelope, w.event)

    async def _failed(self, item: _Work, exc: BaseException, outgoing: list[Outgoing]) -> bool:
        """Retry a transient failure with backoff; dead-letter poison. True when the msg is settled.
        A decider may instead say restart, stop or escalate: that ends the loop (nothing of the batch
        is acked; it is redelivered to whoever consumes next)."""
        directive = self._decider.decide(exc) if self._decider is not None else Directive.RESUME
        if directive is not Directive.RESUME:
            log.warning("%s: %s for %r", self._handler.stage, directive, exc)
            raise Directed(directive.value, exc)
        deliveries = item.msg.metadata.num_delivered
        transient = isinstance(exc, TransientError)
        if transient and deliveries < self._delivery.max_deliver:
            self.stats.retried += 1
            with contextlib.suppress(Exception):
                await item.msg.nak(delay=self._backoff(item.msg))
            return False
        reason = "max_deliveries" if transient else "handler_error"
        log.warning("%s: dead-lettering %s (%s): %r", self._handler.stage, item.envelope.event_id, reason, exc)
        outgoing.append(Outgoing(*dead_letter(self._handler.stage, item.msg, reason,
                                              f"{type(exc).__name__}: {exc}", item.envelope.correlation_id)))
        self.stats.dead_lettered += 1
        return True

    def _backoff(self, msg: Msg) -> float:
        steps = self._delivery.backoff or (0.1,)
        n = max(1, msg.metadata.num_delivered)
        if n <= len(steps):
            return steps[n - 1]
        return min(steps[-1] * 2 ** (n - len(steps)), self._delivery.ack_wait)

    def _publish_failed(self, exc: BaseException) -> None:
        self.stats.publish_failures += 1
        log.warning("%s: publish failed, batch will be redelivered: %r", self._handler.stage, exc)
