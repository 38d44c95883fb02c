"""The client library for drivers: `TradingClient` (async) and `SyncTradingClient`, the outcomes they
report, the typed errors they raise, and load generation."""

from cluster.client.errors import (
    BrokerUnavailable,
    OrderForgotten,
    OrderTimeout,
    OrderValidationError,
    PublishRejected,
    TradingError,
)
from cluster.client.outcome import OrderOutcome, OrderStatus
from cluster.client.sync import SyncTradingClient
from cluster.client.trading import TradingClient

__all__ = ["BrokerUnavailable", "OrderForgotten", "OrderOutcome", "OrderStatus", "OrderTimeout",
           "OrderValidationError", "PublishRejected", "SyncTradingClient", "TradingClient", "TradingError"]
