"""Turning a message a stage cannot process into a DeadLettered event."""

from __future__ import annotations

import base64
import uuid

from nats.aio.msg import Msg

from messages import DeadLettered, Envelope, subjects, wrap
from messages.ids import derive_event_id

__all__ = ["dead_letter"]

_DLQ_NS = uuid.UUID("0b4f3c2e-7f0a-4b8e-a4f2-3e9d7c1b2a60")


def dead_letter(stage: str, msg: Msg, reason: str, error: str, order_id: str = "-") -> tuple[str, Envelope]:
    """The DLQ subject and envelope for `msg`; its id derives from the original's stream position."""
    meta = msg.metadata
    cause = uuid.uuid5(_DLQ_NS, f"{meta.stream}:{meta.sequence.stream}")
    headers = {k: str(v) for k, v in (msg.headers or {}).items()}
    event = DeadLettered(
        order_id=order_id,
        stage=stage,
        reason=reason,
        error=error[:2000],
        original_subject=msg.subject,
        original_stream_seq=meta.sequence.stream,
        headers=headers,
        payload_b64=base64.b64encode(msg.data).decode("ascii"),
        deliveries=max(1, meta.num_delivered),
    )
    return subjects.dlq(stage), wrap(event, event_id=derive_event_id(cause, DeadLettered.TYPE))
