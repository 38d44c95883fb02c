"""The venue's journaled commands (book mode): what a venue executes, in the order it journaled them.
Replaying them in that order rebuilds the venue exactly (see actors.domain.book_venue)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from messages.base import Message, OrderId
from messages.venue import NewOrderSingle

__all__ = ["CancelCommand", "Command", "ExpireCommand", "JournalRecord", "MassCancelCommand", "NewCommand",
           "RejectCommand", "TickCommand"]



class NewCommand(Message):
    cmd: Literal["new"] = "new"
    order: NewOrderSingle


class RejectCommand(Message):
    """A new order the venue decided to refuse (fault injection): the decision itself is journaled."""

    cmd: Literal["reject"] = "reject"
    order: NewOrderSingle
    reason: str


class CancelCommand(Message):
    cmd: Literal["cancel"] = "cancel"
    cl_ord_id: OrderId


class MassCancelCommand(Message):
    """Cancel every resting client order (of one account, if given): the kill switch at the venue."""

    cmd: Literal["mass_cancel"] = "mass_cancel"
    account: str | None = None


class TickCommand(Message):
    """Every reference price takes one random-walk step and the quotes move."""

    cmd: Literal["tick"] = "tick"


class ExpireCommand(Message):
    """End of day: every resting order expires, then the client orders finished before the previous end
    of day are forgotten. `day`: the trading day it closes (see actors.domain.venue_calendar); a day closes once.
    None (journals written before days were recorded): expire and forget, no day is recorded."""

    cmd: Literal["expire"] = "expire"
    day: int | None = None


Command = Annotated[NewCommand | RejectCommand | CancelCommand | MassCancelCommand | TickCommand | ExpireCommand,
                    Field(discriminator="cmd")]


class JournalRecord(Message):
    """One entry of the venue's input journal: the n-th command (n counts from 1)."""

    n: int = Field(ge=1)
    command: Command
