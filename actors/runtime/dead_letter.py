"""Turning a message a stage cannot process into a DeadLettered event.

A dead letter carries a copy of the original (headers, payload) unless that would make it larger than
the broker takes: then it carries only where the original is (its stream and sequence), from where
`trade dlq show` and `trade dlq replay` read it.
"""

from __future__ import annotations

import base64
import uuid
from typing import Protocol

from actors.runtime.broker import Delivered, Stored
from messages import DeadLettered, Envelope, encode, subjects, wrap
from messages.ids import derive_event_id

__all__ = ["dead_letter", "dead_letter_of", "fits"]

_DLQ_NS = uuid.UUID("0b4f3c2e-7f0a-4b8e-a4f2-3e9d7c1b2a60")
#: Room left for the subject, headers and protocol overhead under the broker's payload limit.
_MARGIN = 8 * 1024
_DEFAULT_MAX_PAYLOAD = 1024 * 1024


class _Limited(Protocol):
    @property
    def max_payload(self) -> int: ...


def fits(conn: _Limited, stored: Stored) -> bool:
    """Whether the broker takes this message (its payload and headers under the limit of `conn`: a
    `Broker`, or a nats-py connection)."""
    subject, payload, headers = stored
    size = len(payload) + len(subject) + sum(len(k) + len(v) + 4 for k, v in (headers or {}).items())
    return size <= (conn.max_payload or _DEFAULT_MAX_PAYLOAD)


def dead_letter(stage: str, msg: Delivered, reason: str, error: str, order_id: str = "-", attempts: int | None = None,
                max_payload: int | None = None) -> tuple[str, Envelope]:
    """The DLQ subject and envelope for `msg`; its id derives from the original's stream position."""
    meta = msg.metadata
    return dead_letter_of(stage, msg.subject, msg.data, msg.headers, meta.stream, meta.sequence.stream,
                          max(1, attempts or meta.num_delivered or 1), reason, error, order_id, max_payload)


def dead_letter_of(stage: str, subject: str, data: bytes, headers: dict[str, str] | None, stream: str, seq: int,
                   deliveries: int, reason: str, error: str, order_id: str = "-",
                   max_payload: int | None = None) -> tuple[str, Envelope]:
    """The same from the original's parts: the id is the same whoever writes the letter for it (the
    loop that gave the message up, or the watch of the broker's max-deliveries advisories)."""
    cause = uuid.uuid5(_DLQ_NS, f"{stream}:{seq}")
    event = DeadLettered(
        order_id=order_id,
        stage=stage,
        reason=reason,
        error=error[:2000],
        original_subject=subject,
        original_stream=stream,
        original_stream_seq=seq,
        headers={k: str(v) for k, v in (headers or {}).items()},
        payload_b64=base64.b64encode(data).decode("ascii"),
        deliveries=max(1, deliveries),
    )
    envelope = wrap(event, event_id=derive_event_id(cause, DeadLettered.TYPE))
    limit = (max_payload or _DEFAULT_MAX_PAYLOAD) - _MARGIN
    if len(encode(envelope)) > limit:  # keep where the original is, not a copy of it
        event = event.model_copy(update={"payload_b64": "", "payload_omitted": True, "headers": {}})
        envelope = wrap(event, event_id=envelope.event_id)
    return subjects.dlq(stage), envelope
