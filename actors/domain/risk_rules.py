"""Pure pre-trade risk rules (SEC 15c3-5 style): an order, its account's limits and numbers in, a
rejection or None out.

No Ray, NATS or state here. The stateless rules (`RULES`) take ``(order, limits, reference_price)``;
the stateful ones take the numbers a caller (`actors.domain.risk_state.RiskState`) folded from events.
A limit that is None is not checked; a value exactly at a limit passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_UP, Decimal
from typing import Protocol

from actors.domain.risk_limits import RiskLimits
from messages.base import OrderType, Side
from messages.commands import OrderSpec

__all__ = [
    "RULES",
    "Rejection",
    "Rule",
    "check_order",
    "collar",
    "duplicate_order_id",
    "is_reducing",
    "max_gross_exposure",
    "max_notional",
    "max_order_qty",
    "max_position",
    "projected_position",
    "rate_throttle",
    "restricted_symbol",
]


@dataclass(frozen=True)
class Rejection:
    """Why an order failed a rule: the rule's name, a sentence, and the limit and value compared."""

    rule: str
    reason: str
    limit: str | None
    value: str | None


class Rule(Protocol):
    """A stateless rule; `reference_price` is the symbol's reference price when one is known."""

    def __call__(
        self, order: OrderSpec, limits: RiskLimits, reference_price: Decimal | None = None
    ) -> Rejection | None: ...


# --- stateless rules -------------------------------------------------------------------------------


def restricted_symbol(
    order: OrderSpec, limits: RiskLimits, reference_price: Decimal | None = None
) -> Rejection | None:
    """Reject any order in a symbol on the account's restricted list."""
    if order.symbol not in limits.restricted_symbols:
        return None
    return Rejection(
        rule="restricted_symbol",
        reason=f"symbol {order.symbol} is restricted for account {order.account}",
        limit=",".join(limits.restricted_symbols),
        value=order.symbol,
    )


def max_order_qty(order: OrderSpec, limits: RiskLimits, reference_price: Decimal | None = None) -> Rejection | None:
    """Reject an order whose quantity exceeds `max_order_qty` (equal passes)."""
    limit = limits.max_order_qty
    if limit is None or order.qty <= limit:
        return None
    return Rejection(
        rule="max_order_qty",
        reason=f"quantity {order.qty} exceeds max_order_qty {limit}",
        limit=str(limit),
        value=str(order.qty),
    )


def max_notional(order: OrderSpec, limits: RiskLimits, reference_price: Decimal | None = None) -> Rejection | None:
    """Reject an order whose notional (qty * price, in Decimal) exceeds `max_notional` (equal passes).

    A market order is valued at the reference price; with none known it cannot be valued, so with
    `max_notional` set it is rejected.
    """
    limit = limits.max_notional
    if limit is None:
        return None
    price = order.price if order.price is not None else reference_price
    if price is None:
        return Rejection(
            rule="max_notional",
            reason="a market order has no price to value against max_notional",
            limit=str(limit),
            value=None,
        )
    notional = price * order.qty
    if notional <= limit:
        return None
    return Rejection(
        rule="max_notional",
        reason=f"notional {notional} exceeds max_notional {limit}",
        limit=str(limit),
        value=str(notional),
    )


def collar(order: OrderSpec, limits: RiskLimits, reference_price: Decimal | None = None) -> Rejection | None:
    """Reject a limit price more than `collar_pct` percent away from the reference price.

    The band is inclusive: ``|price - ref| <= ref * collar_pct / 100`` passes. A market order passes
    (it has no price of its own), and so does any order when no reference price is known yet.
    """
    pct = limits.collar_pct
    if pct is None or order.order_type is OrderType.MARKET or order.price is None or reference_price is None:
        return None
    band = reference_price * pct / 100
    if abs(order.price - reference_price) <= band:
        return None
    # percent off the reference, rounded up to 4 places so a rejected value never reads as the limit
    exact = abs(order.price - reference_price) * 100 / reference_price
    deviation = format(exact.quantize(Decimal("0.0001"), rounding=ROUND_UP).normalize(), "f")
    return Rejection(
        rule="collar",
        reason=(
            f"price {order.price} is {deviation}% from reference {reference_price}, outside the "
            f"collar of {pct}% ({reference_price - band} to {reference_price + band})"
        ),
        limit=str(pct),
        value=deviation,
    )


#: The stateless rules, checked in this order (the stateful ones need `RiskState`).
RULES: tuple[Rule, ...] = (restricted_symbol, max_order_qty, max_notional, collar)


def check_order(
    order: OrderSpec,
    limits: RiskLimits,
    rules: tuple[Rule, ...] = RULES,
    *,
    reference_price: Decimal | None = None,
) -> Rejection | None:
    """The first stateless rule the order breaks, or None when it passes them all."""
    for rule in rules:
        rejection = rule(order, limits, reference_price)
        if rejection is not None:
            return rejection
    return None


# --- stateful rules: the caller supplies the folded numbers ----------------------------------------


def duplicate_order_id(order: OrderSpec, seen: bool) -> Rejection | None:
    """Reject an order id this partition has already decided on."""
    if not seen:
        return None
    return Rejection(
        rule="duplicate_order_id",
        reason=f"order id {order.order_id} was already seen",
        limit=None,
        value=order.order_id,
    )


def projected_position(side: Side, qty: int, position: int, working_same_side: int) -> int:
    """The signed position if every working order on `side` and this one filled (buys +, sells -)."""
    if side is Side.BUY:
        return position + working_same_side + qty
    return position - working_same_side - qty


def is_reducing(side: Side, qty: int, position: int, working_same_side: int) -> bool:
    """True when the order (with the working orders on its side) only brings the position towards
    zero and cannot take it through zero."""
    projected = projected_position(side, qty, position, working_same_side)
    if side is Side.BUY:
        return position < 0 and projected <= 0
    return position > 0 and projected >= 0


def max_position(order: OrderSpec, limits: RiskLimits, position: int, working_same_side: int) -> Rejection | None:
    """Reject an order that would take |position + working on its side + order| over `max_position`.

    An order that only reduces the position (`is_reducing`) always passes, so an account over its
    limit can still trade back under it.
    """
    limit = limits.max_position
    if limit is None or is_reducing(order.side, order.qty, position, working_same_side):
        return None
    projected = projected_position(order.side, order.qty, position, working_same_side)
    if abs(projected) <= limit:
        return None
    return Rejection(
        rule="max_position",
        reason=(
            f"{order.side.value} {order.qty} {order.symbol} would make the position {projected} "
            f"(position {position}, working {order.side.value.lower()} {working_same_side}), "
            f"over max_position {limit}"
        ),
        limit=str(limit),
        value=str(abs(projected)),
    )


def max_gross_exposure(
    order: OrderSpec,
    limits: RiskLimits,
    exposure: Decimal | None,
    order_notional: Decimal | None,
    reducing: bool = False,
) -> Rejection | None:
    """Reject an order that would take the account's gross exposure over `max_gross_exposure`.

    `exposure` is the account's current gross exposure (positions at their prices plus working
    order notional) and `order_notional` the order's own; None means it could not be valued (no
    price known), which rejects. A `reducing` order always passes.
    """
    limit = limits.max_gross_exposure
    if limit is None or reducing:
        return None
    if exposure is None or order_notional is None:
        return Rejection(
            rule="max_gross_exposure",
            reason=f"no price is known to value the exposure of account {order.account} against max_gross_exposure",
            limit=str(limit),
            value=None,
        )
    total = exposure + order_notional
    if total <= limit:
        return None
    return Rejection(
        rule="max_gross_exposure",
        reason=(
            f"gross exposure {total} (current {exposure} + order {order_notional}) "
            f"exceeds max_gross_exposure {limit}"
        ),
        limit=str(limit),
        value=str(total),
    )


def rate_throttle(order: OrderSpec, limits: RiskLimits, recent: int) -> Rejection | None:
    """Reject an order when `recent` orders were already approved for the account within the window."""
    limit = limits.max_orders_per_window
    if limit is None or recent + 1 <= limit:
        return None
    return Rejection(
        rule="max_orders_per_window",
        reason=(
            f"{recent + 1} orders for account {order.account} in {limits.rate_window:g}s "
            f"exceed max_orders_per_window {limit}"
        ),
        limit=str(limit),
        value=str(recent + 1),
    )
