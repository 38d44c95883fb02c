"""A durable consumer of the in-memory broker (actors.runtime.memory_broker): what it delivered and
waits to hear of, redelivery after the ack wait or a nak's delay, max_deliver, AckPolicy.ALL."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from actors.runtime.memory_clients import MemoryMsg

if TYPE_CHECKING:
    from actors.runtime.memory_broker import MemoryBroker, MemoryStream, StoredMsg

__all__ = ["ADVISORY_PREFIX", "ConsumerInfo", "MemoryConsumer", "subject_matches"]

ADVISORY_PREFIX = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES"


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether `subject` matches the NATS subject `pattern` (`*` one token, `>` one or more at the end)."""
    pat, sub = pattern.split("."), subject.split(".")
    for i, token in enumerate(pat):
        if token == ">":
            return len(sub) > i
        if i >= len(sub) or token not in ("*", sub[i]):
            return False
    return len(pat) == len(sub)


@dataclass
class _Pending:
    deliveries: int
    due: float  # when it is redelivered unless acked, kept in progress or nak'ed again


@dataclass(frozen=True)
class ConsumerInfo:
    num_pending: int  # stored, matching, never delivered
    num_ack_pending: int  # delivered, not acked (nor given up)
    num_redelivered: int  # of those, delivered more than once
    gave_up: int


class MemoryConsumer:
    """A durable consumer: what it delivered and is waiting to hear of, and where it is in its stream."""

    def __init__(self, broker: MemoryBroker, stream: MemoryStream, durable: str, filter_subject: str | None,
                 ack_wait: float, max_deliver: int, ack_all: bool, max_ack_pending: int) -> None:
        self._broker = broker
        self.stream = stream
        self.durable = durable
        self.filter_subject = filter_subject
        self.ack_wait = ack_wait
        self.max_deliver = max_deliver
        self.ack_all = ack_all
        self.max_ack_pending = max_ack_pending
        self.pending: dict[int, _Pending] = {}
        self.gave_up: list[int] = []
        self._next = 1  # the next stream sequence never delivered
        self._dseq = 0

    def _wants(self, msg: StoredMsg) -> bool:
        return self.filter_subject is None or subject_matches(self.filter_subject, msg.subject)

    def take(self, max_n: int) -> list[MemoryMsg]:
        """Deliver up to `max_n`: what is due for redelivery first, then what was never delivered."""
        now = self._broker.clock()
        out: list[MemoryMsg] = []
        for seq in sorted(s for s, p in self.pending.items() if p.due <= now):
            if len(out) >= max_n:
                return out
            pending = self.pending[seq]
            if 0 < self.max_deliver <= pending.deliveries:
                self._give_up(seq, pending.deliveries)
                continue
            pending.deliveries += 1
            out.append(self._deliver(seq, pending, now))
        while len(out) < max_n and len(self.pending) < self.max_ack_pending and self._next <= self.stream.last_seq:
            seq, self._next = self._next, self._next + 1
            msg = self.stream.messages.get(seq)
            if msg is not None and self._wants(msg):
                pending = self.pending[seq] = _Pending(1, now)
                out.append(self._deliver(seq, pending, now))
        return out

    def _deliver(self, seq: int, pending: _Pending, now: float) -> MemoryMsg:
        pending.due = now + self.ack_wait
        self._dseq += 1
        self._broker.record("deliver", self.stream.name, seq, consumer=self.durable, detail=str(pending.deliveries))
        return MemoryMsg(self, self.stream.messages[seq], pending.deliveries, self._dseq)

    def _give_up(self, seq: int, deliveries: int) -> None:
        del self.pending[seq]
        self.gave_up.append(seq)
        self._broker.record("gave_up", self.stream.name, seq, consumer=self.durable, detail=str(deliveries))
        advisory = {"type": "io.nats.jetstream.advisory.v1.max_deliver", "stream": self.stream.name,
                    "consumer": self.durable, "stream_seq": seq, "deliveries": deliveries}
        self._broker.publish_core(f"{ADVISORY_PREFIX}.{self.stream.name}.{self.durable}",
                                  json.dumps(advisory).encode())

    def ack(self, seq: int) -> None:
        acked = [s for s in self.pending if s <= seq] if self.ack_all else [seq] if seq in self.pending else []
        for s in acked:
            del self.pending[s]
        self._broker.record("ack", self.stream.name, seq, consumer=self.durable,
                            detail="" if acked else "not pending")
        self._broker.notify()

    def nak(self, seq: int, delay: float | None) -> None:
        pending = self.pending.get(seq)
        if pending is not None:
            pending.due = self._broker.clock() + (delay or 0.0)
        self._broker.record("nak", self.stream.name, seq, consumer=self.durable, detail=f"{delay or 0:g}")
        self._broker.notify()

    def in_progress(self, seq: int) -> None:
        pending = self.pending.get(seq)
        if pending is not None:
            pending.due = self._broker.clock() + self.ack_wait
        self._broker.record("in_progress", self.stream.name, seq, consumer=self.durable)

    def next_due_in(self) -> float:
        """Seconds until the next redelivery (inf when nothing is pending)."""
        due = min((p.due for p in self.pending.values()), default=math.inf)
        return max(0.0, due - self._broker.clock())

    def info(self) -> ConsumerInfo:
        fresh = sum(1 for s in range(self._next, self.stream.last_seq + 1)
                    if (m := self.stream.messages.get(s)) is not None and self._wants(m))
        return ConsumerInfo(fresh, len(self.pending), sum(1 for p in self.pending.values() if p.deliveries > 1),
                            len(self.gave_up))
