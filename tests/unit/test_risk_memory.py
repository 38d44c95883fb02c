"""How many decided order ids a risk partition remembers: a bounded window, plus every working order."""

from __future__ import annotations

from decimal import Decimal

from actors.domain.risk_state import RiskState
from messages.commands import OrderSpec


def spec(order_id: str) -> OrderSpec:
    return OrderSpec(order_id=order_id, account="ACC1", symbol="AAPL", side="BUY", qty=10, price=Decimal("10"))


def decided(state: RiskState, *order_ids: str) -> None:
    for order_id in order_ids:
        state.on_rejected(order_id)


def test_the_oldest_decided_order_id_is_forgotten_past_the_window() -> None:
    state = RiskState(remember=3)
    decided(state, "O1", "O2", "O3", "O4")
    assert [state.outcome(o) for o in ("O1", "O2", "O4")] == [None, "rejected", "rejected"]


def test_a_working_order_stays_known_after_the_window_moved_past_it() -> None:
    state = RiskState(remember=2)
    state.on_approved(spec("W1"), now=0.0)
    decided(state, "O1", "O2", "O3")
    assert state.outcome("W1") == "approved"
    assert not state.on_approved(spec("W1"), now=1.0), "a working order approved twice"


def test_a_finished_order_past_the_window_is_forgotten() -> None:
    state = RiskState(remember=2)
    state.on_approved(spec("W1"), now=0.0)
    state.on_fill("W1", 10, Decimal("10"), exec_id="X1")
    decided(state, "O1", "O2")
    assert state.outcome("W1") is None


def test_a_restored_state_forgets_in_the_same_order_as_the_live_one() -> None:
    live = RiskState(remember=3)
    decided(live, "O1", "O2", "O3")
    restored = RiskState.restore(live.snapshot(), remember=3)
    for state in (live, restored):
        decided(state, "O4")
    assert restored == live
    assert restored.outcome("O1") is None and restored.outcome("O2") == "rejected"
