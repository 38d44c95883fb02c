"""Commands: what a driver asks the system to do."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from messages.base import (
    AccountId,
    Message,
    OrderId,
    OrderType,
    Price,
    Quantity,
    Side,
    Symbol,
    TimeInForce,
    VenueId,
)

__all__ = ["CancelOrder", "NewOrder", "OrderSpec"]


class OrderSpec(Message):
    """The fields of an order, carried forward by every order event so stages stay stateless."""

    order_id: OrderId
    account: AccountId
    symbol: Symbol
    side: Side
    qty: Quantity
    price: Price | None = None
    order_type: OrderType = OrderType.LIMIT
    tif: TimeInForce = TimeInForce.DAY
    venue: VenueId = "SIM"
    allocation_profile: AccountId | None = None

    @model_validator(mode="after")
    def _price_matches_type(self) -> Self:
        if self.order_type is OrderType.LIMIT and self.price is None:
            raise ValueError("price is required for a LIMIT order")
        if self.order_type is OrderType.MARKET and self.price is not None:
            raise ValueError("price must be empty for a MARKET order")
        return self


class NewOrder(OrderSpec):
    """Place an order. The same order id twice is one order."""


class CancelOrder(Message):
    order_id: OrderId
    account: AccountId
    reason: str = "client request"
