"""Subject names, stream names and the partition function: the one place that knows them."""

from __future__ import annotations

import re
import zlib

__all__ = [
    "STREAMS",
    "StreamSpec",
    "alarm",
    "allocations",
    "control_trading",
    "dlq",
    "executions",
    "orders_approved",
    "orders_cancel",
    "orders_received",
    "orders_rejected",
    "partition_of",
    "partition_of_subject",
    "supervision",
    "venue_admin",
    "venue_dropcopy",
    "venue_input",
    "venue_session",
]

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]+$")


def _token(value: str, what: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"{what} {value!r} is not a valid subject token (letters, digits, '_' or '-')")
    return value


def partition_of(account: str, partitions: int) -> int:
    """The partition that owns an account: crc32(account) % partitions, fixed at stream creation."""
    if partitions < 1:
        raise ValueError("partitions must be >= 1")
    return zlib.crc32(account.encode("utf-8")) % partitions


def orders_received(partition: int | str) -> str:
    return f"orders.received.{partition}"


def orders_approved(venue: str) -> str:
    return f"orders.approved.{_token(venue, 'venue')}"


def orders_cancel(venue: str) -> str:
    """Cancel requests for orders at one venue (taken by that venue's gateway)."""
    return f"orders.cancel.{_token(venue, 'venue')}"


def orders_rejected(partition: int | str) -> str:
    return f"orders.rejected.{partition}"


def executions(venue: str, partition: int | str) -> str:
    return f"executions.{_token(venue, 'venue') if venue != '*' else '*'}.{partition}"


def allocations(partition: int | str) -> str:
    return f"allocations.{partition}"


def control_trading() -> str:
    """Every kill-switch change (TradingStateChanged), in order."""
    return "control.trading"


def dlq(stage: str) -> str:
    return f"dlq.{_token(stage, 'stage')}"


def alarm(kind: str) -> str:
    """Alarms (AlarmRaised) by kind; stored with the supervision events."""
    return f"supervision.alarm.{_token(kind, 'alarm kind')}"


def supervision(path: str) -> str:
    """`path` is a dotted tree path such as ``root.risk.risk-0``."""
    for part in path.split("."):
        _token(part, "supervision path element")
    return f"supervision.{path}"


def venue_dropcopy(venue: str) -> str:
    return f"venue.{_token(venue, 'venue')}.dropcopy"


def venue_input(venue: str) -> str:
    """The book-mode venue's input journal (new, cancel, tick, in execution order): its memory."""
    return f"venue.{_token(venue, 'venue')}.input"


def venue_admin(venue: str) -> str:
    """Core-NATS request/reply subject for run-time fault injection into a venue simulator."""
    return f"admin.venue.{_token(venue, 'venue')}"


def venue_session(venue: str) -> str:
    """Core-NATS request/reply subject of a venue's order-entry session (not stored)."""
    return f"session.{_token(venue, 'venue')}"


def partition_of_subject(subject: str) -> int:
    """The partition number that ends a partitioned subject."""
    return int(subject.rsplit(".", 1)[1])


class StreamSpec:
    __slots__ = ("name", "subjects")

    def __init__(self, name: str, subjects: tuple[str, ...]) -> None:
        self.name = name
        self.subjects = subjects

    def __repr__(self) -> str:
        return f"StreamSpec({self.name!r}, {self.subjects!r})"


#: Every durable stream of the system. Limits retention (by age and size from the config), so the
#: log can be replayed and audited.
STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("ORDERS_RECEIVED", ("orders.received.*",)),
    StreamSpec("ORDERS_APPROVED", ("orders.approved.*",)),
    StreamSpec("ORDERS_REJECTED", ("orders.rejected.*",)),
    StreamSpec("ORDERS_CANCEL", ("orders.cancel.*",)),
    StreamSpec("EXECUTIONS", ("executions.*.*",)),
    StreamSpec("ALLOCATIONS", ("allocations.*",)),
    StreamSpec("DLQ", ("dlq.*",)),
    StreamSpec("CONTROL", ("control.>",)),
    StreamSpec("SUPERVISION", ("supervision.>",)),
    StreamSpec("VENUE", ("venue.*.dropcopy",)),
    StreamSpec("VENUE_INPUT", ("venue.*.input",)),
)
