"""The halt sweeper asks the venue to mass-cancel what rests for each halted scope, and only those."""

from __future__ import annotations

import json

from actors.domain.trading_control import GLOBAL_KEY, TradingControl, account_key
from actors.stages.gateway.halt_sweeper import HaltSweeper
from messages.venue import OrderMassCancelRequest, SessionReply


class RecordingLink:
    """Stands in for the venue session: records the mass cancels it is asked to send."""

    def __init__(self) -> None:
        self.sent: list[str | None] = []
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def allow(self) -> bool:
        return True

    async def send(self, request: OrderMassCancelRequest) -> SessionReply:
        self.sent.append(request.account)
        return SessionReply(ok=True)


def halted(control: TradingControl, key: str) -> None:
    control.apply(key, json.dumps({"state": "HALTED", "reason": "test"}).encode())


def sweeper(control: TradingControl) -> tuple[HaltSweeper, RecordingLink]:
    link = RecordingLink()
    return HaltSweeper(link, control), link  # type: ignore[arg-type]


async def test_nothing_is_canceled_while_nothing_is_halted() -> None:
    sweep, link = sweeper(TradingControl())
    await sweep.sweep()
    assert link.sent == []


async def test_a_halted_account_gets_a_mass_cancel_of_its_own_orders_only() -> None:
    control = TradingControl()
    halted(control, account_key("ACC2"))
    sweep, link = sweeper(control)
    await sweep.sweep()
    assert link.sent == ["ACC2"]


async def test_a_global_halt_mass_cancels_every_account() -> None:
    control = TradingControl()
    halted(control, GLOBAL_KEY)
    halted(control, account_key("ACC2"))
    sweep, link = sweeper(control)
    await sweep.sweep()
    assert link.sent == [None]


async def test_the_mass_cancel_is_sent_again_while_the_halt_lasts_but_not_more_often_than_the_resend_interval() -> None:
    control = TradingControl()
    halted(control, account_key("ACC1"))
    sweep, link = sweeper(control)
    await sweep.sweep()
    link.now = 1.0
    await sweep.sweep()
    link.now = 2.5
    await sweep.sweep()
    assert link.sent == ["ACC1", "ACC1"]


async def test_a_kill_switch_change_sends_the_mass_cancel_at_once() -> None:
    control = TradingControl()
    halted(control, account_key("ACC1"))
    sweep, link = sweeper(control)
    await sweep.sweep()
    await sweep.sweep(force=True)
    assert link.sent == ["ACC1", "ACC1"]
