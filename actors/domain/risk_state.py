"""A risk partition's state, folded from events, and the stateful pre-trade check.

No Ray, NATS or clock here: the caller passes `now` (seconds, any monotonic-enough clock) and the
reference price. The state is rebuilt by replaying the partition's events through the `on_*`
methods, or restored from a `snapshot()` (JSON-safe) so a replica taking over a partition starts fast.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from actors.domain.risk_limits import RiskLimits
from actors.domain.risk_rules import (
    Rejection,
    collar,
    duplicate_order_id,
    is_reducing,
    max_gross_exposure,
    max_notional,
    max_order_qty,
    max_position,
    projected_position,
    rate_throttle,
    restricted_symbol,
)
from messages.base import Side
from messages.commands import OrderSpec

__all__ = ["REMEMBERED_ORDER_IDS", "RiskState", "TradingState"]

#: Decided order ids a partition remembers (the latest; working orders are remembered while they work).
#: The whole memory goes into every snapshot: unbounded, it made snapshots slower and larger with every
#: order (past ~80,000 ids a partition's snapshot outgrew the broker's 1 MB message limit). An order id
#: decided longer ago is still refused by the venue, which keeps every client order id it executed.
REMEMBERED_ORDER_IDS = 10_000

_SNAPSHOT_VERSION = 1


class TradingState(StrEnum):
    """The kill switch: ACTIVE, REDUCING (only position-reducing orders pass), HALTED (nothing passes)."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


_SEVERITY = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


@dataclass
class _Working:
    """An approved order still (partly) working at the venue."""

    account: str
    symbol: str
    side: Side
    remaining: int
    price: Decimal | None  # None: a market order approved with no reference price
    exec_ids: set[str] = field(default_factory=set)


@dataclass
class _Exposure:
    """One (account, symbol): signed position and the working orders' totals."""

    position: int = 0
    working_buy: int = 0
    working_sell: int = 0
    working_notional: Decimal = Decimal(0)
    working_unpriced: int = 0  # quantity of working orders without a price, valued at the mark


class RiskState:
    """Per-partition risk state: positions, working orders, seen ids, rate windows, trading states."""

    def __init__(self, remember: int = REMEMBERED_ORDER_IDS) -> None:
        self._exposure: dict[str, dict[str, _Exposure]] = {}
        self._working: dict[str, _Working] = {}
        self._seen: dict[str, str] = {}  # order id -> "approved" | "rejected", oldest first
        self._remember = remember
        self._recent: dict[str, deque[float]] = {}
        self._last_price: dict[str, Decimal] = {}
        self._global = TradingState.ACTIVE
        self._accounts: dict[str, TradingState] = {}
        #: Exec ids of fills applied to orders our books had closed (corrections), oldest first.
        self._late_execs: dict[str, None] = {}

    # --- queries ------------------------------------------------------------------------------------

    def trading_state(self, account: str) -> TradingState:
        """The stricter of the global state and the account's own."""
        own = self._accounts.get(account, TradingState.ACTIVE)
        return max(self._global, own, key=_SEVERITY.__getitem__)

    def outcome(self, order_id: str) -> str | None:
        """"approved" or "rejected" for an order id already decided here, else None."""
        if order_id in self._working:
            return "approved"
        return self._seen.get(order_id)

    def position(self, account: str, symbol: str) -> int:
        return self._peek(account, symbol).position

    def working(self, account: str, symbol: str) -> tuple[int, int]:
        """Working (buy, sell) quantity of the account in the symbol."""
        exp = self._peek(account, symbol)
        return exp.working_buy, exp.working_sell

    def last_price(self, symbol: str) -> Decimal | None:
        """The last fill price seen for the symbol (the fallback mark for valuing exposure)."""
        return self._last_price.get(symbol)

    def gross_exposure(
        self, account: str, marks: Mapping[str, Decimal] | None = None
    ) -> Decimal | None:
        """Sum over the account's symbols of |position| * mark plus working order notional.

        A symbol's mark is `marks[symbol]`, else its last fill price. None if a position or an
        unpriced working order has no mark.
        """
        total = Decimal(0)
        for symbol, exp in self._exposure.get(account, {}).items():
            mark = (marks or {}).get(symbol)
            if mark is None:
                mark = self._last_price.get(symbol)
            unvalued = abs(exp.position) + exp.working_unpriced
            if unvalued:
                if mark is None:
                    return None
                total += unvalued * mark
            total += exp.working_notional
        return total

    # --- the check ----------------------------------------------------------------------------------

    def check(
        self,
        order: OrderSpec,
        limits: RiskLimits,
        reference_price: Decimal | None,
        now: float,
        *,
        marks: Mapping[str, Decimal] | None = None,
    ) -> Rejection | None:
        """The first rule the order breaks, or None. Does not change the state.

        Order: trading state, restricted symbol, duplicate id, max_order_qty, max_notional, collar,
        max_position, max_gross_exposure, rate throttle. `reference_price` is the order's symbol's
        reference (falls back to its last fill price); `marks` price the account's other symbols.
        """
        ref = reference_price if reference_price is not None else self._last_price.get(order.symbol)
        exp = self._peek(order.account, order.symbol)
        same_side = exp.working_buy if order.side is Side.BUY else exp.working_sell
        reducing = is_reducing(order.side, order.qty, exp.position, same_side)
        prices = {**(marks or {}), **({order.symbol: ref} if ref is not None else {})}
        exposure = self.gross_exposure(order.account, prices)
        price = order.price if order.price is not None else ref
        return (
            self._trading_rule(order, exp.position, same_side, reducing)
            or restricted_symbol(order, limits)
            or duplicate_order_id(order, self.outcome(order.order_id) is not None)
            or max_order_qty(order, limits)
            or max_notional(order, limits, ref)
            or collar(order, limits, ref)
            or max_position(order, limits, exp.position, same_side)
            or max_gross_exposure(order, limits, exposure, None if price is None else price * order.qty, reducing)
            or rate_throttle(order, limits, self._recent_count(order.account, limits.rate_window, now))
        )

    def _trading_rule(self, order: OrderSpec, position: int, same_side: int, reducing: bool) -> Rejection | None:
        state = self.trading_state(order.account)
        scope = "globally" if self._global is state else f"for account {order.account}"
        if state is TradingState.HALTED:
            return Rejection("trading_state", f"trading is halted {scope}", state.value, None)
        if state is TradingState.REDUCING and not reducing:
            projected = projected_position(order.side, order.qty, position, same_side)
            return Rejection(
                "trading_state",
                f"trading is reduce-only {scope}: {order.side.value} {order.qty} {order.symbol} would take "
                f"the position from {position} to {projected}",
                state.value,
                str(projected),
            )
        return None

    def _recent_count(self, account: str, window: float, now: float) -> int:
        count = 0
        for ts in reversed(self._recent.get(account, ())):
            if now - ts >= window:
                break
            count += 1
        return count

    # --- folding events -----------------------------------------------------------------------------

    def on_approved(
        self,
        order: OrderSpec,
        now: float,
        *,
        reference_price: Decimal | None = None,
        limits: RiskLimits | None = None,
    ) -> bool:
        """Record an approved order: its id, its working exposure and its rate timestamp.

        A market order's working notional is valued at `reference_price` (else at the mark when
        checked). With `limits`, rate timestamps the throttle can no longer need are dropped.
        Returns False (and changes nothing) if the order id was already seen.
        """
        if self.outcome(order.order_id) is not None:
            return False
        self._decided(order.order_id, "approved")
        price = order.price if order.price is not None else reference_price
        self._working[order.order_id] = _Working(order.account, order.symbol, order.side, order.qty, price)
        self._add_working(self._working[order.order_id], order.qty)
        recent = self._recent.setdefault(order.account, deque())
        recent.append(now)
        window = limits.rate_window if limits is not None else RiskLimits.MAX_RATE_WINDOW
        while recent and now - recent[0] >= window:
            recent.popleft()
        if limits is not None and limits.max_orders_per_window is not None:
            while len(recent) > limits.max_orders_per_window:
                recent.popleft()
        return True

    def on_rejected(self, order_id: str) -> None:
        """Record a rejected order's id, so the same id again is a duplicate."""
        if self.outcome(order_id) is None:
            self._decided(order_id, "rejected")

    def _decided(self, order_id: str, outcome: str) -> None:
        self._seen[order_id] = outcome
        while len(self._seen) > self._remember:
            del self._seen[next(iter(self._seen))]

    def on_fill(self, order_id: str, last_qty: int, last_px: Decimal, *, exec_id: str | None = None) -> bool:
        """Move a fill from working to position. False for an unknown/finished order or a repeated exec id."""
        order = self._working.get(order_id)
        if order is None or (exec_id is not None and exec_id in order.exec_ids):
            return False
        return self._fill_working(order_id, order, last_qty, last_px, exec_id)

    def on_late_fill(self, account: str, symbol: str, side: Side, order_id: str, last_qty: int, last_px: Decimal,
                     exec_id: str) -> bool:
        """A fill the venue reported for an order our books had closed (a correction): it moves the
        position all the same, once per exec id (remembered, bounded, in the snapshot)."""
        order = self._working.get(order_id)
        if order is not None:
            return self.on_fill(order_id, last_qty, last_px, exec_id=exec_id)
        if exec_id in self._late_execs:
            return False
        self._late_execs[exec_id] = None
        while len(self._late_execs) > self._remember:
            del self._late_execs[next(iter(self._late_execs))]
        exp = self._get(account, symbol)
        exp.position += last_qty if Side(side) is Side.BUY else -last_qty
        self._last_price[symbol] = last_px
        return True

    def _fill_working(self, order_id: str, order: _Working, last_qty: int, last_px: Decimal,
                      exec_id: str | None) -> bool:
        if exec_id is not None:
            order.exec_ids.add(exec_id)
        self._add_working(order, -min(last_qty, order.remaining))
        order.remaining -= min(last_qty, order.remaining)
        exp = self._get(order.account, order.symbol)
        exp.position += last_qty if order.side is Side.BUY else -last_qty
        self._last_price[order.symbol] = last_px
        if order.remaining == 0:
            del self._working[order_id]
        return True

    def on_done(self, order_id: str) -> bool:
        """The order will not fill further (canceled, venue-rejected, expired): release what is left."""
        order = self._working.pop(order_id, None)
        if order is None:
            return False
        self._add_working(order, -order.remaining)
        return True

    def set_trading_state(self, state: TradingState | str, account: str | None = None) -> None:
        """Set the global state (account None) or one account's own state."""
        state = TradingState(state)
        if account is None:
            self._global = state
        elif state is TradingState.ACTIVE:
            self._accounts.pop(account, None)
        else:
            self._accounts[account] = state

    def _peek(self, account: str, symbol: str) -> _Exposure:
        """The (account, symbol) exposure, or an empty one that is not stored."""
        return self._exposure.get(account, {}).get(symbol) or _Exposure()

    def _get(self, account: str, symbol: str) -> _Exposure:
        return self._exposure.setdefault(account, {}).setdefault(symbol, _Exposure())

    def _add_working(self, order: _Working, qty: int) -> None:
        exp = self._get(order.account, order.symbol)
        if order.side is Side.BUY:
            exp.working_buy += qty
        else:
            exp.working_sell += qty
        if order.price is None:
            exp.working_unpriced += qty
        else:
            exp.working_notional += qty * order.price

    # --- snapshots ----------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-safe data (Decimals as strings); `restore` rebuilds it."""
        return {
            "version": _SNAPSHOT_VERSION,
            "positions": sorted(
                [account, symbol, exp.position]
                for account, symbols in self._exposure.items()
                for symbol, exp in symbols.items()
                if exp.position
            ),
            "working": {
                order_id: {
                    "account": w.account,
                    "symbol": w.symbol,
                    "side": w.side.value,
                    "remaining": w.remaining,
                    "price": None if w.price is None else str(w.price),
                    "exec_ids": sorted(w.exec_ids),
                }
                for order_id, w in sorted(self._working.items())
            },
            "seen": dict(self._seen),  # oldest first: the order the window forgets them in
            "recent": {account: list(ts) for account, ts in sorted(self._recent.items()) if ts},
            "last_prices": {symbol: str(px) for symbol, px in sorted(self._last_price.items())},
            "trading": {"global": self._global.value, "accounts": dict(sorted(self._accounts.items()))},
            "late_execs": list(self._late_execs),
        }

    @classmethod
    def restore(cls, data: Mapping[str, Any], remember: int = REMEMBERED_ORDER_IDS) -> RiskState:
        """A state equal to the one `data` was taken from."""
        if data.get("version") != _SNAPSHOT_VERSION:
            raise ValueError(f"unsupported risk snapshot version {data.get('version')!r}")
        state = cls(remember)
        for account, symbol, qty in data["positions"]:
            state._get(account, symbol).position = int(qty)
        for order_id, w in data["working"].items():
            price = None if w["price"] is None else Decimal(w["price"])
            order = _Working(w["account"], w["symbol"], Side(w["side"]), int(w["remaining"]), price,
                             set(w["exec_ids"]))
            state._working[order_id] = order
            state._add_working(order, order.remaining)
        for order_id, outcome in data["seen"].items():
            state._decided(order_id, outcome)
        state._recent = {account: deque(float(t) for t in ts) for account, ts in data["recent"].items()}
        state._last_price = {symbol: Decimal(px) for symbol, px in data["last_prices"].items()}
        state._global = TradingState(data["trading"]["global"])
        state._accounts = {a: TradingState(s) for a, s in data["trading"]["accounts"].items()}
        state._late_execs = dict.fromkeys(data.get("late_execs", ()))
        return state

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RiskState):
            return NotImplemented
        return self.snapshot() == other.snapshot()

    __hash__ = None  # type: ignore[assignment]
