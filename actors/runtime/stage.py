"""What a stage is: a handler from one decoded event to the events it publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from messages import Envelope, Event

__all__ = ["FIRST_DELIVERY", "RESUME", "Decides", "Directed", "InputMeta", "Outgoing", "Released", "StageHandler",
           "TransientError"]

#: What a decider says when the loop is to go on (retry the input, or dead-letter it).
RESUME = "resume"


@dataclass(frozen=True)
class Outgoing:
    subject: str
    envelope: Envelope


@dataclass(frozen=True)
class InputMeta:
    """What the broker says of one input: when it stored it (epoch ns, the broker's own clock, the same
    for every stage whatever their hosts' clocks say) and how many times it was delivered."""

    stored_ns: int
    deliveries: int = 1

    @property
    def redelivered(self) -> bool:
        """Delivered before: a process before this one may have started (or finished) handling it."""
        return self.deliveries > 1


#: For a handler called outside a consumer loop (a rebuild, a test): stored at the epoch, delivered once.
FIRST_DELIVERY = InputMeta(stored_ns=0)


class TransientError(Exception):
    """A failure worth retrying later (venue timeout, broker hiccup): the message is naked with backoff."""


class Released(Exception):
    """The handler lets an input go unfinished because its process is stopping (a gateway whose order
    waits on a venue that may take long to answer): not a failure of the input. The loop hands it back
    to the broker at once (a nak, so whoever consumes next gets it now); it counts toward no attempt and
    is never dead-lettered. (On an AckPolicy.ALL consumer the whole batch is handed back.)"""


class Directed(Exception):
    """A handler failure whose decider said restart, stop or escalate: it ends the consumer loop and
    the actor's run(), and the supervisor acts on the directive. The failed message is not acked."""

    def __init__(self, directive: str, cause: BaseException) -> None:
        super().__init__(f"{directive}: {type(cause).__name__}: {cause}")
        self.directive = directive
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:
        # Crosses a process boundary as text: the cause's class may not exist on the other side.
        return _directed_from_text, (self.directive, f"{type(self.cause).__name__}: {self.cause}")


def _directed_from_text(directive: str, cause: str) -> Directed:
    return Directed(directive, RuntimeError(cause))


class Decides(Protocol):
    """A supervisor's decider, as the loop sees it: a handler's exception -> "resume" (the loop goes
    on: the input is retried or dead-lettered), or "restart", "stop" or "escalate" (the loop ends with
    `Directed`, and the supervisor acts on it)."""

    def decide(self, exc: BaseException) -> str: ...


class StageHandler(Protocol):
    #: Stage name, used for dead-letter subjects and metrics.
    stage: str
    #: Whether the messages of one batch may be handled concurrently (order is kept on the wire).
    concurrent: bool

    async def handle(self, envelope: Envelope, event: Event, meta: InputMeta) -> list[Outgoing]:
        """Events to publish for this input; raise TransientError to retry, anything else is poison."""
        ...
