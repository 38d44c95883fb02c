"""The one consumer loop every stage shares: fetch batch -> decode -> dedupe -> handle -> publish -> ack.

At-least-once in, idempotent out: outputs carry deterministic `Nats-Msg-Id`s, so a message that is
redelivered after a crash republishes the same ids and the stream drops the copies. A message is
acknowledged only after everything it caused is stored (see actors.runtime.committer).

What counts toward giving an input up is only its handler's own failure: a TransientError is retried
with backoff (the loop counts the attempts itself), anything else is poison. At `max_deliver` attempts,
or on poison, the input is dead-lettered with the reason. Broker-side failures (a publish not
acknowledged, the applied log unreadable) are retried with the input held in progress, for as long as
the broker needs, and never use up a delivery. One input's bad output (larger than the broker takes)
dead-letters that input alone; the rest of its batch goes on.

The broker gives a message up after `max_deliver + DELIVERY_SLACK` deliveries (a process that keeps
dying on it, a broker that keeps redelivering it); its MAX_DELIVERIES advisory is the last line (see
actors.runtime.advisories).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client
from nats.js import JetStreamContext

from actors.runtime.alarms import Alarms
from actors.runtime.applied import APPLIED_BUCKET, REPLAY_HEADER, REPLAY_OF_HEADER, Applied, AppliedLog
from actors.runtime.broker import Broker, Delivered, Stored
from actors.runtime.broker_retry import BrokerRetry, Stopping
from actors.runtime.committer import Commit, Committer
from actors.runtime.dead_letter import dead_letter, fits
from actors.runtime.faults import FaultPoints
from actors.runtime.held import Held
from actors.runtime.loop_stats import LoopStats, RecentIds
from actors.runtime.nats_broker import NatsBroker
from actors.runtime.settings import DeliveryConfig
from actors.runtime.stage import RESUME, Decides, Directed, InputMeta, Outgoing, Released, StageHandler, TransientError
from messages import MSG_ID_HEADER, DecodeError, Envelope, decode, encode

__all__ = ["DELIVERY_SLACK", "ConsumerLoop", "LoopStats", "RecentIds"]

log = logging.getLogger(__name__)

#: Deliveries the broker allows beyond the handler attempts the loop allows (see the module doc).
DELIVERY_SLACK = 16


@dataclass
class _Work:
    msg: Delivered
    envelope: Envelope
    event: Any  # an Event, or what the loop's decoder makes of its stream (e.g. a venue report)

    @property
    def meta(self) -> InputMeta:
        md = self.msg.metadata
        stamp = md.timestamp
        return InputMeta(stored_ns=int(stamp.timestamp() * 1e9) if stamp is not None else 0,
                         deliveries=max(1, md.num_delivered or 1))


def _applied(w: _Work) -> Applied:
    """The applied log's view of an input: its event id, its stream sequence, and for a replayed dead
    letter the original's sequence."""
    headers = w.msg.headers or {}
    replayed = REPLAY_HEADER in headers
    original = headers.get(REPLAY_OF_HEADER, "") if replayed else ""
    return Applied(str(w.envelope.event_id), w.msg.metadata.sequence.stream, replayed,
                   int(original) if original.isdigit() else None)


def _msg_id_matches(msg: Delivered, envelope: Envelope) -> bool:
    """The wire contract: Nats-Msg-Id = event_id (a dead letter's replay: `<event id>:replay:<letter>`)."""
    msg_id = (msg.headers or {}).get(MSG_ID_HEADER, "")
    event_id = str(envelope.event_id)
    return msg_id == event_id or (REPLAY_HEADER in (msg.headers or {}) and msg_id.startswith(f"{event_id}:replay:"))


def _stored(outgoing: list[Outgoing]) -> list[Stored]:
    return [(o.subject, encode(o.envelope), {MSG_ID_HEADER: str(o.envelope.event_id)}) for o in outgoing]


class ConsumerLoop:
    """Consumes one durable consumer with one handler until stopped.

    The broker is `broker` when given (e.g. an in-memory one: `nc` and `js` may then be None), else
    the NATS connection `nc` with its JetStream context `js`.
    """

    def __init__(self, nc: Client | None, js: JetStreamContext | None, stream: str, durable: str,
                 handler: StageHandler, delivery: DeliveryConfig, seen: RecentIds | None = None,
                 faults: FaultPoints | None = None, gate: Callable[[], float] | None = None,
                 decoder: Callable[[Delivered], tuple[Envelope, Any]] | None = None,
                 decider: Decides | None = None, ack_all: bool = False, alarms: Alarms | None = None, *,
                 broker: Broker | None = None) -> None:
        if broker is None:
            if nc is None:
                raise ValueError("a consumer loop needs a NATS connection or a broker")
            broker = NatsBroker(nc, js)
        self._broker = broker
        self._ack_all = ack_all
        self._decider = decider
        self._decode = decoder or (lambda msg: decode(msg.data))
        #: Inputs are envelopes (not another format a decoder reads): each must carry its event id as its
        #: Nats-Msg-Id, by which the stream recognises a copy for as long as it keeps the original.
        self._envelopes = decoder is None
        self._handler = handler
        self._delivery = delivery
        self._seen = seen if seen is not None else RecentIds()
        self._faults = faults or FaultPoints()
        self._gate = gate
        self._pull = broker.pull(stream, durable, delivery.batch)
        self._publisher = broker.publisher()
        self._applied = AppliedLog(None, durable, bucket=broker.bucket(APPLIED_BUCKET, self._publisher))
        self._stopping = asyncio.Event()
        self._alarms = alarms or Alarms(None, durable)
        self.stats = LoopStats()
        self._retry = BrokerRetry(f"{handler.stage} {durable}", self._alarms, self._stopping,
                                  on_retry=self._broker_failed)
        self._held = Held(delivery.ack_wait / 3, self._pull.buffered_msgs)
        self._committer = Committer(self._publisher, self._applied, self._held, self._retry, self._faults,
                                    self._on_committed, ack_all)
        self.durable = durable
        self.in_flight = 0
        self.handling = False  # inside the handler (not waiting on the broker)
        #: Handler attempts per stream sequence of the inputs retried (bounded): only these count.
        self._attempts: OrderedDict[int, int] = OrderedDict()
        #: A batch a decider's directive interrupted: neither published nor acked; handed back on exit.
        self._interrupted: list[Delivered] = []
        #: Past this many inputs waiting for their commit, the loop waits for it before taking more
        #: (well inside max_ack_pending, where the broker would stop delivering).
        self._commit_backlog = max(1, min(delivery.max_ack_pending // 2, 4 * delivery.batch))

    async def run(self) -> None:
        await self._publisher.start()
        await self._pull.start()
        self._held.start()
        try:
            while not self._stopping.is_set():
                if self._gate is not None and (wait := self._gate()) > 0:
                    self._pull.pause()  # what is buffered stays here, in progress (not redelivered, not counted)
                    self.stats.progress += 1
                    await asyncio.sleep(min(wait, 0.1))
                    continue
                self._pull.resume()
                msgs = await self._pull.next_batch(self._delivery.batch, timeout=0.5)
                if msgs:
                    self.in_flight = len(msgs)
                    self.stats.progress += 1
                    try:
                        await self._process(msgs)
                    except Stopping:
                        break
                    except Directed:
                        # The run ends: earlier batches' commits still finish, but a broker that refuses
                        # them holds the directive up only for BrokerRetry's grace, not until it recovers.
                        self._stopping.set()
                        raise
                    finally:
                        self.in_flight = 0
                    self.stats.progress += 1
                    self.stats.last_progress = time.monotonic()
        finally:
            await self._committer.drained()
            left = await self._pull.stop()
            await self._held.stop()
            # Hand buffered, unstarted work (and a batch a directive interrupted) back to the stream at
            # once, after the pull stopped, so it goes to whoever consumes next and not back to this loop.
            for msg in [*self._interrupted, *left]:
                with contextlib.suppress(Exception):
                    await msg.nak()
            with contextlib.suppress(Exception):
                await self._publisher.stop()

    def wake(self) -> None:
        self._pull.wake()

    def pending(self) -> int:
        """Work waiting on this process's own handler: the batch being handled and what is buffered
        behind it. Waiting on the broker (publish, ack) or on something outside the process that the
        handler says it waits for (a venue) is not counted: an outage elsewhere is not a hang here."""
        if not self.handling or getattr(self._handler, "external_waits", 0):
            return 0
        return self.in_flight + self._pull.buffered()

    async def stop(self) -> None:
        """Stop fetching; the batch in hand is finished and acknowledged first."""
        self._stopping.set()

    async def _process(self, msgs: Sequence[Delivered]) -> None:
        fresh = [m for m in msgs if m.metadata.sequence.stream not in self._held]  # a second delivery: left
        self._held.add(fresh)
        commit = Commit([], [], [], len(msgs))
        work, suspects = self._triage(commit, fresh)
        if suspects:
            done = await self._retry.run("applied-log read",
                                         lambda: self._applied.applied([_applied(w) for w in suspects]))
            for item in [w for w in work if str(w.envelope.event_id) in done]:
                work.remove(item)
                commit.to_ack.append(item.msg)
                self.stats.duplicates_skipped += 1

        t0 = time.perf_counter()
        results = await self._handle_all(work)
        self.stats.handle_s += time.perf_counter() - t0
        if self._ack_all and any(isinstance(r, Released) for r in results):
            await self._hand_back(fresh)  # one ack would cover what is handed back: none of the batch is kept
            return
        for item, result in zip(work, results, strict=True):
            if isinstance(result, Released):
                await self._hand_back([item.msg])
                continue
            if self._ack_all and isinstance(result, TransientError):
                result = await self._retry_in_line(item, result)
            if isinstance(result, BaseException):
                try:
                    await self._failed(commit, item, result)
                except Directed:
                    self._interrupted = fresh  # nothing of the batch was published or acked
                    self._held.release(fresh)
                    raise
                continue
            self._settled(item.msg)
            outputs = _stored(result)
            if not all(fits(self._broker, o) for o in outputs):
                self._dead_letter(commit, item.msg, "output_too_large", "an output is larger than the broker takes "
                                  f"({max(len(o[1]) for o in outputs)} bytes)", item.envelope.correlation_id)
                continue
            commit.outputs.extend(outputs)
            commit.to_ack.append(item.msg)
            commit.applied.append(str(item.envelope.event_id))
            if outputs:
                commit.effective.append(_applied(item))

        await self._faults.reach("before_publish")
        self.stats.batches += 1
        await self._committer.submit(commit)
        if self._committer.backlog > self._commit_backlog:
            await self._committer.drained()

    def _triage(self, commit: Commit, fresh: list[Delivered]) -> tuple[list[_Work], list[_Work]]:
        """The inputs to handle, and those of them that an earlier process may have applied (redelivered
        or replayed). The undecodable and the msg-id mismatches are dead-lettered into `commit`, and the
        event ids seen before are acked in it."""
        work: list[_Work] = []
        suspects: list[_Work] = []
        for msg in fresh:
            try:
                envelope, event = self._decode(msg)
            except DecodeError as exc:
                self._dead_letter(commit, msg, exc.reason, exc.error)
                continue
            if self._envelopes and not _msg_id_matches(msg, envelope):
                self._dead_letter(commit, msg, "msg_id_mismatch", f"header {MSG_ID_HEADER} is "
                                  f"{(msg.headers or {}).get(MSG_ID_HEADER)!r}, not the event id {envelope.event_id}: "
                                  "the streams recognise a copy of an event by it", envelope.correlation_id)
                continue
            if str(envelope.event_id) in self._seen:
                self.stats.duplicates_skipped += 1
                commit.to_ack.append(msg)
                continue
            item = _Work(msg, envelope, event)
            if msg.metadata.num_delivered > 1 or (msg.headers and REPLAY_HEADER in msg.headers):
                suspects.append(item)
            work.append(item)
        return work, suspects

    def _on_committed(self, commit: Commit) -> None:
        for event_id in commit.applied:
            self._seen.add(event_id)
        self.stats.handled += len(commit.applied)
        self.stats.published += len(commit.outputs)
        self.stats.commits = self._committer.commits
        self.stats.publish_s = self._committer.publish_s
        self.stats.mark_s = self._committer.mark_s
        self.stats.ack_s = self._committer.ack_s

    def _broker_failed(self) -> None:
        self.stats.publish_failures += 1
        self.stats.progress += 1  # waiting on the broker is not a hang of this process

    async def _handle_all(self, work: list[_Work]) -> list[list[Outgoing] | BaseException]:
        if not work:
            return []
        self.handling = True
        try:
            await self._faults.reach("during_handle")
            if self._handler.concurrent and len(work) > 1:
                return list(await asyncio.gather(*(self._handle_one(w) for w in work), return_exceptions=True))
            results: list[list[Outgoing] | BaseException] = []
            for w in work:
                try:
                    results.append(await self._handle_one(w))
                except Exception as exc:
                    results.append(exc)
            return results
        finally:
            self.handling = False

    async def _handle_one(self, w: _Work) -> list[Outgoing]:
        self._faults.maybe_raise()  # an injected handler error (fault tests); disarmed: one attribute check
        return await self._handler.handle(w.envelope, w.event, w.meta)

    async def _retry_in_line(self, item: _Work, exc: TransientError) -> list[Outgoing] | BaseException:
        """AckPolicy.ALL: an input nak'ed for a later retry would be acked by the next batch's ack, and
        never come back; so a transient failure is retried here, with backoff, before anything after it
        is acked (up to max_deliver attempts, then it goes the way of any failure that keeps failing)."""
        seq = item.msg.metadata.sequence.stream
        failure: BaseException = exc
        while self._attempts.get(seq, 0) + 1 < self._delivery.max_deliver:
            attempts = self._attempts[seq] = self._attempts.get(seq, 0) + 1
            self.stats.retried += 1
            await asyncio.sleep(self._backoff(attempts))
            try:
                return await self._handle_one(item)
            except Exception as again:
                failure = again
                if not isinstance(again, TransientError):
                    return again
        return failure

    async def _failed(self, commit: Commit, item: _Work, exc: BaseException) -> None:
        """Retry a transient failure with backoff; dead-letter poison, or a transient failure that keeps
        failing. A decider may instead say restart, stop or escalate: that ends the loop (nothing of the
        batch is acked; it is redelivered to whoever consumes next)."""
        directive = str(self._decider.decide(exc)) if self._decider is not None else RESUME
        if directive != RESUME:
            log.warning("%s: %s for %r", self._handler.stage, directive, exc)
            raise Directed(directive, exc)
        seq = item.msg.metadata.sequence.stream
        attempts = self._attempts.pop(seq, 0) + 1
        transient = isinstance(exc, TransientError)
        if transient and attempts < self._delivery.max_deliver:
            self._attempts[seq] = attempts
            while len(self._attempts) > 100_000:
                self._attempts.popitem(last=False)
            self.stats.retried += 1
            self._held.release([item.msg])
            with contextlib.suppress(Exception):
                await item.msg.nak(delay=self._backoff(attempts))
            return
        reason = "max_deliveries" if transient else "handler_error"
        log.warning("%s: dead-lettering %s (%s): %r", self._handler.stage, item.envelope.event_id, reason, exc)
        self._dead_letter(commit, item.msg, reason, f"{type(exc).__name__}: {exc}", item.envelope.correlation_id,
                          attempts)

    async def _hand_back(self, msgs: Sequence[Delivered]) -> None:
        """Inputs a handler released unfinished (its process is stopping): redelivered at once to whoever
        consumes next, with no attempt counted."""
        self._held.release(msgs)
        self.stats.released += len(msgs)
        for msg in msgs:
            with contextlib.suppress(Exception):
                await msg.nak()

    def _settled(self, msg: Delivered) -> None:
        self._attempts.pop(msg.metadata.sequence.stream, None)

    def _dead_letter(self, commit: Commit, msg: Delivered, reason: str, error: str, order_id: str = "-",
                     attempts: int | None = None) -> None:
        """The input is settled by its dead letter (stored with the batch's outputs, then acked)."""
        self._settled(msg)
        subject, envelope = dead_letter(self._handler.stage, msg, reason, error, order_id, attempts,
                                        self._broker.max_payload)
        commit.outputs.extend(_stored([Outgoing(subject, envelope)]))
        commit.to_ack.append(msg)
        self.stats.dead_lettered += 1

    def _backoff(self, attempts: int) -> float:
        steps = self._delivery.backoff or (0.1,)
        if attempts <= len(steps):
            return steps[attempts - 1]
        return min(steps[-1] * 2 ** (attempts - len(steps)), self._delivery.ack_wait)
