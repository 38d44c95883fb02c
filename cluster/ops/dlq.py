"""Dead letters for operators: list, show and replay messages a stage could not process.

A letter whose original was too large to copy (`payload_omitted`) is read from where the original is
(its stream and sequence) for `show` and `replay`, as long as the stream keeps it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from actors.runtime.applied import REPLAY_HEADER, REPLAY_OF_HEADER
from actors.runtime.streams import decoded, read_stream
from cluster.errors import TradingError
from messages import MSG_ID_HEADER, DeadLettered, DecodeError, decode, subjects

__all__ = ["DeadLetterRecord", "OriginalGone", "ReplayResult", "list_dead_letters", "original", "replay"]


class OriginalGone(TradingError, LookupError):
    """A letter without a copy of its original, whose stream no longer keeps it."""


@dataclass(frozen=True)
class DeadLetterRecord:
    id: int  # the DLQ stream sequence: stable, short, what operators type
    letter: DeadLettered

    @property
    def payload(self) -> bytes:
        return base64.b64decode(self.letter.payload_b64)

    def to_dict(self, with_payload: bool = False, payload: bytes | None = None) -> dict[str, object]:
        data: dict[str, object] = {"id": self.id, **self.letter.model_dump(mode="json", exclude={"payload_b64"})}
        if with_payload:
            data["payload"] = (self.payload if payload is None else payload).decode("utf-8", errors="replace")
        return data


@dataclass(frozen=True)
class ReplayResult:
    id: int
    subject: str
    outcome: str  # "replayed", or "duplicate" (this letter was replayed before)


async def list_dead_letters(js: JetStreamContext, stage: str | None = None) -> list[DeadLetterRecord]:
    subject = subjects.dlq(stage) if stage else None
    return [DeadLetterRecord(m.seq, ev) for m, _, ev in decoded(await read_stream(js, "DLQ", subject))
            if isinstance(ev, DeadLettered)]


async def original(js: JetStreamContext, record: DeadLetterRecord) -> tuple[bytes, dict[str, str]]:
    """The original's payload and headers: the letter's copy, or (omitted) the stream's message."""
    letter = record.letter
    if not letter.payload_omitted:
        return record.payload, dict(letter.headers)
    if letter.original_stream is None or letter.original_stream_seq is None:
        raise OriginalGone(f"dead letter {record.id} has neither a copy nor the place of its original")
    try:
        raw = await js.get_msg(letter.original_stream, letter.original_stream_seq)
    except NotFoundError:
        raise OriginalGone(f"dead letter {record.id}: {letter.original_stream} no longer keeps message "
                           f"#{letter.original_stream_seq}") from None
    return raw.data or b"", dict(raw.headers or {})


def _event_id(payload: bytes) -> str:
    """The original's event id, read from its envelope (a letter may have lost its headers)."""
    try:
        return str(decode(payload)[0].event_id)
    except DecodeError:
        return "dlq"


async def replay(js: JetStreamContext, records: list[DeadLetterRecord]) -> list[ReplayResult]:
    """Republish each original message to its original subject, with its original headers.

    The replay is a new message (its own Nats-Msg-Id, `<original id>:replay:<letter id>`, so the
    stream takes it although it keeps the original's id; a second replay of the same letter is
    dropped as a copy). It carries the original's sequence (Trade-Replay-Of): a stage that already
    applied the original recognises it in its applied log, so a replay has no second effect."""
    results = []
    for record in records:
        payload, original_headers = await original(js, record)
        headers = {k: v for k, v in original_headers.items() if not k.startswith("Nats-Expected")}
        headers[MSG_ID_HEADER] = f"{headers.get(MSG_ID_HEADER) or _event_id(payload)}:replay:{record.id}"
        headers[REPLAY_HEADER] = str(record.id)
        if record.letter.original_stream_seq is not None:
            headers[REPLAY_OF_HEADER] = str(record.letter.original_stream_seq)
        ack = await js.publish(record.letter.original_subject, payload, headers=headers)
        results.append(ReplayResult(record.id, record.letter.original_subject,
                                    "duplicate" if ack.duplicate else "replayed"))
    return results
