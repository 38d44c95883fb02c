"""The risk stage's handler over its partition state: decisions fold into the state, executions too."""

from __future__ import annotations

import json
from decimal import Decimal

from actors.domain.trading_control import TradingControl, account_key
from actors.runtime.refprices import ReferencePrices
from actors.stages.risk import RiskHandler
from cluster.config import parse_config
from cluster.stages import stage_settings
from messages import OrderApproved, OrderCanceled, OrderFilled, OrderReceived, OrderRejected, wrap
from messages.ids import order_received_id


def config() -> object:
    return stage_settings(parse_config({"partitions": 2, "venues": {"SIM": {"mode": "book"}},
                                        "risk": {"default": {"max_position": 1000, "collar_pct": 5}}}), "risk")


def received(order_id: str, qty: int = 600, price: str = "100", side: str = "BUY") -> tuple[object, OrderReceived]:
    order = OrderReceived(order_id=order_id, account="ACC1", symbol="AAPL", side=side, qty=qty, price=Decimal(price))
    return wrap(order, event_id=order_received_id(order_id)), order


async def decide(handler: RiskHandler, order_id: str, **kwargs: object) -> object:
    envelope, order = received(order_id, **kwargs)
    (out,) = await handler.handle(envelope, order)
    return out.envelope.event()


async def test_working_orders_count_against_max_position() -> None:
    handler = RiskHandler(config())
    assert isinstance(await decide(handler, "O1"), OrderApproved)
    rejected = await decide(handler, "O2")
    assert isinstance(rejected, OrderRejected) and rejected.rule == "max_position"


async def test_a_redelivered_approved_order_is_approved_again_not_rejected_as_a_duplicate() -> None:
    handler = RiskHandler(config())
    first = await decide(handler, "O1")
    again = await decide(handler, "O1")
    assert isinstance(first, OrderApproved) and isinstance(again, OrderApproved)


async def test_a_cancel_releases_the_working_quantity() -> None:
    handler = RiskHandler(config())
    await decide(handler, "O1")
    await handler.handle(*_wrapped(OrderCanceled(order_id="O1", account="ACC1", symbol="AAPL", side="BUY",
                                                 venue="SIM", order_qty=600, cum_qty=0, reason="client")))
    assert isinstance(await decide(handler, "O2"), OrderApproved)


async def test_a_fill_moves_working_quantity_into_the_position() -> None:
    handler = RiskHandler(config())
    await decide(handler, "O1")
    await handler.handle(*_wrapped(OrderFilled(order_id="O1", account="ACC1", symbol="AAPL", side="BUY",
                                               venue="SIM", order_qty=600, exec_id="E1", last_qty=600,
                                               last_px=Decimal(100), cum_qty=600, avg_px=Decimal(100),
                                               leaves_qty=0)))
    _, state = handler._state("ACC1")
    assert state.position("ACC1", "AAPL") == 600 and state.working("ACC1", "AAPL") == (0, 0)


async def test_the_collar_uses_the_venues_reference_price() -> None:
    prices = ReferencePrices()
    prices.apply("SIM.AAPL", json.dumps({"price": "90"}).encode())
    handler = RiskHandler(config(), prices=prices)
    rejected = await decide(handler, "O1", qty=10, price="100")
    assert isinstance(rejected, OrderRejected) and rejected.rule == "collar" and "reference 90" in rejected.reason


async def test_a_halted_account_is_rejected_with_the_operators_reason() -> None:
    control = TradingControl()
    control.apply(account_key("ACC1"), json.dumps({"state": "HALTED", "reason": "desk review"}).encode())
    rejected = await decide(RiskHandler(config(), control), "O1", qty=10)
    assert isinstance(rejected, OrderRejected)
    assert rejected.reason == "trading is halted for account ACC1 (desk review)"


def _wrapped(event: object) -> tuple[object, object]:
    return wrap(event, event_id=order_received_id(f"x-{event.order_id}-{type(event).__name__}")), event
