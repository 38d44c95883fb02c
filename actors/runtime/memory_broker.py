"""An in-memory JetStream for unit tests (in the spirit of faststream's TestBroker): the broker
interfaces of actors.runtime.broker with no server, no thread and, on a virtual clock, no waiting.

What it models, as nats-server does it:

- streams with subjects (wildcards `*` and `>`) and sequences; a stream limit (`max_msgs`, discard
  new: a full stream refuses a store with 503 "maximum messages exceeded");
- the duplicate window: a store whose `Nats-Msg-Id` the stream saw within `duplicate_window` seconds
  is acknowledged with the original's sequence and not stored;
- compare-and-set stores (`Nats-Expected-Last-Subject-Sequence`; 0: the subject has no message);
- durable consumers with explicit acknowledgement or AckPolicy.ALL (an ack covers every lower
  sequence), an ack wait after which a message is redelivered with a growing delivery count, an
  in-progress that starts the ack wait again, a nak with a delay, `max_deliver` (then the message is
  given up and a MAX_DELIVERIES advisory published) and `max_ack_pending`; redeliveries first;
- KV buckets as streams (`KV_<bucket>`, subjects `$KV.<bucket>.<key>`): revisions are sequences;
- the connection's payload limit (`max_payload`).

Fault injection: `fail_publishes` (the next stores to a stream refused: full by default, or any
error), `time_out_publishes` (not answered: stored or not), `kv_unavailable` (reads and writes fail).
Every operation is recorded in `ops`, in order, so a test can prove the order of steps.

Time is the injected `clock`: a `ManualClock` moved by `tick`, or the event loop's time (the
default), which `actors.runtime.virtual_time` makes virtual: nothing then really waits. Messages are
delivered when a pull source asks (not pushed while its user is busy), so every run is the same.

The consumers are in actors.runtime.memory_consumer; the client side (delivered messages, pull
sources, publishers, buckets) in actors.runtime.memory_clients.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.errors import BadRequestError, NoStreamResponseError, ServiceUnavailableError

from actors.runtime.broker import EXPECTED_LAST_SUBJECT_SEQ, KvEntry, Publisher, kv_subject
from actors.runtime.memory_clients import NO_ANSWER, MemoryBucket, MemoryPublisher, MemoryPull, Outcome
from actors.runtime.memory_consumer import ConsumerInfo, MemoryConsumer, subject_matches

__all__ = [
    "ConsumerInfo",
    "ManualClock",
    "MemoryBroker",
    "MemoryConsumer",
    "MemoryStream",
    "Op",
    "StoredMsg",
    "loop_clock",
    "subject_matches",
]

MSG_ID = "Nats-Msg-Id"
KV_OPERATION = "KV-Operation"

Clock = Callable[[], float]


class ManualClock:
    """A clock that moves only when told (`tick`)."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


def loop_clock() -> float:
    """The running event loop's time (virtual under actors.runtime.virtual_time)."""
    return asyncio.get_running_loop().time()


@dataclass(frozen=True)
class Op:
    """One thing the broker did: stored, duplicate, refused, unanswered, deliver, ack, nak,
    in_progress, gave_up, kv_get."""

    kind: str
    stream: str
    seq: int = 0
    subject: str = ""
    consumer: str = ""
    detail: str = ""


@dataclass(frozen=True)
class StoredMsg:
    seq: int
    subject: str
    data: bytes
    headers: dict[str, str] | None
    #: When it was stored: by the broker's clock, and as wall-clock time (the delivery's timestamp).
    at: float
    stamp: datetime.datetime


@dataclass
class MemoryStream:
    name: str
    subjects: list[str]
    max_msgs: int = -1
    duplicate_window: float = 120.0
    messages: dict[int, StoredMsg] = field(default_factory=dict)
    last_seq: int = 0
    msg_ids: dict[str, tuple[int, float]] = field(default_factory=dict)
    last_on_subject: dict[str, int] = field(default_factory=dict)

    def takes(self, subject: str) -> bool:
        return any(subject_matches(p, subject) for p in self.subjects)


@dataclass
class _Fault:
    error: Callable[[], Exception] | None  # None: not answered
    times: int | None  # None: until healed
    stored: bool = False  # not answered, yet stored


def _full() -> Exception:
    return ServiceUnavailableError(code=503, err_code=10077, description="maximum messages exceeded")


class MemoryBroker:
    """Streams, consumers and KV buckets in memory; implements actors.runtime.broker.Broker."""

    def __init__(self, clock: Clock | None = None, max_payload: int = 1024 * 1024, prefetch: bool = False,
                 wall_start: float = 1_700_000_000.0) -> None:
        self.clock: Clock = clock or loop_clock
        self.max_payload = max_payload
        #: Whether pull sources keep a batch delivered ahead in their buffer (as a real continuous pull does).
        self.prefetch = prefetch
        self._wall_start = wall_start
        self.streams: dict[str, MemoryStream] = {}
        self.consumers: dict[tuple[str, str], MemoryConsumer] = {}
        self.ops: list[Op] = []
        self._faults: dict[tuple[str, str], _Fault] = {}
        self._change: asyncio.Event | None = None

    # -- topology ----------------------------------------------------------------------------------
    def add_stream(self, name: str, subjects: list[str], *, max_msgs: int = -1,
                   duplicate_window: float = 120.0) -> MemoryStream:
        stream = self.streams[name] = MemoryStream(name, list(subjects), max_msgs, duplicate_window)
        return stream

    def add_consumer(self, stream: str, durable: str, *, filter_subject: str | None = None, ack_wait: float = 30.0,
                     max_deliver: int = -1, ack_all: bool = False, max_ack_pending: int = 1000) -> MemoryConsumer:
        consumer = MemoryConsumer(self, self.streams[stream], durable, filter_subject, ack_wait, max_deliver, ack_all,
                                  max_ack_pending)
        self.consumers[(stream, durable)] = consumer
        return consumer

    def add_bucket(self, name: str) -> MemoryStream:
        return self.add_stream(f"KV_{name}", [f"$KV.{name}.>"])

    # -- the Broker interface ----------------------------------------------------------------------
    def pull(self, stream: str, durable: str, batch: int) -> MemoryPull:
        return MemoryPull(self, self.consumers[(stream, durable)], batch, self.prefetch)

    def publisher(self) -> MemoryPublisher:
        return MemoryPublisher(self)

    def bucket(self, name: str, publisher: Publisher) -> MemoryBucket:
        if f"KV_{name}" not in self.streams:
            raise KeyError(f"no bucket {name!r}")
        return MemoryBucket(self, name, publisher)

    # -- faults ------------------------------------------------------------------------------------
    def fail_publishes(self, stream: str, times: int | None = 1, error: Callable[[], Exception] | None = None) -> None:
        """The next `times` stores to `stream` (None: all, until `heal`) are refused with `error()`
        (default: a full stream, 503 "maximum messages exceeded")."""
        self._faults[("publish", stream)] = _Fault(error or _full, times)

    def time_out_publishes(self, stream: str, times: int | None = 1, stored: bool = False) -> None:
        """The next `times` stores to `stream` get no answer (the waiter times out); `stored`: they are
        stored all the same (the answer was lost, not the message)."""
        self._faults[("publish", stream)] = _Fault(None, times, stored)

    def kv_unavailable(self, bucket: str, times: int | None = None) -> None:
        """The bucket's next `times` reads time out, and so many writes get no responders (None: until
        `heal`)."""
        self._faults[("kv_get", bucket)] = _Fault(NatsTimeoutError, times)
        self._faults[("publish", f"KV_{bucket}")] = _Fault(NoStreamResponseError, times)

    def heal(self) -> None:
        """Every injected fault is cleared."""
        self._faults.clear()

    def _fault(self, kind: str, target: str) -> _Fault | None:
        fault = self._faults.get((kind, target))
        if fault is None:
            return None
        if fault.times is not None:
            fault.times -= 1
            if fault.times <= 0:
                del self._faults[(kind, target)]
        return fault

    # -- time --------------------------------------------------------------------------------------
    def tick(self, seconds: float) -> None:
        """Move a `ManualClock` on (and wake whoever waits for a redelivery)."""
        if not isinstance(self.clock, ManualClock):
            raise TypeError("tick needs a ManualClock; the event loop's clock moves by itself")
        self.clock.tick(seconds)
        self.notify()

    def notify(self) -> None:
        """Something changed (a store, an ack, a nak, time): waiting pull sources look again."""
        if self._change is not None:
            self._change.set()
            self._change = None

    async def changed(self, timeout: float) -> None:
        """Wait until something changes, or `timeout` seconds (of the event loop)."""
        if self._change is None:
            self._change = asyncio.Event()
        change = self._change
        try:
            async with asyncio.timeout(timeout):
                await change.wait()
        except TimeoutError:
            pass

    # -- storing -----------------------------------------------------------------------------------
    def record(self, kind: str, stream: str, seq: int = 0, subject: str = "", consumer: str = "",
               detail: str = "") -> None:
        self.ops.append(Op(kind, stream, seq, subject, consumer, detail))

    def publish(self, subject: str, data: bytes, headers: dict[str, str] | None = None) -> int:
        """Store a message now (a test's input); returns its sequence or raises the broker's error."""
        outcome = self.store(subject, data, headers)
        if isinstance(outcome, BaseException):
            raise outcome
        if not isinstance(outcome, int):  # NO_ANSWER
            raise NatsTimeoutError()
        return outcome

    def publish_core(self, subject: str, data: bytes) -> None:
        """A core NATS publish (an advisory): stored when a stream takes the subject, else dropped."""
        if any(s.takes(subject) for s in self.streams.values()):
            self.store(subject, data, None)

    def store(self, subject: str, data: bytes, headers: dict[str, str] | None) -> Outcome:
        """What the broker answers to a store: the sequence, an error, or nothing (NO_ANSWER)."""
        stream = next((s for s in self.streams.values() if s.takes(subject)), None)
        if stream is None:
            self.record("refused", "", subject=subject, detail="no stream")
            return NoStreamResponseError()
        fault = self._fault("publish", stream.name)
        if fault is not None and fault.error is None:
            if fault.stored:
                self._store(stream, subject, data, headers)
            self.record("unanswered", stream.name, subject=subject)
            return NO_ANSWER
        if fault is not None and fault.error is not None:
            error = fault.error()
            self.record("refused", stream.name, subject=subject, detail=repr(error))
            return error
        return self._store(stream, subject, data, headers)

    def _store(self, stream: MemoryStream, subject: str, data: bytes, headers: dict[str, str] | None) -> Outcome:
        now = self.clock()
        stream.msg_ids = {k: v for k, v in stream.msg_ids.items() if now - v[1] < stream.duplicate_window}
        msg_id = (headers or {}).get(MSG_ID)
        if msg_id is not None and msg_id in stream.msg_ids:
            seq = stream.msg_ids[msg_id][0]
            self.record("duplicate", stream.name, seq, subject, detail=msg_id)
            return seq
        expected = (headers or {}).get(EXPECTED_LAST_SUBJECT_SEQ)
        last = stream.last_on_subject.get(subject, 0)
        if expected is not None and int(expected) != last:
            self.record("refused", stream.name, subject=subject, detail=f"wrong last sequence: {last}")
            return BadRequestError(code=400, err_code=10071, description=f"wrong last sequence: {last}")
        if 0 <= stream.max_msgs <= len(stream.messages):
            self.record("refused", stream.name, subject=subject, detail="maximum messages exceeded")
            return _full()
        seq = stream.last_seq = stream.last_seq + 1
        stamp = datetime.datetime.fromtimestamp(self._wall_start + now, datetime.UTC)
        stream.messages[seq] = StoredMsg(seq, subject, bytes(data), dict(headers) if headers else None, now, stamp)
        stream.last_on_subject[subject] = seq
        if msg_id is not None:
            stream.msg_ids[msg_id] = (seq, now)
        self.record("stored", stream.name, seq, subject, detail=msg_id or "")
        self.notify()
        return seq

    # -- reading -----------------------------------------------------------------------------------
    def kv_get(self, bucket: str, key: str) -> KvEntry:
        fault = self._fault("kv_get", bucket)
        if fault is not None:
            self.record("refused", f"KV_{bucket}", subject=kv_subject(bucket, key), detail="kv read")
            raise (fault.error or NatsTimeoutError)()
        stream = self.streams[f"KV_{bucket}"]
        seq = stream.last_on_subject.get(kv_subject(bucket, key), 0)
        self.record("kv_get", stream.name, seq, kv_subject(bucket, key))
        if seq == 0:
            return KvEntry(None, 0)
        msg = stream.messages[seq]
        deleted = (msg.headers or {}).get(KV_OPERATION) in ("DEL", "PURGE")
        return KvEntry(None if deleted else msg.data, seq)

    def stored(self, stream: str) -> list[StoredMsg]:
        """The messages `stream` holds, in order."""
        return list(self.streams[stream].messages.values())

    def consumer(self, stream: str, durable: str) -> MemoryConsumer:
        return self.consumers[(stream, durable)]

    def ops_of(self, kind: str, stream: str | None = None) -> list[Op]:
        return [op for op in self.ops if op.kind == kind and (stream is None or op.stream == stream)]
