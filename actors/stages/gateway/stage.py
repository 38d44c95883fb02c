"""The gateway stage's definition: one per venue, beside the venue's session. Its approved orders (held
while the venue's breaker is open), its cancel requests (likewise), and the venue's drop copy, from which
every execution event is published; the kill switch watched, and halts swept at the venue."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from pydantic import Field

from actors.domain.gateway_orders import GatewayOrders
from actors.domain.trading_control import TradingControl
from actors.runtime.control import watch_control
from actors.stages.definition import Built, Consumes, Handler, StageDef, StageRun
from actors.stages.gateway.breaker import VenueBreaker
from actors.stages.gateway.closures import Closures
from actors.stages.gateway.halt_sweeper import HaltSweeper
from actors.stages.gateway.handlers import CancelHandler, DropCopyHandler, GatewayHandler, OrderWaits, decode_report
from actors.stages.gateway.link import VenueLink
from actors.stages.gateway.settings import GatewaySettings
from supervision.breaker import BreakerState

__all__ = ["STAGE", "GatewayStageSettings"]

log = logging.getLogger(__name__)

_READY_S = 30.0


class GatewayStageSettings(GatewaySettings):
    partitions: int = Field(ge=1)


async def _sweep_halted(sweeper: HaltSweeper, changed: asyncio.Event) -> None:
    """Mass-cancel the resting orders of halted scopes at once on a change, and again while it lasts."""
    while True:
        now = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), 1.0)
            now = True
        changed.clear()
        try:
            await sweeper.sweep(force=now)
        except Exception as exc:  # keep sweeping: a venue outage must not end the halt's cancels
            log.warning("halt sweep failed: %r", exc)


async def build(run: StageRun) -> Built:
    settings: GatewayStageSettings = run.settings
    assert run.venue is not None, "a gateway runs for one venue"
    control, changed, loaded = TradingControl(), asyncio.Event(), asyncio.Event()
    tasks: list[asyncio.Task[Any]] = [asyncio.create_task(watch_control(run.js, control, loaded, changed.set,
                                                                        run.alarms))]
    await asyncio.wait_for(loaded.wait(), _READY_S)
    breaker = VenueBreaker(run.nc, run.venue, settings.breaker.settings(settings.call_timeout))
    await breaker.start()
    link = VenueLink(run.nc, run.venue, settings, breaker)
    waits = OrderWaits()
    orders = GatewayOrders(run.venue, on_change=waits.changed)
    placed = GatewayHandler(link, orders, settings.partitions, waits, Closures(run.js, run.venue), control,
                            run.alarms, run.faults)
    tasks.append(asyncio.create_task(_sweep_halted(HaltSweeper(link, control), changed)))

    def gate() -> float:  # the venue's breaker is open: take no new orders or cancels (they wait in their stream)
        return breaker.wait_hint() if breaker.breaker.state is BreakerState.OPEN else 0.0

    def stats() -> dict[str, Any]:
        return {"orders": {"in_doubt": len(orders.in_doubt()), "corrections": orders.corrections}}

    return Built(
        handlers={"approved": Handler(placed, gated=True),
                  "cancel": Handler(CancelHandler(link, orders, settings.partitions), gated=True),
                  "dropcopy": Handler(DropCopyHandler(link, orders, settings.partitions, run.alarms), decode_report)},
        tasks=tasks, gate=gate, close=breaker.stop,
        on_stopping=link.release,  # orders waiting on the venue go to the next process, not hold the stop up
        on_reconnected=link.wake,  # answers on the wire may be lost: every order waiting asks again now
        stats=stats)


STAGE = StageDef(
    name="gateway",
    scope="venue",
    consumes=(
        # The approved orders first (the loop that places them), then cancels and the venue's record.
        Consumes("approved", "ORDERS_APPROVED", "orders.approved.{venue}", "gateway-{venue}"),
        Consumes("cancel", "ORDERS_CANCEL", "orders.cancel.{venue}", "gateway-{venue}-cancel"),
        Consumes("dropcopy", "VENUE", "venue.{venue}.dropcopy", "gateway-{venue}-dropcopy"),
    ),
    publishes=("executions.*.*",),
    settings=GatewayStageSettings,
    build=build,
)
