"""Positions and P&L by average cost, per (account, symbol), folded from fills.

No Ray or NATS here. A `Position` keeps its open cost basis (the cost of the open quantity), so the
average cost is derived and realised + unrealised P&L always equals the cash P&L of its fills
exactly. A `PositionBook` applies each exec id once and snapshots to JSON-safe data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from messages.base import Side

__all__ = ["REMEMBERED_EXECS", "Position", "PositionBook"]

_SNAPSHOT_VERSION = 1
#: The cost taken off the basis when part of a position closes is rounded to this (money has 8 dp).
_COST_QUANTUM = Decimal("1e-8")


@dataclass
class Position:
    """One account's position in one symbol.

    `quantity` is signed (long > 0, short < 0). `cost` is the open quantity's cost basis, always
    >= 0: what a long paid, or what a short received. `realised` is the P&L of closed quantity.
    """

    quantity: int = 0
    cost: Decimal = Decimal(0)
    realised: Decimal = Decimal(0)

    @property
    def avg_cost(self) -> Decimal:
        """The average price of the open quantity (0 when flat)."""
        if self.quantity == 0:
            return Decimal(0)
        return self.cost / abs(self.quantity)

    def apply_fill(self, side: Side | str, qty: int, price: Decimal) -> None:
        """Apply a fill by average cost.

        Adding to a position (or opening one) adds to the cost basis. Reducing one realises
        (price - avg_cost) * qty for a long, (avg_cost - price) * qty for a short. Crossing through
        zero realises on the closed part and opens the rest at the fill price.
        """
        side = Side(side)
        if isinstance(qty, bool) or not isinstance(qty, int) or qty <= 0:
            raise ValueError(f"fill quantity must be a positive whole number, not {qty!r}")
        price = Decimal(price)
        if not price.is_finite() or price <= 0:
            raise ValueError(f"fill price must be positive, not {price}")
        signed = qty if side is Side.BUY else -qty
        if self.quantity == 0 or (self.quantity > 0) == (signed > 0):
            self.quantity += signed
            self.cost += qty * price
            return
        held = abs(self.quantity)
        closing = min(qty, held)
        if closing == held:
            closed_cost = self.cost
        else:
            closed_cost = (self.cost * closing / held).quantize(_COST_QUANTUM, rounding=ROUND_HALF_EVEN)
        if self.quantity > 0:
            self.realised += closing * price - closed_cost
        else:
            self.realised += closed_cost - closing * price
        self.cost -= closed_cost
        self.quantity += signed
        if qty > closing:  # crossed through zero: the rest opens at the fill price
            self.cost = (qty - closing) * price

    def unrealised(self, reference_price: Decimal) -> Decimal:
        """The open quantity's P&L marked at `reference_price`."""
        if self.quantity == 0:
            return Decimal(0)
        value = abs(self.quantity) * Decimal(reference_price)
        return value - self.cost if self.quantity > 0 else self.cost - value

    def to_dict(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "cost": str(self.cost), "realised": str(self.realised)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Position:
        return cls(int(data["quantity"]), Decimal(data["cost"]), Decimal(data["realised"]))


#: How many of the latest exec ids a book remembers (and snapshots) to refuse a second application.
#: A copy of an execution arrives within seconds of it (a republish after a crash; the broker also
#: drops copies within its duplicate window), so a window is enough; remembering every exec id ever
#: applied made each snapshot (and the live query) grow with the whole history.
REMEMBERED_EXECS = 10_000


class PositionBook:
    """Positions keyed by (account, symbol), each of the latest `remember` exec ids applied at most once."""

    def __init__(self, remember: int = REMEMBERED_EXECS) -> None:
        self._positions: dict[tuple[str, str], Position] = {}
        self._exec_ids: dict[str, None] = {}  # in the order applied; the oldest is forgotten first
        self._remember = remember

    def apply_fill(self, account: str, symbol: str, side: Side | str, qty: int, price: Decimal, exec_id: str) -> bool:
        """Apply a fill; False (and no change) if `exec_id` was already applied.

        When one exec is applied to several accounts (an allocation), give each its own key,
        e.g. ``f"{exec_id}:{account}"``.
        """
        if exec_id in self._exec_ids:
            return False
        position = self._positions.get((account, symbol), Position())
        position.apply_fill(side, qty, price)  # raises before anything is recorded
        self._positions[(account, symbol)] = position
        self._exec_ids[exec_id] = None
        if len(self._exec_ids) > self._remember:
            del self._exec_ids[next(iter(self._exec_ids))]
        return True

    def position(self, account: str, symbol: str) -> Position:
        """A copy of the position (flat if never traded)."""
        return replace(self._positions.get((account, symbol), Position()))

    def positions(self, account: str | None = None) -> dict[tuple[str, str], Position]:
        """Copies of the positions, of one account or of all, keyed by (account, symbol)."""
        return {
            key: replace(position)
            for key, position in sorted(self._positions.items())
            if account is None or key[0] == account
        }

    def snapshot(self) -> dict[str, Any]:
        """The book as JSON-safe data (Decimals as strings); `restore` rebuilds an equal book."""
        return {
            "version": _SNAPSHOT_VERSION,
            "positions": [
                {"account": account, "symbol": symbol, **position.to_dict()}
                for (account, symbol), position in sorted(self._positions.items())
            ],
            "exec_ids": list(self._exec_ids),
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> PositionBook:
        if data.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"unsupported positions snapshot version {data.get('version')!r}")
        book = cls()
        for row in data["positions"]:
            book._positions[(row["account"], row["symbol"])] = Position.from_dict(row)
        book._exec_ids = dict.fromkeys(data["exec_ids"][-book._remember:])
        return book

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PositionBook):
            return NotImplemented
        return self._positions == other._positions and self._exec_ids.keys() == other._exec_ids.keys()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PositionBook({len(self._positions)} positions, {len(self._exec_ids)} execs)"
