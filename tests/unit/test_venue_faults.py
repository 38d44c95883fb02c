"""Venue fault injection settings and the seeded reject decision."""

from __future__ import annotations

import pytest

from actors.domain.venue_faults import (
    REJECT_REASON,
    FaultSettings,
    InvalidFaultSettings,
    VenueFaults,
    rejection,
    should_reject,
)
from messages.base import Side
from messages.venue import NewOrderSingle

IDS = [f"O-{i}" for i in range(20000)]


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_the_seeded_reject_decision_hits_about_the_configured_rate(rate: float) -> None:
    hits = sum(should_reject(7, cl_ord_id, rate) for cl_ord_id in IDS)
    assert abs(hits / len(IDS) - rate) < 0.02


def test_the_seeded_reject_decision_is_reproducible() -> None:
    assert [should_reject(7, i, 0.3) for i in IDS[:500]] == [should_reject(7, i, 0.3) for i in IDS[:500]]


def test_another_seed_rejects_other_orders() -> None:
    assert [should_reject(7, i, 0.3) for i in IDS[:500]] != [should_reject(8, i, 0.3) for i in IDS[:500]]


def test_rates_zero_and_one_reject_none_and_all() -> None:
    assert not any(should_reject(7, i, 0.0) for i in IDS[:200])
    assert all(should_reject(7, i, 1.0) for i in IDS[:200])


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_settings_validation_rejects_a_rate_outside_zero_to_one_naming_it(rate: float) -> None:
    with pytest.raises(InvalidFaultSettings, match=rf"reject_rate must be within 0\.\.1, not {rate}"):
        FaultSettings().updated({"reject_rate": rate})


def test_settings_validation_rejects_an_unknown_setting_naming_it() -> None:
    with pytest.raises(InvalidFaultSettings, match="unknown fault setting 'latencyy'"):
        FaultSettings().updated({"latencyy": 1})


def test_settings_validation_rejects_a_non_boolean_flag() -> None:
    with pytest.raises(InvalidFaultSettings, match="stall"):
        FaultSettings().updated({"stall": "yes"})


def test_an_update_changes_only_the_given_settings() -> None:
    faults = VenueFaults(seed=1)
    faults.update({"latency": 0.2})
    assert faults.update({"stall": True}) == FaultSettings(latency=0.2, stall=True)


def test_an_empty_update_returns_the_current_settings() -> None:
    faults = VenueFaults(seed=1)
    faults.update({"reject_rate": 0.5})
    assert faults.update({}) == FaultSettings(reject_rate=0.5)


def test_clear_resets_every_setting() -> None:
    faults = VenueFaults(seed=1)
    faults.update({"latency": 0.2, "reject_rate": 1.0, "disconnect": True, "stall": True})
    assert faults.update({"clear": True}) == FaultSettings()


def test_an_invalid_update_leaves_the_settings_unchanged() -> None:
    faults = VenueFaults(seed=1)
    faults.update({"latency": 0.2})
    with pytest.raises(InvalidFaultSettings):
        faults.update({"latency": 0.5, "reject_rate": 2})
    assert faults.settings == FaultSettings(latency=0.2)


def test_venue_faults_reject_at_their_rate_only() -> None:
    faults = VenueFaults(seed=1)
    assert not faults.rejects("O-1")
    faults.update({"reject_rate": 1.0})
    assert faults.rejects("O-1")


def test_a_fault_rejection_is_a_rejected_report_naming_the_fault() -> None:
    order = NewOrderSingle(cl_ord_id="O-1", symbol="AAPL", side=Side.BUY, qty=5)
    report = rejection(order, "SIM-9")
    assert (report.kind, report.exec_id, report.reason, report.order_qty) == ("rejected", "SIM-9-R", REJECT_REASON, 5)
