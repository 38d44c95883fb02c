"""The JSON envelope every message body travels in, and its encoding and decoding."""

from __future__ import annotations

import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from messages.base import Event
from messages.events import EVENT_TYPES
from messages.ids import derive_event_id

__all__ = ["MSG_ID_HEADER", "DecodeError", "Envelope", "decode", "encode", "wrap"]

MSG_ID_HEADER = "Nats-Msg-Id"


class DecodeError(ValueError):
    """Bytes from the wire that are not a valid envelope of a known event type."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(f"{reason}: {error}")
        self.reason = reason
        self.error = error


class Envelope(BaseModel):
    """`ts` is epoch nanoseconds (UTC) everywhere."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID
    type: str
    version: int = Field(ge=1)
    correlation_id: str
    causation_id: str | None = None
    ts: int
    payload: dict[str, Any]

    def event(self) -> Event:
        """The payload as its typed event model."""
        cls = EVENT_TYPES.get(self.type)
        if cls is None:
            raise DecodeError("unknown_type", f"unknown event type {self.type!r}")
        if self.version > cls.VERSION:
            raise DecodeError("unsupported_version", f"{self.type} v{self.version} > v{cls.VERSION}")
        try:
            return cls.model_validate(self.payload)
        except ValidationError as exc:
            raise DecodeError("invalid_payload", _short(exc)) from exc


def wrap(
    event: Event,
    *,
    cause: Envelope | None = None,
    discriminator: str = "",
    event_id: uuid.UUID | None = None,
    ts: int | None = None,
) -> Envelope:
    """Envelope an event. Its id derives from the cause so re-processing republishes the same id."""
    if event_id is None:
        if cause is None:
            raise ValueError("an event with no cause needs an explicit event_id")
        event_id = derive_event_id(cause.event_id, event.TYPE, discriminator)
    return Envelope(
        event_id=event_id,
        type=event.TYPE,
        version=event.VERSION,
        correlation_id=event.order_id,
        causation_id=str(cause.event_id) if cause is not None else None,
        ts=time.time_ns() if ts is None else ts,
        payload=event.model_dump(mode="json"),
    )


def encode(envelope: Envelope) -> bytes:
    return envelope.model_dump_json().encode("utf-8")


def decode(data: bytes) -> tuple[Envelope, Event]:
    """Parse wire bytes into the envelope and its typed event, or raise DecodeError."""
    try:
        env = Envelope.model_validate_json(data)
    except ValidationError as exc:
        kind = "undecodable" if any(e["type"] == "json_invalid" for e in exc.errors()) else "bad_envelope"
        raise DecodeError(kind, _short(exc)) from exc
    return env, env.event()


def _short(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(x) for x in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)
