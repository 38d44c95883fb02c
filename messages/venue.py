"""The order-entry session between a gateway and a venue (core NATS request/reply, like FIX).

Not stored in a stream: the gateway turns replies into execution events; the venue keeps its own
record (the drop copy) in `venue.<venue>.dropcopy`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from messages.base import Message, OrderId, OrderType, Price, Quantity, Side, Symbol, TimeInForce

__all__ = ["ExecReport", "NewOrderSingle", "OrderCancelRequest", "OrderStatusRequest", "SessionReply"]


class NewOrderSingle(Message):
    op: Literal["new"] = "new"
    cl_ord_id: OrderId
    symbol: Symbol
    side: Side
    qty: Quantity
    price: Price | None = None
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.DAY


class OrderStatusRequest(Message):
    op: Literal["status"] = "status"
    cl_ord_id: OrderId


class OrderCancelRequest(Message):
    """Cancel a resting order. The reply carries the "canceled" report or a "rejected" refusal."""

    op: Literal["cancel"] = "cancel"
    cl_ord_id: OrderId


class ExecReport(Message):
    """One execution report; `exec_id` is unique per venue and stable (the venue stores it)."""

    exec_id: str
    cl_ord_id: OrderId
    kind: Literal["accepted", "fill", "canceled", "rejected"]
    venue_order_id: str
    symbol: Symbol
    side: Side
    order_qty: Quantity
    last_qty: int = Field(0, ge=0)
    last_px: Price | None = None
    cum_qty: int = Field(0, ge=0)
    avg_px: Price | None = None
    leaves_qty: int = Field(0, ge=0)
    reason: str = ""
    #: False: caused by this order's own new-order request, and returned in its reply (the gateway
    #: publishes it from the reply). True: anything else (a fill of a resting order caused by another
    #: order or a quote move, a cancel, an expiry): the gateway publishes it from the drop copy.
    unsolicited: bool = False


class SessionReply(Message):
    ok: bool
    #: True when the venue already had this client order id (the reports are its current record).
    duplicate: bool = False
    error: str = ""
    reports: tuple[ExecReport, ...] = ()
