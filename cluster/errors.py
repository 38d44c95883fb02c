"""The one family of errors the client, the CLI and the operator tools raise: catch `TradingError`."""

from __future__ import annotations

__all__ = ["TradingError"]


class TradingError(Exception):
    """Base of every error a user of the system meets (the client, the CLI, the operator tools)."""
