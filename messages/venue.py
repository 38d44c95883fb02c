"""The order-entry session between a gateway and a venue (core NATS request/reply, like FIX).

Not stored in a stream: the gateway turns replies into execution events; the venue keeps its own
record (the drop copy) in `venue.<venue>.dropcopy`.

As FIX venues do, the venue echoes the client's own fields of a new order (`account`,
`allocation_profile`) on every report of it, so a drop-copy record alone says whose order it is.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from messages.base import AccountId, Message, OrderId, OrderType, Price, Quantity, Side, Symbol, TimeInForce

__all__ = ["ExecReport", "NewOrderSingle", "OrderCancelRequest", "OrderMassCancelRequest", "OrderStatusRequest",
           "SessionReply", "SessionRequest"]


class NewOrderSingle(Message):
    op: Literal["new"] = "new"
    cl_ord_id: OrderId
    symbol: Symbol
    side: Side
    qty: Quantity
    price: Price | None = None
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.DAY
    #: Client fields the venue does not use, echoed on every report of the order.
    account: AccountId | None = None
    allocation_profile: AccountId | None = None


class OrderStatusRequest(Message):
    """Every report of an order so far (none when the venue does not know it).

    With `close_if_unknown` (the order as it was sent) the answer is final: an order the venue does
    not have is recorded there as rejected with `reason` (journaled like any order), so a copy of its
    new-order request that arrives later is refused as a duplicate. A gateway giving up on an order
    asks this way: the venue's record and the gateway's then agree, whatever was still on the wire."""

    op: Literal["status"] = "status"
    cl_ord_id: OrderId
    close_if_unknown: NewOrderSingle | None = None
    reason: str = ""

    @model_validator(mode="after")
    def _same_order(self) -> Self:
        if self.close_if_unknown is not None and self.close_if_unknown.cl_ord_id != self.cl_ord_id:
            raise ValueError("close_if_unknown must be the order asked about")
        return self


class OrderCancelRequest(Message):
    """Cancel a resting order. The reply carries the "canceled" report or a "rejected" refusal."""

    op: Literal["cancel"] = "cancel"
    cl_ord_id: OrderId


class OrderMassCancelRequest(Message):
    """Cancel every resting order (of one account, if given): the kill switch at the venue. The reply
    carries the "canceled" reports (also in the drop copy); nothing resting is no error."""

    op: Literal["mass_cancel"] = "mass_cancel"
    account: AccountId | None = None


#: Whatever a gateway may send on the session.
SessionRequest = NewOrderSingle | OrderStatusRequest | OrderCancelRequest | OrderMassCancelRequest


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
    #: False: caused by this order's own new-order request, and returned in its reply. True: anything
    #: else (a fill of a resting order caused by another order or a quote move, a cancel, an expiry).
    #: Every report, solicited or not, is in the drop copy.
    unsolicited: bool = False
    #: The order's price as sent (None for a MARKET order), and the client fields echoed from it.
    price: Price | None = None
    account: AccountId | None = None
    allocation_profile: AccountId | None = None


class SessionReply(Message):
    ok: bool
    #: True when the venue already had this client order id (the reports are its current record).
    duplicate: bool = False
    error: str = ""
    reports: tuple[ExecReport, ...] = ()
