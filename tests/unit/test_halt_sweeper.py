"""The halt sweeper cancels the working orders of halted accounts, and only those."""

from __future__ import annotations

import json
from decimal import Decimal

from actors.gateway import HaltSweeper
from actors.gateway_orders import GatewayOrders
from actors.trading_control import TradingControl, account_key
from messages import OrderApproved
from messages.venue import ExecReport, OrderCancelRequest, SessionReply


class RecordingLink:
    """Stands in for the venue session: records the cancels it is asked to send."""

    def __init__(self) -> None:
        self.cancels: list[str] = []

    async def send(self, request: OrderCancelRequest) -> SessionReply:
        self.cancels.append(request.cl_ord_id)
        return SessionReply(ok=True, reports=())

def working(orders: GatewayOrders, order_id: str, account: str) -> None:
    orders.track(OrderApproved(order_id=order_id, account=account, symbol="AAPL", side="BUY", qty=10,
                               price=Decimal("10")))
    orders.apply(order_id, ExecReport(exec_id=f"X-{order_id}", cl_ord_id=order_id, kind="accepted",
                                      venue_order_id=f"V-{order_id}", symbol="AAPL", side="BUY", order_qty=10,
                                      cum_qty=0, leaves_qty=10))

def sweeper(control: TradingControl) -> tuple[HaltSweeper, RecordingLink]:
    orders = GatewayOrders("SIM")
    working(orders, "O1", "ACC1")
    working(orders, "O2", "ACC2")
    link = RecordingLink()
    return HaltSweeper(link, orders, control), link  # type: ignore[arg-type]

async def test_nothing_is_canceled_while_nothing_is_halted() -> None:
    sweep, link = sweeper(TradingControl())
    assert await sweep.sweep() == 0
    assert link.cancels == []

async def test_only_the_halted_accounts_working_orders_are_canceled() -> None:
    control = TradingControl()
    control.apply(account_key("ACC2"), json.dumps({"state": "HALTED", "reason": "test"}).encode())
    sweep, link = sweeper(control)
    assert await sweep.sweep() == 1
    assert link.cancels == ["O2"]
