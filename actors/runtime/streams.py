"""Reading the log back: every stored message of a stream (optionally one subject filter)."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from messages import DecodeError, Envelope, Event, decode

__all__ = ["StoredMessage", "decoded", "read_stream"]


@dataclass(frozen=True)
class StoredMessage:
    subject: str
    seq: int
    data: bytes
    headers: dict[str, str]


async def read_stream(js: JetStreamContext, stream: str, subject: str | list[str] | None = None,
                      batch: int = 512, start_seq: int | None = None) -> list[StoredMessage]:
    """All messages stored now (from `start_seq` on, if given), in stream order, through an ephemeral
    unacknowledged consumer. `subject` may be several filters: the server does the filtering.
    Messages stored after the call began are not read: a reader never chases a stream that grows."""
    filters = [subject] if isinstance(subject, str) else list(subject or [])
    info = await js.stream_info(stream)
    last = info.state.last_seq
    if info.state.messages == 0 or (start_seq is not None and start_seq > info.state.last_seq):
        return []
    if start_seq is not None and start_seq > 1:
        config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                opt_start_seq=start_seq, inactive_threshold=10.0, max_ack_pending=-1)
    else:
        config = ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL,
                                inactive_threshold=10.0, max_ack_pending=-1)
    if len(filters) > 1:
        config.filter_subjects = filters
    sub = await js.pull_subscribe(filters[0] if len(filters) == 1 else ">", stream=stream, config=config)
    out: list[StoredMessage] = []
    try:
        if not (await sub.consumer_info()).num_pending:
            return out  # nothing matches: do not wait out a fetch's timeout
        while True:
            try:
                msgs = await sub.fetch(batch, timeout=1.0)
            except TimeoutError:
                break
            for m in msgs:
                if m.metadata.sequence.stream <= last:
                    out.append(StoredMessage(m.subject, m.metadata.sequence.stream, m.data, dict(m.headers or {})))
            if msgs and (msgs[-1].metadata.num_pending == 0 or msgs[-1].metadata.sequence.stream >= last):
                break
    finally:
        await sub.unsubscribe()
    return out


def decoded(messages: list[StoredMessage]) -> list[tuple[StoredMessage, Envelope, Event]]:
    """The messages that decode as envelopes (others are skipped: they belong in a DLQ)."""
    out = []
    for m in messages:
        try:
            env, ev = decode(m.data)
        except DecodeError:
            continue
        out.append((m, env, ev))
    return out
