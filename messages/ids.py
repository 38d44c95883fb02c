"""Deterministic identifiers: a re-processed input republishes the same event id."""

from __future__ import annotations

import re
import uuid

__all__ = ["ORDER_ID_PATTERN", "derive_event_id", "execution_event_id", "is_valid_order_id", "new_order_id",
           "order_received_id"]

_NAMESPACE = uuid.UUID("6f1c9a4e-2b57-4c38-9d0e-7b3f1a2c5d81")

#: Client order ids: 1-64 characters, letters, digits, '-', '_', '.', ':'.
ORDER_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
_ORDER_ID = re.compile(ORDER_ID_PATTERN)


def derive_event_id(cause: uuid.UUID | str, event_type: str, discriminator: str = "") -> uuid.UUID:
    """The id of the event of `event_type` caused by `cause` (plus a discriminator for many)."""
    return uuid.uuid5(_NAMESPACE, f"{cause}|{event_type}|{discriminator}")


def order_received_id(order_id: str) -> uuid.UUID:
    """The same order id twice is one order: its OrderReceived always has this id."""
    return uuid.uuid5(_NAMESPACE, f"order|{order_id}")


def execution_event_id(venue: str, exec_id: str, event_type: str) -> uuid.UUID:
    """The event for one venue report has this id whichever path published it (the order's reply, the
    drop copy, a status answer): the same fact is one event, and the stream drops a second copy."""
    return uuid.uuid5(_NAMESPACE, f"exec|{venue}|{exec_id}|{event_type}")


def new_order_id() -> str:
    return f"O-{uuid.uuid4().hex[:20]}"


def is_valid_order_id(order_id: str) -> bool:
    return bool(_ORDER_ID.match(order_id))
