"""The kill switch, folded: the trading state of the whole desk and of each account.

Pure: entries of the CONTROL bucket (`trading.global`, `trading.account.<A>`) are applied in
revision order; the stricter of the global and the account state wins.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from actors.domain.risk_state import TradingState

__all__ = ["GLOBAL_KEY", "InvalidControlValue", "TradingControl", "TradingSwitch", "account_key"]

GLOBAL_KEY = "trading.global"
_ACCOUNT_PREFIX = "trading.account."
_STRICTNESS = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}


def account_key(account: str) -> str:
    return f"{_ACCOUNT_PREFIX}{account}"


@dataclass(frozen=True)
class TradingSwitch:
    state: TradingState
    reason: str = ""
    scope: str = "global"


_ACTIVE = TradingSwitch(TradingState.ACTIVE)


class InvalidControlValue(ValueError):
    """A CONTROL value that is not `{"state": ACTIVE | REDUCING | HALTED, "reason": "..."}`."""


def _switch(value: bytes | None, scope: str) -> TradingSwitch:
    if not value:
        return TradingSwitch(TradingState.ACTIVE, "", scope)
    try:
        data = json.loads(value)
        state = TradingState(data["state"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidControlValue(f"not a trading state: {value[:80]!r}") from exc
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise InvalidControlValue(f"reason must be text, not {type(reason).__name__}")
    return TradingSwitch(state, reason, scope)


class TradingControl:
    def __init__(self) -> None:
        self._global = TradingSwitch(TradingState.ACTIVE)
        self._accounts: dict[str, TradingSwitch] = {}

    def apply(self, key: str, value: bytes | None) -> None:
        """Fold one bucket entry (a deleted key means ACTIVE). Raises InvalidControlValue, changing
        nothing, for a value that is not a trading state: the last good state stays."""
        if key == GLOBAL_KEY:
            self._global = _switch(value, "global")
        elif key.startswith(_ACCOUNT_PREFIX):
            account = key[len(_ACCOUNT_PREFIX):]
            self._accounts[account] = _switch(value, f"account {account}")

    @property
    def any_halted(self) -> bool:
        """Whether the desk or any account is halted (when not, there is nothing to cancel)."""
        return self._global.state is TradingState.HALTED or any(
            s.state is TradingState.HALTED for s in self._accounts.values())

    @property
    def globally_halted(self) -> bool:
        return self._global.state is TradingState.HALTED

    def halted_accounts(self) -> list[str]:
        """Accounts halted on their own (the desk's global state aside)."""
        return [a for a, s in self._accounts.items() if s.state is TradingState.HALTED]

    def switch_for(self, account: str) -> TradingSwitch:
        own = self._accounts.get(account, _ACTIVE)
        return own if _STRICTNESS[own.state] > _STRICTNESS[self._global.state] else self._global
