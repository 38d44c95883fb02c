"""Pure pre-trade risk checks: an order and its account's limits in, a rejection or None out.

No Ray or NATS here. Each rule is a function ``(order, limits) -> Rejection | None``; `RULES` runs
them in order and the first rejection wins. A limit that is None is not checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cluster.config import RiskLimits
from messages.commands import OrderSpec

__all__ = ["RULES", "Rejection", "Rule", "check_order", "max_notional", "max_order_qty"]


@dataclass(frozen=True)
class Rejection:
    """Why an order failed a rule: the rule's name, a sentence, and the limit and value compared."""

    rule: str
    reason: str
    limit: str | None
    value: str | None


Rule = Callable[[OrderSpec, RiskLimits], Rejection | None]


def max_order_qty(order: OrderSpec, limits: RiskLimits) -> Rejection | None:
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


def max_notional(order: OrderSpec, limits: RiskLimits) -> Rejection | None:
    """Reject an order whose notional (qty * price, in Decimal) exceeds `max_notional` (equal passes).

    A market order has no price, so it cannot be valued: with `max_notional` set it is rejected.
    """
    limit = limits.max_notional
    if limit is None:
        return None
    if order.price is None:
        return Rejection(
            rule="max_notional",
            reason="a market order has no price to value against max_notional",
            limit=str(limit),
            value=None,
        )
    notional = order.price * order.qty
    if notional <= limit:
        return None
    return Rejection(
        rule="max_notional",
        reason=f"notional {notional} exceeds max_notional {limit}",
        limit=str(limit),
        value=str(notional),
    )


#: The rules every order must pass, checked in this order.
RULES: tuple[Rule, ...] = (max_order_qty, max_notional)


def check_order(order: OrderSpec, limits: RiskLimits, rules: tuple[Rule, ...] = RULES) -> Rejection | None:
    """The first rule the order breaks, or None when it passes them all."""
    for rule in rules:
        rejection = rule(order, limits)
        if rejection is not None:
            return rejection
    return None
