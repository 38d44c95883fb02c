"""The last line: the broker's MAX_DELIVERIES advisories turned into dead letters and alarms.

The consumer loop dead-letters an input itself when its handler keeps failing. The broker gives a
message up on its own only when it was delivered `max_deliver + DELIVERY_SLACK` times without being
settled: a process that died on it each time, or a broker that kept redelivering it. Nothing else
would then say so. The stream ADVISORIES keeps those advisories
(`$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>`), and this handler, on a durable
consumer of it, writes the dead letter (with the same id the loop would have given it, so the broker
drops one of two) and raises an alarm.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Mapping

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from pydantic import BaseModel, ConfigDict, ValidationError

from actors.runtime.alarms import Alarms
from actors.runtime.broker_retry import BrokerRetry
from actors.runtime.dead_letter import dead_letter_of
from actors.runtime.stage import InputMeta, Outgoing
from messages import DecodeError, Envelope, decode
from messages.ids import derive_event_id

__all__ = ["ADVISORIES_STREAM", "ADVISORY_SUBJECTS", "MaxDeliveries", "MaxDeliveriesHandler", "decode_advisory"]

ADVISORIES_STREAM = "ADVISORIES"
ADVISORY_SUBJECTS = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"
REASON = "max_deliveries_advisory"

_NAMESPACE = uuid.UUID("9d6c0a4e-51f2-4f3b-8c7e-2a1d5e6f7b80")


class MaxDeliveries(BaseModel):
    """The broker's advisory (io.nats.jetstream.advisory.v1.max_deliver); other fields are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    stream: str
    consumer: str
    stream_seq: int
    deliveries: int


def decode_advisory(msg: Msg) -> tuple[Envelope, MaxDeliveries]:
    try:
        advisory = MaxDeliveries.model_validate_json(msg.data)
    except ValidationError as exc:
        raise DecodeError("invalid_payload", f"not a max-deliveries advisory: {exc.error_count()} error(s)") from exc
    event_id = derive_event_id(_NAMESPACE, "MaxDeliveries", f"{advisory.stream}|{advisory.stream_seq}")
    envelope = Envelope(event_id=event_id, type="MaxDeliveries", version=1, correlation_id="-", ts=0, payload={})
    return envelope, advisory


class MaxDeliveriesHandler:
    stage = "advisories"
    concurrent = False

    def __init__(self, js: JetStreamContext, stage_of: Mapping[str, str], alarms: Alarms,
                 max_payload: int | None = None) -> None:
        self._js = js
        self._stage_of = stage_of
        self._alarms = alarms
        self._max_payload = max_payload
        self._retry = BrokerRetry("advisories", alarms, asyncio.Event())

    async def handle(self, envelope: Envelope, event: object, meta: InputMeta) -> list[Outgoing]:
        advisory = event
        if not isinstance(advisory, MaxDeliveries):
            raise TypeError(f"advisories are MaxDeliveries, not {type(advisory).__name__}")
        stage = self._stage_of.get(advisory.consumer)
        if stage is None:
            return []  # not a consumer of this system
        subject, data, headers = await self._retry.run("reading the given-up message", lambda: self._original(advisory))
        order_id = "-"
        with contextlib.suppress(DecodeError):
            order_id = decode(data)[0].correlation_id
        error = (f"the broker gave the message up after {advisory.deliveries} deliveries to {advisory.consumer} "
                 "(the process handling it died each time, or the broker kept redelivering it)")
        self._alarms.raise_("max_deliveries", f"{advisory.stream} #{advisory.stream_seq}: {error}", order_id,
                            "critical")
        out = dead_letter_of(stage, subject, data, headers, advisory.stream, advisory.stream_seq, advisory.deliveries,
                             REASON, error, order_id, self._max_payload)
        return [Outgoing(*out)]

    async def _original(self, advisory: MaxDeliveries) -> tuple[str, bytes, dict[str, str] | None]:
        try:
            raw = await self._js.get_msg(advisory.stream, advisory.stream_seq)
        except NotFoundError:  # aged out or deleted since: the letter says where it was
            return "?", b"", None
        return raw.subject or "?", raw.data or b"", dict(raw.headers or {}) or None
