"""Dead letters for operators: list, show and replay messages a stage could not process."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from nats.js import JetStreamContext

from actors.applied import REPLAY_HEADER, REPLAY_OF_HEADER
from cluster.streams import decoded, read_stream
from messages import DeadLettered, subjects

__all__ = ["DeadLetterRecord", "ReplayResult", "list_dead_letters", "replay"]


@dataclass(frozen=True)
class DeadLetterRecord:
    id: int  # the DLQ stream sequence: stable, short, what operators type
    letter: DeadLettered

    @property
    def payload(self) -> bytes:
        return base64.b64decode(self.letter.payload_b64)

    def to_dict(self, with_payload: bool = False) -> dict[str, object]:
        data: dict[str, object] = {"id": self.id, **self.letter.model_dump(mode="json", exclude={"payload_b64"})}
        if with_payload:
            data["payload"] = self.payload.decode("utf-8", errors="replace")
        return data


@dataclass(frozen=True)
class ReplayResult:
    id: int
    subject: str
    outcome: str  # "replayed" or "duplicate" (the broker already holds that message id)


async def list_dead_letters(js: JetStreamContext, stage: str | None = None) -> list[DeadLetterRecord]:
    subject = subjects.dlq(stage) if stage else None
    return [DeadLetterRecord(m.seq, ev) for m, _, ev in decoded(await read_stream(js, "DLQ", subject))
            if isinstance(ev, DeadLettered)]


async def replay(js: JetStreamContext, records: list[DeadLetterRecord]) -> list[ReplayResult]:
    """Republish each original message to its original subject, with its original headers.

    A replay of a message that was already processed has no second effect: its Nats-Msg-Id is
    dropped by the stream inside the duplicate window, and past it the stage's applied log (checked
    for every message carrying the replay header) recognises the event id.
    """
    results = []
    for record in records:
        headers = {k: v for k, v in record.letter.headers.items() if not k.startswith("Nats-Expected")}
        headers[REPLAY_HEADER] = str(record.id)
        if record.letter.original_stream_seq is not None:
            headers[REPLAY_OF_HEADER] = str(record.letter.original_stream_seq)
        ack = await js.publish(record.letter.original_subject, record.payload, headers=headers or None)
        results.append(ReplayResult(record.id, record.letter.original_subject,
                                    "duplicate" if ack.duplicate else "replayed"))
    return results
