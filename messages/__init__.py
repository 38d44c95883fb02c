"""The wire contract: frozen pydantic models of commands and events, the envelope, subjects."""

from messages import subjects
from messages.base import Event, Message, OrderType, Side, TimeInForce
from messages.commands import CancelOrder, NewOrder, OrderSpec
from messages.envelope import MSG_ID_HEADER, DecodeError, Envelope, decode, encode, wrap
from messages.events import (
    EVENT_TYPES,
    AllocationCompleted,
    AllocationLine,
    BreakerChanged,
    ChildFailed,
    ChildRestarted,
    ChildStarted,
    DeadLettered,
    GaveUp,
    OrderAccepted,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderReceived,
    OrderRejected,
    OrderVenueRejected,
    SupervisionEvent,
)
from messages.ids import derive_event_id, new_order_id, order_received_id

__all__ = [
    "EVENT_TYPES",
    "MSG_ID_HEADER",
    "AllocationCompleted",
    "AllocationLine",
    "BreakerChanged",
    "CancelOrder",
    "ChildFailed",
    "ChildRestarted",
    "ChildStarted",
    "DeadLettered",
    "DecodeError",
    "Envelope",
    "Event",
    "GaveUp",
    "Message",
    "NewOrder",
    "OrderAccepted",
    "OrderApproved",
    "OrderCanceled",
    "OrderFilled",
    "OrderReceived",
    "OrderRejected",
    "OrderSpec",
    "OrderType",
    "OrderVenueRejected",
    "Side",
    "SupervisionEvent",
    "TimeInForce",
    "decode",
    "derive_event_id",
    "encode",
    "new_order_id",
    "order_received_id",
    "subjects",
    "wrap",
]
