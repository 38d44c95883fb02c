"""The supervisor core's restart intensity (per supervisor, a sliding window; the infrastructure's
failures do not count) and backoff (per child and per supervisor: growth, jitter, reset)."""

from __future__ import annotations

import pytest

from supervision.decider import FailureKind
from supervision.settings import BackoffConfig
from tests.unit.test_supervisor_core_rig import Rig, small_tree


def escalated(rig: Rig, node_id: str) -> bool:
    return ("Escalated", rig.core.tree.nodes[node_id].path) in {(t, p) for t, p, _ in rig.published()}


# ---- intensity ---------------------------------------------------------------------------------
def test_failures_up_to_the_intensity_within_the_period_are_restarted() -> None:
    rig = Rig(small_tree(risk_intensity=3))
    rig.deploy()
    for _ in range(3):
        assert rig.restart("risk-0") == ["risk-0"]
    assert not escalated(rig, "risk")
    assert rig.supervisor("risk")["restarts_in_window"] == 3


def test_one_failure_more_than_the_intensity_within_the_period_escalates() -> None:
    rig = Rig(small_tree(risk_intensity=2))
    rig.deploy()
    rig.restart("risk-0")
    rig.restart("risk-1")
    rig.fail("risk-0")
    assert escalated(rig, "risk")
    assert rig.published("root.risk")[0][2] == (
        "restart intensity exceeded (2 in 5s), last: risk-0 ActorDiedError: killed")


def test_failures_further_apart_than_the_period_never_escalate() -> None:
    rig = Rig(small_tree(risk_intensity=1, period=5.0))
    rig.deploy()
    for _ in range(5):
        rig.restart("risk-0")
        rig.later(5.0)
    assert not escalated(rig, "risk") and rig.row("risk-0")["restarts"] == 5


def test_the_window_slides_so_that_only_the_last_period_counts() -> None:
    rig = Rig(small_tree(risk_intensity=3, period=5.0), backoff=BackoffConfig(min=0.001, max=0.001, jitter=0))
    rig.deploy()
    for at in (0.0, 1.0, 2.0, 5.5):  # at 5.5 the failure at 0.0 has left the window
        rig.later(at - rig.clock.monotonic())
        rig.restart("risk-0")
    assert not escalated(rig, "risk")
    rig.later(5.6 - rig.clock.monotonic())
    rig.fail("risk-0")  # those at 1.0, 2.0 and 5.5 are inside it
    assert escalated(rig, "risk")


@pytest.mark.parametrize("kind", [FailureKind.NODE_LOST, FailureKind.PREEMPTED])
def test_a_failure_of_the_infrastructure_does_not_count_against_intensity(kind: FailureKind) -> None:
    rig = Rig(small_tree(risk_intensity=1))
    rig.deploy()
    for _ in range(4):
        assert rig.restart("risk-0", kind=kind) == ["risk-0"]
    assert not escalated(rig, "risk") and rig.supervisor("risk")["restarts_in_window"] == 0


def test_the_children_of_one_supervisor_share_its_intensity() -> None:
    rig = Rig(small_tree(risk_intensity=1))
    rig.deploy()
    rig.restart("risk-0")
    rig.fail("risk-1")
    assert escalated(rig, "risk")


def test_each_supervisor_counts_only_its_own_childrens_failures() -> None:
    rig = Rig(small_tree(risk_intensity=1))
    rig.deploy()
    rig.restart("risk-0")
    rig.restart("venue")
    rig.restart("positions")
    assert not escalated(rig, "risk") and not escalated(rig, "SIM")


# ---- backoff -------------------------------------------------------------------------------------
def test_the_backoff_doubles_with_each_failure_of_a_child_up_to_its_max() -> None:
    rig = Rig(small_tree(risk_intensity=10, period=1000.0))
    rig.deploy()
    for _ in range(6):
        rig.restart("risk-0")
    assert rig.delays() == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0])


def test_a_restart_does_not_start_before_its_backoff_has_passed() -> None:
    rig = Rig()
    rig.deploy()
    rig.restart("risk-0")
    rig.fail("risk-0")  # second failure: 0.2 s
    rig.later(0.19)
    assert rig.starts == {}
    rig.later(0.01)
    assert list(rig.starts) == ["risk-0"]


def test_the_core_says_when_the_next_restart_is_due() -> None:
    rig = Rig()
    rig.deploy()
    rig.later(3.0)
    rig.fail("risk-0")
    assert rig.core.next_due() == pytest.approx(3.1)


def test_jitter_keeps_every_delay_within_its_fraction_of_the_base() -> None:
    rig = Rig(small_tree(risk_intensity=100, period=1000.0), backoff=BackoffConfig(min=0.1, max=2.0, jitter=0.25),
              seed=42)
    rig.deploy()
    for _ in range(40):
        rig.restart("risk-0")
    bases = [min(2.0, 0.1 * 2**i) for i in range(40)]
    assert all(b * 0.75 - 1e-9 <= d <= min(2.0, b * 1.25) + 1e-9 for b, d in zip(bases, rig.delays(), strict=True))
    assert len(set(rig.delays())) > 10, "the jitter spreads them"


def test_the_same_seed_gives_the_same_delays() -> None:
    def delays(seed: int) -> list[float]:
        rig = Rig(small_tree(risk_intensity=100, period=1000.0), backoff=BackoffConfig(jitter=0.5), seed=seed)
        rig.deploy()
        for _ in range(5):
            rig.restart("risk-0")
        return rig.delays()

    assert delays(7) == delays(7) != delays(8)


def test_the_backoff_starts_over_after_a_child_ran_for_reset_after() -> None:
    rig = Rig(small_tree(risk_intensity=10, period=1000.0))
    rig.deploy()
    for _ in range(3):
        rig.restart("risk-0")  # 0.1, 0.2, 0.4
    rig.later(30.0)
    rig.restart("risk-0")
    assert rig.delays()[-1] == pytest.approx(0.1)


def test_a_shorter_stable_run_keeps_the_backoff_growing() -> None:
    rig = Rig(small_tree(risk_intensity=10, period=1000.0))
    rig.deploy()
    for _ in range(3):
        rig.restart("risk-0")
    rig.later(29.9)
    rig.restart("risk-0")
    assert rig.delays()[-1] == pytest.approx(0.8)


def test_each_child_has_its_own_backoff() -> None:
    rig = Rig(small_tree(risk_intensity=10, period=1000.0))
    rig.deploy()
    rig.restart("risk-0")
    rig.restart("risk-0")
    rig.restart("risk-1")
    assert rig.delays() == pytest.approx([0.1, 0.2, 0.1])


def test_a_subtree_is_restarted_after_its_parents_own_backoff_which_grows() -> None:
    rig = Rig(small_tree(risk_intensity=0, root_intensity=10, period=1000.0))
    rig.deploy()
    for _ in range(3):
        rig.restart("risk-0")  # risk escalates each time; the root restarts the subtree
    assert rig.delays() == pytest.approx([0.1, 0.2, 0.4])
    assert rig.supervisor("risk")["restarts"] == 3
