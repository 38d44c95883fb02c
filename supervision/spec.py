"""What a supervisor supervises, as data (`TreePlan`): the tree of supervisors (`NodeSpec`) and children
(`ChildSpec`), the pools of warm standbys, and how to start a child's process. The system's composition
root writes the plan; supervision knows no stage by name: a child's payload is opaque to it, handed to
the host actor class the plan names (`module:attribute`)."""

from __future__ import annotations

import importlib
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from supervision.settings import SupervisionConfig

__all__ = ["ChildSpec", "NodeSpec", "Restart", "StandbyPool", "TreePlan", "load_host"]


class Restart(StrEnum):
    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal exit
    TEMPORARY = "temporary"  # never restarted


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ChildSpec(_Model):
    id: str
    #: A label of what it is (a stage's name, "venue", "positions"): for people and metrics.
    kind: str
    num_cpus: float = Field(gt=0)
    #: What the host actor is told the child is (JSON, opaque here).
    payload: str
    restart: Restart = Restart.PERMANENT
    #: How long the child may drain (finish and ack its batch in hand) before it is killed.
    shutdown: float = 10.0
    #: The standby pool whose members can take its place (None: none can).
    pool: str | None = None


class NodeSpec(_Model):
    """A supervisor: its strategy and restart intensity over its ordered members (children or supervisors)."""

    id: str
    strategy: str
    intensity: int
    period: float
    members: tuple[ChildSpec | NodeSpec, ...]

    def walk(self) -> list[ChildSpec]:
        """Every child under this supervisor, in start order."""
        out: list[ChildSpec] = []
        for member in self.members:
            out.extend(member.walk() if isinstance(member, NodeSpec) else [member])
        return out


class StandbyPool(_Model):
    """Warm standbys started ahead of time; one takes a failed child's place (`assign`)."""

    name: str
    count: int = Field(ge=0)
    num_cpus: float = Field(gt=0)
    #: The standby's own payload (JSON, opaque here).
    payload: str


class TreePlan(_Model):
    #: The system's name: the namespace of its actors, and the prefix of their names.
    system: str
    nats_url: str
    supervision: SupervisionConfig
    root: NodeSpec
    pools: tuple[StandbyPool, ...] = ()
    #: The Ray actor class every child runs in (`module:attribute`), created with (payload, name, lead_session).
    host: str
    #: Keys of the BREAKERS bucket whose states `status()` shows.
    breakers: tuple[str, ...] = ()


def load_host(path: str) -> Any:
    """The host actor class at `module:attribute`."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)


NodeSpec.model_rebuild()
