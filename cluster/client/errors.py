"""Typed errors a driver, the CLI or a test can catch: every one derives from `TradingError`."""

from __future__ import annotations

from actors.runtime.nats_conn import BrokerUnavailable as _ConnectFailed
from cluster.errors import TradingError

__all__ = ["BrokerUnavailable", "OrderForgotten", "OrderTimeout", "OrderValidationError", "PublishRejected",
           "TradingError"]


class BrokerUnavailable(TradingError, _ConnectFailed):
    """The broker could not be reached (or did not answer) within the timeout; nothing was published,
    or what was published is not known to be stored (placing the same order again is safe)."""


class OrderValidationError(TradingError, ValueError):
    """An order that fails validation; nothing was published. `fields` names each bad field."""

    def __init__(self, message: str, fields: tuple[str, ...]) -> None:
        super().__init__(message)
        self.fields = fields


class PublishRejected(TradingError):
    """The broker refused to store the order (for example its stream is full)."""


class OrderTimeout(TradingError, TimeoutError):
    """No terminal outcome arrived within the timeout."""


class OrderForgotten(TradingError, LookupError):
    """The order settled long enough ago that the client no longer keeps its track (see
    `TradingClient(keep_settled=...)` and `TradingClient.retaining`)."""
