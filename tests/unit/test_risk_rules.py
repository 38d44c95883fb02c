"""Pre-trade risk rules: each limit's boundary, the rejection's details, and skipped limits."""

from __future__ import annotations

from decimal import Decimal

import pytest

from actors.risk_rules import RULES, Rejection, check_order
from cluster.config import RiskLimits
from messages.commands import OrderSpec


def order(qty: int = 100, price: str | None = "10", order_type: str = "LIMIT") -> OrderSpec:
    return OrderSpec(
        order_id="O-1",
        account="ACC1",
        symbol="AAPL",
        side="BUY",
        qty=qty,
        price=None if price is None else Decimal(price),
        order_type=order_type,
    )


def limits(max_order_qty: int | None = None, max_notional: str | None = None) -> RiskLimits:
    return RiskLimits(
        max_order_qty=max_order_qty,
        max_notional=None if max_notional is None else Decimal(max_notional),
    )


@pytest.mark.parametrize(
    ("qty", "price", "max_qty", "max_notional", "rule"),
    [
        # max_order_qty: equal passes, one over rejects
        (500, "1", 500, None, None),
        (501, "1", 500, None, "max_order_qty"),
        (1, "1", 1, None, None),
        (2, "1", 1, None, "max_order_qty"),
        # max_notional: equal passes, a cent over rejects (Decimal, never float)
        (100, "100.01", None, "10001", None),
        (100, "100.02", None, "10001", "max_notional"),
        (3, "0.1", None, "0.3", None),
        (3, "0.10000001", None, "0.3", "max_notional"),
        (10000, "100.00", None, "1000000", None),
        (10001, "100.00", None, "1000000", "max_notional"),
        (10000, "100.00000001", None, "1000000", "max_notional"),
        # both set: quantity is checked first
        (501, "1000", 500, "1", "max_order_qty"),
        (500, "1000", 500, "1", "max_notional"),
        (500, "2", 500, "1000", None),
    ],
)
def test_an_order_passes_at_each_limit_and_is_rejected_just_over_it(
    qty: int, price: str, max_qty: int | None, max_notional: str | None, rule: str | None
) -> None:
    result = check_order(order(qty, price), limits(max_qty, max_notional))
    assert (result.rule if result else None) == rule


def test_a_quantity_rejection_names_the_rule_limit_and_value() -> None:
    assert check_order(order(qty=501), limits(max_order_qty=500)) == Rejection(
        rule="max_order_qty",
        reason="quantity 501 exceeds max_order_qty 500",
        limit="500",
        value="501",
    )


def test_a_notional_rejection_names_the_rule_limit_and_value() -> None:
    rejection = check_order(order(qty=100, price="100.02"), limits(max_notional="10001"))
    assert rejection is not None
    assert (rejection.rule, rejection.limit, rejection.value) == ("max_notional", "10001", "10002.00")
    assert "10002.00" in rejection.reason
    assert "max_notional 10001" in rejection.reason


def test_a_market_order_is_rejected_when_max_notional_is_set() -> None:
    rejection = check_order(order(price=None, order_type="MARKET"), limits(max_notional="1000000"))
    assert rejection == Rejection(
        rule="max_notional",
        reason="a market order has no price to value against max_notional",
        limit="1000000",
        value=None,
    )


def test_a_market_order_passes_when_max_notional_is_not_set() -> None:
    assert check_order(order(price=None, order_type="MARKET"), limits(max_order_qty=500)) is None


def test_a_market_order_over_max_order_qty_is_rejected_for_quantity_first() -> None:
    rejection = check_order(
        order(qty=501, price=None, order_type="MARKET"), limits(max_order_qty=500, max_notional="1")
    )
    assert rejection is not None
    assert rejection.rule == "max_order_qty"


def test_an_order_passes_when_no_limit_is_set() -> None:
    assert check_order(order(qty=10**9, price="99999999"), limits()) is None


def test_every_rule_skips_a_limit_that_is_none() -> None:
    huge = order(qty=10**9, price="99999999")
    assert all(rule(huge, limits()) is None for rule in RULES)


def test_a_rejection_cannot_be_changed() -> None:
    rejection = Rejection(rule="r", reason="why", limit=None, value=None)
    with pytest.raises(AttributeError):
        rejection.rule = "other"  # type: ignore[misc]
