"""One definition per stage (`StageDef`): what it consumes and publishes, its own settings model, the
streams of its own, and how its handlers are built. Consumer specs, child specs, standby pools and the
worker that runs a replica are all generated from the definitions (see cluster.stages): a new stage is
one module with its `StageDef` and one registry entry.

A stage is `scope="partition"` (its replicas share the partitions; each partition's consumers are owned
by one replica) or `scope="venue"` (one per venue, beside the venue's session, in its subtree).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from actors.domain.settings import Settings
from actors.runtime.alarms import Alarms
from actors.runtime.faults import FaultPoints
from actors.runtime.stage import StageHandler
from messages import Envelope

__all__ = ["Built", "Consumes", "Handler", "Snapshots", "StageDef", "StageRun", "load_stage"]

#: A decoder: a message of the consumer's stream -> (envelope, what the handler takes).
Decoder = Callable[[Msg], tuple[Envelope, Any]]


@dataclass(frozen=True)
class Consumes:
    """One durable consumer of every partition (or venue) the stage runs on. `subject` and `durable`
    are templates with `{partition}` or `{venue}` in them."""

    role: str
    stream: str
    subject: str
    durable: str
    ack_all: bool = False


@dataclass(frozen=True)
class Handler:
    """What takes one role's messages: the handler, the decoder of its stream (None: envelopes), and
    whether the loop holds while the stage's gate is shut (a venue's open breaker)."""

    handler: StageHandler
    decoder: Decoder | None = None
    gated: bool = False


@dataclass
class StageRun:
    """What a stage's `build` gets: the connection, its own settings, where it runs, its tools."""

    nc: Client
    js: JetStreamContext
    name: str
    settings: Any
    partitions: int
    owned_partitions: tuple[int, ...]
    venue: str | None
    alarms: Alarms
    faults: FaultPoints
    #: What the stage's `rebuild` hook returned (None without one).
    state: Any = None


@dataclass(frozen=True)
class Snapshots:
    """How a built stage's state is snapshotted: the worker calls `save` every `every` seconds when
    `version()` moved since the last save, and once more on a clean stop (so the next owner replays
    only the log after it). A failed save is logged and tried again later: the log still has everything."""

    save: Callable[[], Awaitable[object]]
    version: Callable[[], int]
    every: float = 5.0


@dataclass
class Built:
    """A built stage: a handler per role, the tasks it started (cancelled when it stops), a gate for
    gated roles (seconds to hold, 0 to go), and hooks: snapshots (see `Snapshots`), on_stopping (before
    the loops drain), on_stop (a clean stop, after the loops drained), close (always, last),
    on_reconnected, stats (beside the loops' own)."""

    handlers: dict[str, Handler]
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    gate: Callable[[], float] | None = None
    on_stop: Callable[[], Awaitable[None]] | None = None
    close: Callable[[], Awaitable[None]] | None = None
    on_reconnected: Callable[[], None] | None = None
    stats: Callable[[], dict[str, Any]] | None = None
    snapshots: Snapshots | None = None
    #: Called once when the stage starts to stop, before its loops drain: a handler that waits on
    #: something outside (a venue) lets its input go then (`actors.runtime.stage.Released`).
    on_stopping: Callable[[], None] | None = None


@dataclass(frozen=True)
class StageDef:
    name: str
    scope: Literal["partition", "venue"]
    consumes: tuple[Consumes, ...]
    #: Subject patterns it publishes to (its outputs; dead letters go to dlq.<name>).
    publishes: tuple[str, ...]
    settings: type[Settings]
    build: Callable[[StageRun], Awaitable[Built]]
    #: Streams of its own (name, subjects), created with the system's: a new stage's outputs.
    streams: tuple[tuple[str, tuple[str, ...]], ...] = ()
    #: A stage whose state outlives its process: the state of the partitions a replica takes (its last
    #: snapshot and the log after it), built before `build`, which finds it in `StageRun.state`.
    rebuild: Callable[[StageRun], Awaitable[Any]] | None = None


def load_stage(path: str) -> StageDef:
    """The StageDef at `module:attribute` (how a child process finds the stage it runs)."""
    module, _, attribute = path.partition(":")
    definition = getattr(importlib.import_module(module), attribute or "STAGE")
    if not isinstance(definition, StageDef):
        raise TypeError(f"{path} is not a StageDef")
    return definition
