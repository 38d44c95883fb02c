"""The demo's trading scenario on an order-book venue: an order that rests, fills in part against
another client's order and is canceled; a halt that cancels a working order and blocks new ones;
resume. Each step is checked, and described in one line for the demo's summary."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from decimal import Decimal

from actors.domain.risk_state import TradingState
from actors.runtime.control import set_trading_state
from actors.runtime.refprices import read_reference_prices
from cluster.client.outcome import OrderOutcome, OrderStatus
from cluster.client.trading import TradingClient
from cluster.config import VenueConfig

__all__ = ["ScenarioResult", "run_scenario"]


@dataclass
class ScenarioResult:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def step(self, passed: bool, text: str) -> None:
        self.ok &= passed
        self.lines.append(("ok   " if passed else "FAIL ") + text)


async def _until(client: TradingClient, order_id: str, statuses: set[OrderStatus],
                 timeout: float = 30) -> OrderOutcome:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        outcome = client.outcome(order_id)
        if outcome.status in statuses:
            return outcome
        await asyncio.sleep(0.02)
    return client.outcome(order_id)


async def run_scenario(client: TradingClient, venue: str, vcfg: VenueConfig, symbol: str = "AAPL") -> ScenarioResult:
    result = ScenarioResult()
    prices = await read_reference_prices(client.nc.jetstream())
    ref = prices.get(venue, symbol)
    if ref is None:
        result.step(False, f"no reference price for {symbol} at {venue} (is the venue in book mode?)")
        return result
    # Half a dollar under the reference: behind the liquidity provider's bids, out of reach of its
    # quotes while the price walks, so it rests until another client's order reaches it.
    await asyncio.sleep(vcfg.tick * 1.5)  # a fresh set of quotes (an earlier load may have taken some)
    ref = (await read_reference_prices(client.nc.jetstream())).get(venue, symbol) or ref
    below = ref - Decimal("0.50")
    lp_bids = vcfg.levels * vcfg.quote_qty  # the liquidity provider's bids, all above DEMO1's
    resting = await client.place_order("DEMO1", symbol, "BUY", 800, str(below), venue=venue)
    accepted = await _until(client, resting, {OrderStatus.ACCEPTED})
    result.step(accepted.status is OrderStatus.ACCEPTED, f"DEMO1 BUY 800 {symbol} @ {below} rests in the book")
    seller = await client.place_order("DEMO2", symbol, "SELL", lp_bids + 300, str(below), venue=venue)
    sold = await client.wait(seller, timeout=30)
    partial = await _until(client, resting, {OrderStatus.PARTIALLY_FILLED})
    result.step(sold.status is OrderStatus.FILLED and 0 < partial.filled_qty < 800,
                f"DEMO2 SELL {lp_bids + 300} @ {below} sweeps the provider's bids and reaches it: "
                f"DEMO1 partially filled {partial.filled_qty}/800 @ {partial.avg_px}")
    request = await client.cancel(resting, "DEMO1", venue, "demo: cancel the rest")
    canceled = await client.wait_cancel(resting, request, timeout=30)
    result.step(canceled.status is OrderStatus.CANCELED and canceled.filled_qty == partial.filled_qty,
                f"trade cancel {resting}: canceled with {canceled.filled_qty} filled, "
                f"{800 - canceled.filled_qty} never traded")

    working = await client.place_order("DEMO3", symbol, "BUY", 100, str(ref - 1), venue=venue)
    await _until(client, working, {OrderStatus.ACCEPTED})
    started = time.monotonic()
    await set_trading_state(client.nc.jetstream(), TradingState.HALTED, "DEMO3", "demo: desk review")
    halted = await client.wait(working, timeout=30)
    result.step(halted.status is OrderStatus.CANCELED,
                f"trade halt --account DEMO3: its working order canceled in "
                f"{(time.monotonic() - started) * 1e3:.0f} ms")
    blocked = await client.wait(await client.place_order("DEMO3", symbol, "BUY", 10, str(ref - 1), venue=venue), 30)
    result.step(blocked.status is OrderStatus.REJECTED, f"a new DEMO3 order while halted: {blocked.reason}")
    await set_trading_state(client.nc.jetstream(), TradingState.ACTIVE, "DEMO3", "demo: review done")
    after = await client.wait(await client.place_order("DEMO3", symbol, "BUY", 10, str(ref + Decimal("0.01")),
                                                       venue=venue, tif="IOC"), 30)
    result.step(after.status in (OrderStatus.FILLED, OrderStatus.CANCELED),
                f"trade resume --account DEMO3: the next order trades ({after.status.value}, "
                f"{after.filled_qty} filled)")
    return result
