"""What the consumer loop and its collaborators need from a message broker, and nothing more.

The loop (`actors.runtime.loop.ConsumerLoop`), its committer, its applied log and its dead letters
see the broker only through these interfaces. Two implementations exist:

- the real one on nats-py (`actors.runtime.nats_broker.NatsBroker`): a `PullConsumer` as the pull
  source, an `AckedPublisher` as the publisher, nats-py's `Msg` as the delivered message and a KV
  bucket read with nats-py and written through the publisher;
- an in-memory one for unit tests (`actors.runtime.memory_broker.MemoryBroker`), with a clock of its
  own and fault injection.

Errors are nats-py's own types in both, so that code which tells them apart (the applied log tells a
lost compare-and-set from the rest) behaves the same on either.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from nats.js.errors import APIError, BadRequestError, NoStreamResponseError, ServiceUnavailableError

__all__ = [
    "EXPECTED_LAST_SUBJECT_SEQ",
    "BadRequestError",
    "Broker",
    "Delivered",
    "DeliveryMetadata",
    "KvBucket",
    "KvEntry",
    "KvWrite",
    "NoStreamResponseError",
    "PendingAcks",
    "Publisher",
    "PullSource",
    "SequencePair",
    "ServiceUnavailableError",
    "StoreRefused",
    "Stored",
    "kv_subject",
]

#: A message to store: subject, payload, headers.
Stored = tuple[str, bytes, dict[str, str] | None]

#: A store the broker refused (its JetStream API error; the subclass says the code: a full stream is a
#: `ServiceUnavailableError` (503, "maximum messages exceeded"), a failed expectation such as a lost
#: compare-and-set a `BadRequestError` (400, "wrong last sequence")).
StoreRefused = APIError

#: The header that makes a store a compare-and-set on its subject: the sequence of the subject's last
#: message the writer expects (0: the subject must have none).
EXPECTED_LAST_SUBJECT_SEQ = "Nats-Expected-Last-Subject-Sequence"


def kv_subject(bucket: str, key: str) -> str:
    """The subject under which a KV bucket's stream stores `key` (`$KV.<bucket>.<key>`)."""
    return f"$KV.{bucket}.{key}"


class SequencePair(Protocol):
    """Where a delivered message is: its sequence in the stream (the same on every delivery)."""

    @property
    def stream(self) -> int:
        """The message's stream sequence: its identity in the stream, 1 for the first message."""
        ...


class DeliveryMetadata(Protocol):
    """What the broker says of one delivery of a message (nats-py's `Msg.Metadata` is one)."""

    @property
    def sequence(self) -> SequencePair:
        """The message's position; `sequence.stream` is what the loop keys inputs by."""
        ...

    @property
    def num_delivered(self) -> int:
        """How many times the broker delivered the message to this consumer, this delivery included
        (1 on the first). A value above 1 means a process may have handled it before."""
        ...

    @property
    def timestamp(self) -> datetime.datetime:
        """When the broker stored the message, in the broker's clock (timezone-aware, UTC)."""
        ...

    @property
    def stream(self) -> str:
        """The name of the stream the message is stored in."""
        ...


@runtime_checkable
class Delivered(Protocol):
    """A message delivered by a durable consumer with explicit acknowledgement (nats-py's `Msg` is one).

    Exactly one of `ack` and `nak` settles a delivery; `in_progress` may be sent any number of times
    before that. The broker redelivers a message that is neither acked nor kept in progress within
    the consumer's ack wait.
    """

    @property
    def subject(self) -> str:
        """The subject the message was published to."""
        ...

    @property
    def data(self) -> bytes:
        """The message's payload."""
        ...

    @property
    def headers(self) -> dict[str, str] | None:
        """The message's headers as published (None when it has none)."""
        ...

    @property
    def metadata(self) -> DeliveryMetadata:
        """The broker's metadata of this delivery."""
        ...

    async def ack(self) -> None:
        """Acknowledge the message: the consumer will not deliver it again. With AckPolicy.ALL, every
        message of the consumer with a lower stream sequence is acknowledged with it.

        Raises when the delivery was already acked or nak'ed (nats-py: `MsgAlreadyAckdError`).
        Returns once the acknowledgement is sent, not once the broker took it.
        """
        ...

    async def nak(self, delay: float | None = None) -> None:
        """Hand the message back for redelivery: at once, or after `delay` seconds. The redelivery
        counts as a delivery (`num_delivered` grows). Raises as `ack` does on a settled delivery."""
        ...

    async def in_progress(self) -> None:
        """Tell the broker the message is still being worked on: its ack wait starts again. Any number
        of times, until the delivery is settled."""
        ...


class PullSource(Protocol):
    """The messages of one durable consumer, taken in batches from an in-process buffer.

    A source may have up to its batch size delivered ahead into its buffer (the real one keeps a pull
    request outstanding, so the broker pushes each message as soon as it is stored). What it holds
    (`buffered_msgs`) has been delivered, so its ack wait runs: the caller keeps it in progress and,
    once the source is stopped, settles what `stop` returns.
    """

    async def start(self) -> None:
        """Start taking messages from the broker (call once, before `next_batch`)."""
        ...

    async def stop(self) -> Sequence[Delivered]:
        """Stop taking messages; returns the messages delivered to the buffer and never handed out
        (unsettled: the caller naks them so that whoever consumes next gets them at once)."""
        ...

    async def next_batch(self, max_n: int, timeout: float) -> Sequence[Delivered]:
        """Up to `max_n` messages, in the order delivered: waits up to `timeout` seconds for the first,
        then takes what is already buffered without waiting. Returns [] when none came in time."""
        ...

    def pause(self) -> None:
        """Stop asking the broker for more (what is buffered stays buffered)."""
        ...

    def resume(self) -> None:
        """Ask the broker for more again (no effect unless paused)."""
        ...

    def buffered(self) -> int:
        """How many messages are buffered and not handed out."""
        ...

    def buffered_msgs(self) -> Sequence[Delivered]:
        """The messages buffered and not handed out (a copy; they stay buffered)."""
        ...

    def wake(self) -> None:
        """Ask the broker again now (after a reconnect the broker may have forgotten the request)."""
        ...


class PendingAcks(Protocol):
    """Messages handed to the broker by `Publisher.submit`, whose acknowledgements are still to come."""

    def __len__(self) -> int:
        """How many messages were submitted."""
        ...

    async def wait(self, timeout: float) -> list[int]:
        """The messages' stream sequences, in submission order, once the broker acknowledged every one
        (a duplicate of a message the stream holds is acknowledged with the original's sequence).
        Call it once.

        Raises, for the first message in submission order that was not stored:
            StoreRefused: the broker refused it (`ServiceUnavailableError` for a full stream,
                `BadRequestError` for a failed expectation such as a lost compare-and-set).
            NoStreamResponseError: no stream took it (no stream has the subject, or no leader answered).
            TimeoutError: no answer within `timeout` seconds (it may or may not have been stored).
        """
        ...


class Publisher(Protocol):
    """Stores messages in streams and awaits the broker's acknowledgements (at most once per call:
    the caller retries, with the same `Nats-Msg-Id` headers, and the broker drops the copies)."""

    async def start(self) -> None:
        """Get ready to publish (also done on first use)."""
        ...

    async def stop(self) -> None:
        """Stop; acknowledgements still awaited are abandoned."""
        ...

    async def submit(self, messages: Sequence[Stored]) -> PendingAcks:
        """Hand every message to the broker now, in order; their acknowledgements are awaited later
        with `PendingAcks.wait`. Raises at once when a message cannot be sent at all (not connected,
        a payload over the connection's limit: nats-py's `MaxPayloadError`); those before it were sent.
        """
        ...

    async def store(self, messages: Sequence[Stored], timeout: float) -> list[int]:
        """`submit` then `wait`: the messages' stream sequences once all are stored. Raises as both do."""
        ...


@dataclass(frozen=True)
class KvEntry:
    """A key's latest entry in a KV bucket: its value and its revision."""

    #: None when the key has no value: never written (revision 0), or deleted or purged (the revision
    #: is then the delete marker's, which a compare-and-set must name).
    value: bytes | None
    #: The stream sequence of the key's latest entry; 0 when the key was never written.
    revision: int


@dataclass(frozen=True)
class KvWrite:
    """One write to a KV bucket: `value` under `key`, on condition that the key's revision is
    `expected_revision` (0: the key must not exist; None: unconditionally)."""

    key: str
    value: bytes
    expected_revision: int | None = None


class KvBucket(Protocol):
    """A KV bucket as the applied log uses it: read a key, write keys with compare-and-set."""

    async def get(self, key: str) -> KvEntry:
        """The key's latest entry (`KvEntry(None, 0)` when it was never written). Raises the broker's
        error when the bucket cannot be read (TimeoutError, nats-py's `NoRespondersError`, ...)."""
        ...

    async def put(self, writes: Sequence[KvWrite], timeout: float) -> list[int]:
        """Write every entry (sent together, acknowledged together); returns their new revisions in
        order. Raises as `PendingAcks.wait` does for the first write not stored: a compare-and-set
        whose expected revision is not the key's is refused with `BadRequestError` (the others may
        have been stored)."""
        ...


class Broker(Protocol):
    """What a consumer loop is built from: its pull source, its publisher, its KV bucket, the limit."""

    @property
    def max_payload(self) -> int:
        """The largest message (payload and headers, in bytes) the broker takes."""
        ...

    def pull(self, stream: str, durable: str, batch: int) -> PullSource:
        """A pull source for the existing durable consumer `durable` of `stream`, buffering up to `batch`."""
        ...

    def publisher(self) -> Publisher:
        """A new publisher (its user starts and stops it)."""
        ...

    def bucket(self, name: str, publisher: Publisher) -> KvBucket:
        """The existing KV bucket `name`, written through `publisher` (a KV write is a store)."""
        ...
