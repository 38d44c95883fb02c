"""What a child process is told to become (`ChildPayload`, JSON): the composition root (cluster) writes
it, the host reads it. Everything a child needs is in it: its kind and name, the broker, its stage's
definition and the stage's own settings, the consumers it owns; nothing of the system's whole config."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from actors.domain.settings import Settings
from actors.runtime.consumer_spec import ConsumerSpec

__all__ = ["ChildPayload"]


class ChildPayload(Settings):
    #: stage: a StageDef's replica; venue: a venue simulator; projection: the positions projection.
    kind: Literal["stage", "venue", "projection"]
    #: The system's name (Ray namespace of its actors).
    system: str
    nats_url: str
    partitions: int = Field(ge=1)
    #: The process leads its own session (see supervision.scheduling).
    own_session: bool = True
    #: Handler exceptions by type name -> resume, restart, stop or escalate.
    deciders: dict[str, str] = {}
    #: kind "stage": the StageDef's `module:attribute`.
    stage: str | None = None
    #: The stage's (the venue's, the projection's) own settings, checked against its model.
    settings: dict[str, Any] = {}
    #: The consumers it owns (for a stage: every consumer of its partitions, or of its venue).
    consumers: tuple[ConsumerSpec, ...] = ()
    venue: str | None = None
    #: A warm standby: started and connected, it waits to take a replica's place (`assign`).
    standby: bool = False

    @property
    def owned_partitions(self) -> tuple[int, ...]:
        return tuple(sorted({c.partition for c in self.consumers if c.partition is not None}))
