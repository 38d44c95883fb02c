"""The kill switch fold: the stricter of the desk's and the account's state wins."""

from __future__ import annotations

import json

import pytest

from actors.domain.risk_state import TradingState
from actors.domain.trading_control import GLOBAL_KEY, InvalidControlValue, TradingControl, account_key


def _value(state: str, reason: str = "") -> bytes:
    return json.dumps({"state": state, "reason": reason}).encode()


def test_everything_is_active_before_any_change() -> None:
    assert TradingControl().switch_for("ACC1").state is TradingState.ACTIVE


@pytest.mark.parametrize(
    ("desk", "account", "expected"),
    [
        ("ACTIVE", "HALTED", TradingState.HALTED),
        ("HALTED", "ACTIVE", TradingState.HALTED),
        ("REDUCING", "ACTIVE", TradingState.REDUCING),
        ("REDUCING", "HALTED", TradingState.HALTED),
        ("ACTIVE", "ACTIVE", TradingState.ACTIVE),
    ],
)
def test_the_stricter_of_the_desk_and_the_account_state_wins(desk: str, account: str,
                                                              expected: TradingState) -> None:
    control = TradingControl()
    control.apply(GLOBAL_KEY, _value(desk))
    control.apply(account_key("ACC1"), _value(account))
    assert control.switch_for("ACC1").state is expected


def test_an_account_halt_names_its_scope_and_reason_and_leaves_other_accounts_alone() -> None:
    control = TradingControl()
    control.apply(account_key("ACC1"), _value("HALTED", "fat finger"))
    assert control.switch_for("ACC1").reason == "fat finger"
    assert control.switch_for("ACC1").scope == "account ACC1"
    assert control.switch_for("ACC2").state is TradingState.ACTIVE


def test_a_deleted_key_means_active_again() -> None:
    control = TradingControl()
    control.apply(GLOBAL_KEY, _value("HALTED"))
    control.apply(GLOBAL_KEY, None)
    assert control.switch_for("ACC1").state is TradingState.ACTIVE


@pytest.mark.parametrize(
    ("key", "state", "halted"),
    [
        (GLOBAL_KEY, "HALTED", True),
        (account_key("ACC7"), "HALTED", True),
        (GLOBAL_KEY, "REDUCING", False),
        (account_key("ACC7"), "ACTIVE", False),
    ],
)
def test_any_halted_says_whether_the_desk_or_some_account_is_halted(key: str, state: str, halted: bool) -> None:
    control = TradingControl()
    control.apply(key, _value(state))
    assert control.any_halted is halted


def test_a_lifted_halt_is_no_longer_a_halt() -> None:
    control = TradingControl()
    control.apply(account_key("ACC7"), _value("HALTED"))
    control.apply(account_key("ACC7"), None)
    assert not control.any_halted


@pytest.mark.parametrize("value", [b'{"state": "PAUSED"}', b"{not json", b'{"reason": "no state"}', b'"HALTED"',
                                   b'{"state": "HALTED", "reason": 7}'])
def test_a_malformed_value_is_refused_and_the_last_good_state_stays(value: bytes) -> None:
    control = TradingControl()
    control.apply(account_key("ACC1"), _value("HALTED", "desk"))
    with pytest.raises(InvalidControlValue):
        control.apply(account_key("ACC1"), value)
    assert control.switch_for("ACC1").state is TradingState.HALTED


def test_a_later_good_value_applies_after_a_refused_one() -> None:
    control = TradingControl()
    with pytest.raises(InvalidControlValue):
        control.apply(GLOBAL_KEY, b"garbage")
    control.apply(GLOBAL_KEY, _value("HALTED"))
    assert control.switch_for("ACC9").state is TradingState.HALTED
