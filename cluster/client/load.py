"""Load generation and its report: sent, filled, rejected, lost, duplicated, throughput, latency."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from cluster.client.errors import BrokerUnavailable
from cluster.client.outcome import OrderStatus
from cluster.client.pacing import retrying, send_paced
from cluster.client.trading import TradingClient
from messages import NewOrder

__all__ = ["LoadReport", "order_mix", "percentile", "run_load", "summarize"]

ACCOUNTS = ("ACC1", "ACC2", "ACC3", "ACC4", "ACC5", "ACC6", "ACC7")
SYMBOL_PRICES = {"AAPL": Decimal("187.25"), "MSFT": Decimal("411.10"), "TSLA": Decimal("243.80"),
                 "AMZN": Decimal("178.45")}


@dataclass
class LoadReport:
    sent: int = 0
    settled: int = 0
    filled: int = 0
    rejected: int = 0
    canceled: int = 0
    #: Canceled after a partial fill (e.g. an IOC order's unfilled rest).
    partially_filled: int = 0
    venue_rejected: int = 0
    lost: int = 0
    duplicated: int = 0
    allocation_mismatches: int = 0
    elapsed_s: float = 0.0
    throughput_per_s: float = 0.0
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    rejections_by_rule: dict[str, int] = field(default_factory=dict)
    lost_order_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        p50 = f"{self.latency_p50_ms:.1f}" if self.latency_p50_ms is not None else "-"
        p99 = f"{self.latency_p99_ms:.1f}" if self.latency_p99_ms is not None else "-"
        return (f"sent={self.sent} filled={self.filled} partially_filled={self.partially_filled} "
                f"rejected={self.rejected} canceled={self.canceled} "
                f"venue_rejected={self.venue_rejected} lost={self.lost} duplicated={self.duplicated} "
                f"throughput={self.throughput_per_s:.0f}/s p50={p50}ms p99={p99}ms")


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def order_mix(n: int, seed: int = 7, run_id: str | None = None,
              reference: dict[str, Decimal] | None = None) -> list[NewOrder]:
    """A reproducible mix of accounts, symbols and sizes; about one order in ten breaks a risk limit.

    With `reference` prices (an order-book venue), the orders are IOC limits a few ticks through the
    market, so they fill, fill in part (the rest canceled) or not at all, and one in forty is priced
    outside the collar. Without, prices spread around fixed levels (the fill-everything venue).

    Order ids are `<run_id>-<n>`: a fresh run id (the default) makes new orders; the same run id again
    re-sends the same orders, which the system treats as the orders it already has.
    """
    rng = random.Random(seed)
    run = run_id or f"L{uuid.uuid4().hex[:10]}"
    levels = reference or SYMBOL_PRICES
    orders = []
    for i in range(n):
        account = rng.choice(ACCOUNTS)
        symbol = rng.choice(tuple(levels))
        side = rng.choice(("BUY", "SELL"))
        roll = rng.random()
        if roll < 0.05:
            qty = rng.randint(9_000, 9_900)  # breaks max_notional
        elif roll < 0.10:
            account, qty = "ACC1", rng.randint(501, 900)  # breaks ACC1's max_order_qty of 500
        else:
            qty = rng.randint(1, 500)
        extra: dict[str, Any] = {}
        if reference is None:
            price = levels[symbol] + Decimal(rng.randint(-200, 200)) / 100
        else:
            sign = 1 if side == "BUY" else -1
            if rng.random() < 0.025:  # a fat finger: 8% through the market, outside a 5% collar
                price = (levels[symbol] * (1 + sign * Decimal("0.08"))).quantize(Decimal("0.01"))
            else:  # mostly through the quotes (fills, partial fills), some behind them (nothing trades)
                price = levels[symbol] + sign * Decimal(rng.choice((-2, 0, 2, 5, 10, 20, 40))) / 100
            extra["tif"] = "IOC"
        profile = "FUND3" if rng.random() < 0.25 else None
        orders.append(NewOrder(order_id=f"{run}-{i:06d}", account=account, symbol=symbol, side=side, qty=qty,
                               price=price, allocation_profile=profile, **extra))
    return orders


def summarize(client: TradingClient, order_ids: list[str], started_ns: int, finished_ns: int) -> LoadReport:
    report = LoadReport(sent=len(order_ids))
    rules: Counter[str] = Counter()
    latencies = []
    for oid in order_ids:
        track = client.track(oid)
        outcome = track.outcome()
        if track.terminal_count() > 1 or track.duplicated_executions() > 0:
            report.duplicated += 1
        if not outcome.settled:
            report.lost += 1
            report.lost_order_ids.append(oid)
            continue
        report.settled += 1
        if sum(outcome.allocated.values()) != outcome.filled_qty:
            report.allocation_mismatches += 1
        match outcome.status:
            case OrderStatus.FILLED:
                report.filled += 1
            case OrderStatus.REJECTED:
                report.rejected += 1
                rules[(outcome.reason or "?").split(":", 1)[0]] += 1
            case OrderStatus.CANCELED:
                report.canceled += 1
                report.partially_filled += outcome.filled_qty > 0
            case OrderStatus.VENUE_REJECTED:
                report.venue_rejected += 1
        if oid in client.settled_at and oid in client.placed_at:
            latencies.append((client.settled_at[oid] - client.placed_at[oid]) / 1e6)
    last = max((client.settled_at.get(o, 0) for o in order_ids), default=finished_ns)
    report.elapsed_s = max(1e-9, (max(last, finished_ns) - started_ns) / 1e9)
    report.throughput_per_s = report.settled / report.elapsed_s
    report.latency_p50_ms = percentile(latencies, 50)
    report.latency_p99_ms = percentile(latencies, 99)
    report.rejections_by_rule = dict(rules)
    return report


async def run_load(client: TradingClient, orders: list[NewOrder], rate: float = 0.0, timeout: float = 60.0,
                   on_sent: Callable[[int], None] | None = None,
                   on_settled: Callable[[int], None] | None = None,
                   at_fraction: tuple[float, Callable[[], Any]] | None = None,
                   concurrency: int = 256) -> LoadReport:
    """Send `orders` at `rate`/s (0 = as fast as the broker takes them), then wait for every outcome.

    `at_fraction=(0.4, fn)` calls `fn` once 40% of the orders are sent (fault injection in the demo).
    """
    ids = [o.order_id for o in orders]
    pending = set(ids)
    settled_event = asyncio.Event()

    def _settled(outcome: Any) -> None:
        if outcome.order_id in pending:
            pending.discard(outcome.order_id)
            if on_settled:
                on_settled(1)
            if not pending:
                settled_event.set()

    client.on_settled(_settled)
    started = time.monotonic_ns()
    fired = False

    async def _send(_: int, order: NewOrder) -> None:
        # Safe to send again after an outage: the same order id is the same order.
        await retrying(lambda: client.submit(order), timeout, (BrokerUnavailable,))
        if on_sent:
            on_sent(1)

    def _before(i: int) -> Any:
        nonlocal fired
        if at_fraction and not fired and i >= at_fraction[0] * len(orders):
            fired = True
            return at_fraction[1]()
        return None

    # The summary reads every order's track, however many there are.
    with client.retaining(ids), contextlib.ExitStack() as listening:
        listening.callback(client.off_settled, _settled)
        await send_paced(orders, _send, rate=rate, concurrency=concurrency, before=_before)
        sent_done = time.monotonic_ns()
        for oid in ids:  # outcomes that arrived before the listener saw them
            if (track := client.track(oid)).settled():
                _settled(track.outcome())
        if pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled_event.wait(), timeout)
        return summarize(client, ids, started, sent_done)
