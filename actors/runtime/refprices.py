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

from actors.runtime.alarms import Alarms
from actors.runtime.kv_watch import watch_bucket

__all__ = ["REFPRICES_BUCKET", "InvalidPrice", "ReferencePrices", "publish_reference_prices", "read_reference_prices",
           "refprice_key", "wait_reference_prices", "watch_reference_prices"]

REFPRICES_BUCKET = "REFPRICES"


def refprice_key(venue: str, symbol: str) -> str:
    return f"{venue}.{symbol}"


class InvalidPrice(ValueError):
    """A REFPRICES value that is not `{"price": "<positive decimal>", ...}`."""


def _price(value: bytes) -> Decimal:
    try:
        data = json.loads(value)
        price = Decimal(str(data["price"]))
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise InvalidPrice(f"not a price: {value[:80]!r}") from exc
    if not price.is_finite() or price <= 0:
        raise InvalidPrice(f"a price must be positive, not {price}")
    return price


class ReferencePrices:
    """The latest reference price per (venue, symbol), folded from bucket entries."""

    def __init__(self) -> None:
        self._prices: dict[tuple[str, str], Decimal] = {}

    def apply(self, key: str, value: bytes | None) -> None:
        """Fold one bucket entry; raises InvalidPrice (and changes nothing) for a value that is not a
        positive price."""
        venue, _, symbol = key.partition(".")
        if not symbol:
            return
        if not value:
            self._prices.pop((venue, symbol), None)
            return
        self._prices[(venue, symbol)] = _price(value)

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


async def watch_reference_prices(js: JetStreamContext, prices: ReferencePrices, ready: asyncio.Event | None = None,
                                 alarms: Alarms | None = None) -> None:
    """Keep `prices` up to date for as long as the task runs (the initial values first). A malformed
    price is refused with an alarm; the last good price of that symbol stays."""

    def refused(key: str, exc: Exception) -> None:
        if alarms is not None:
            alarms.raise_("refprice_refused", f"{REFPRICES_BUCKET} {key}: {exc}; the last good price stays")

    await watch_bucket(js, REFPRICES_BUCKET, prices.apply, ready=ready, on_refused=refused)
