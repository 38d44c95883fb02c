"""Reference prices in the JetStream KV bucket REFPRICES: the venue writes, risk and positions read.

Key `<venue>.<symbol>`, value JSON `{"price": "187.25", "ts": <epoch ns>}`. One value per key
(history 1): readers want the latest price, the venue's input journal keeps how it moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping
from decimal import Decimal

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError

__all__ = ["REFPRICES_BUCKET", "ReferencePrices", "publish_reference_prices", "read_reference_prices",
           "refprice_key", "wait_reference_prices", "watch_reference_prices"]

REFPRICES_BUCKET = "REFPRICES"


def refprice_key(venue: str, symbol: str) -> str:
    return f"{venue}.{symbol}"


class ReferencePrices:
    """The latest reference price per (venue, symbol), folded from bucket entries."""

    def __init__(self) -> None:
        self._prices: dict[tuple[str, str], Decimal] = {}

    def apply(self, key: str, value: bytes | None) -> None:
        venue, _, symbol = key.partition(".")
        if not symbol:
            return
        if not value:
            self._prices.pop((venue, symbol), None)
            return
        self._prices[(venue, symbol)] = Decimal(json.loads(value)["price"])

    def get(self, venue: str, symbol: str) -> Decimal | None:
        return self._prices.get((venue, symbol))

    def for_venue(self, venue: str) -> dict[str, Decimal]:
        return {s: p for (v, s), p in self._prices.items() if v == venue}

    def by_symbol(self) -> dict[str, Decimal]:
        """One mark per symbol (the last venue's, in key order, when several venues quote it)."""
        return {s: p for (_v, s), p in sorted(self._prices.items())}


async def publish_reference_prices(js: JetStreamContext, venue: str, prices: Mapping[str, Decimal]) -> None:
    kv = await js.key_value(REFPRICES_BUCKET)
    now = time.time_ns()
    for symbol, price in prices.items():
        await kv.put(refprice_key(venue, symbol), json.dumps({"price": str(price), "ts": now}).encode())


async def read_reference_prices(js: JetStreamContext) -> ReferencePrices:
    """A one-off read of every price (empty when no venue has published any)."""
    prices = ReferencePrices()
    try:
        kv = await js.key_value(REFPRICES_BUCKET)
    except BucketNotFoundError:
        return prices
    try:
        keys = await kv.keys()
    except Exception:  # nats-py raises NoKeysError on an empty bucket
        return prices
    for key in keys:
        with contextlib.suppress(Exception):
            entry = await kv.get(key)
            prices.apply(key, entry.value)
    return prices


async def wait_reference_prices(js: JetStreamContext, venue: str, timeout: float = 15.0) -> dict[str, Decimal]:
    """The venue's reference prices, waiting (up to `timeout`) for its first quotes; {} if none came."""
    deadline = time.monotonic() + timeout
    while True:
        prices = (await read_reference_prices(js)).for_venue(venue)
        if prices or time.monotonic() > deadline:
            return prices
        await asyncio.sleep(0.1)


async def watch_reference_prices(js: JetStreamContext, prices: ReferencePrices,
                                 ready: asyncio.Event | None = None) -> None:
    """Keep `prices` up to date for as long as the task runs (the initial values first)."""
    kv = await js.key_value(REFPRICES_BUCKET)
    watcher = await kv.watchall()
    try:
        while True:
            entry = await watcher._updates.get()
            if entry is None:
                if ready is not None:
                    ready.set()
                continue
            if not hasattr(entry, "key"):
                return
            prices.apply(entry.key, entry.value if entry.operation is None else None)
    finally:
        with contextlib.suppress(Exception):
            await watcher.stop()
