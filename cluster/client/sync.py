"""`SyncTradingClient`: the trading client for plain (synchronous) scripts, on an event loop of its own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any, TypeVar

from actors.runtime import event_loop
from cluster.client.outcome import OrderOutcome
from cluster.client.trading import TradingClient
from cluster.config import SystemConfig, resolve_nats_url

__all__ = ["SyncTradingClient"]

T = TypeVar("T")


class SyncTradingClient:
    """The same client for plain scripts: runs an event loop in a background thread."""

    def __init__(self, nats_url: str, partitions: int, **kwargs: Any) -> None:
        self._loop = event_loop.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="trading-client", daemon=True)
        self._thread.start()
        self._client = TradingClient(nats_url, partitions, **kwargs)
        self._run(self._client.connect())

    @classmethod
    def from_config(cls, cfg: SystemConfig, **kwargs: Any) -> SyncTradingClient:
        cfg = resolve_nats_url(cfg)
        return cls(cfg.nats.url, cfg.partitions, connect_timeout=cfg.nats.connect_timeout, **kwargs)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def place_order(self, account: str, symbol: str, side: str, qty: int, price: Decimal | str | None = None,
                    **fields: Any) -> str:
        return self._run(self._client.place_order(account, symbol, side, qty, price, **fields))

    def wait(self, order_id: str, timeout: float = 30.0, working_ok: bool = False) -> OrderOutcome:
        return self._run(self._client.wait(order_id, timeout, working_ok))

    def cancel(self, order_id: str, account: str, venue: str = "SIM", reason: str = "client request") -> str:
        return self._run(self._client.cancel(order_id, account, venue, reason))

    def positions(self, account: str | None = None) -> list[dict[str, Any]]:
        return self._run(self._client.positions(account))

    def wait_cancel(self, order_id: str, request_id: str, timeout: float = 30.0) -> OrderOutcome:
        return self._run(self._client.wait_cancel(order_id, request_id, timeout))

    def close(self) -> None:
        try:
            self._run(self._client.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    def __enter__(self) -> SyncTradingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

