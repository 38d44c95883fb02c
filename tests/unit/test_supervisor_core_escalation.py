"""Escalation in the supervisor core: a supervisor past its intensity stops its children; its parent
restarts the subtree under its own strategy, intensity and backoff; past the root's intensity the root
gives up and every child stays stopped."""

from __future__ import annotations

from supervision.core_actions import GiveUp, StartChild
from supervision.core_events import Failed, OperatorStop
from supervision.tree import ChildState
from tests.unit.test_supervisor_core_rig import Rig, small_tree


def escalating_risk(**tree: object) -> Rig:
    """A deployed tree whose risk supervisor allows no restart, and whose risk-0 just failed."""
    rig = Rig(small_tree(risk_intensity=0, **tree))  # type: ignore[arg-type]
    rig.deploy()
    rig.fail("risk-0")
    return rig


def test_an_escalating_supervisor_stops_its_children_and_says_so() -> None:
    rig = escalating_risk()
    assert rig.drained() == ["risk-1"]
    assert rig.published("root.risk") == [
        ("Escalated", "root.risk", "restart intensity exceeded (0 in 5s), last: risk-0 ActorDiedError: killed")]
    assert rig.supervisor("risk")["last_failure"].startswith("restart intensity exceeded")


def test_the_parent_restarts_an_escalated_subtree_and_leaves_its_other_children_alone() -> None:
    rig = escalating_risk()
    rig.drained()
    rig.after_backoff()
    assert rig.all_ready() == ["risk-0", "risk-1"]
    assert [rig.row(c)["restarts"] for c in ("risk-0", "risk-1", "venue", "positions")] == [1, 1, 0, 0]
    assert rig.types("root.risk") == ["Escalated", "ChildRestarted"]
    assert rig.types("root.risk.risk-1") == ["ChildStarted", "ChildRestarted"], "stopped by the subtree, not failed"


def test_a_restarted_subtree_runs_again_with_a_fresh_intensity_and_counts_its_restart() -> None:
    rig = escalating_risk()
    rig.drained()
    rig.after_backoff()
    rig.all_ready()
    risk = rig.supervisor("risk")
    assert (risk["state"], risk["restarts"], risk["restarts_in_window"]) == ("running", 1, 0)
    assert rig.published("root.risk")[-1][2] == "subtree restarted by root after 0.100s backoff (one_for_one)"


def test_an_escalation_counts_against_the_parents_intensity() -> None:
    rig = escalating_risk()
    assert rig.supervisor("root")["restarts_in_window"] == 1


def test_the_parent_restarts_the_subtree_under_its_own_strategy() -> None:
    rig = escalating_risk(root_strategy="rest_for_one")
    assert rig.drained() == ["risk-1", "positions"]
    rig.after_backoff()
    assert rig.all_ready() == ["risk-0", "risk-1", "positions"]
    assert rig.row("venue")["restarts"] == 0


def test_escalation_goes_up_until_a_supervisor_can_restart() -> None:
    rig = Rig(small_tree(risk_intensity=0, root_intensity=0))
    rig.deploy()
    rig.fail("risk-0")
    assert [t for t, _, _ in rig.published() if t in ("Escalated", "GaveUp")] == ["Escalated"]
    rig.drained()
    assert rig.published("root")[-1][0] == "GaveUp"


def test_past_the_roots_intensity_every_child_is_stopped_last_started_first() -> None:
    rig = Rig(small_tree(risk_intensity=0, root_intensity=0))
    rig.deploy()
    rig.fail("risk-0")
    assert rig.drained() == ["risk-1", "positions", "gateway", "venue"]
    assert set(rig.states().values()) == {ChildState.ESCALATED}


def test_the_root_has_given_up_only_once_every_child_has_stopped() -> None:
    rig = Rig(small_tree(risk_intensity=0, root_intensity=0))
    rig.deploy()
    rig.fail("risk-0")
    assert rig.core.giving_up and rig.core.gave_up is None
    assert not any(isinstance(a, GiveUp) for a in rig.actions)
    rig.drained()
    assert rig.core.gave_up == "restart intensity exceeded (0 in 5s), last: risk escalated"
    assert rig.published("root") == [("GaveUp", "root", f"gave up: {rig.core.gave_up}; trading halted safely "
                                      "(orders are held in their streams until an operator re-applies the config)")]


def test_a_root_that_gave_up_restarts_nothing_more() -> None:
    rig = Rig(small_tree(risk_intensity=0, root_intensity=0))
    rig.deploy()
    mark = rig.mark()
    venue = rig.incarnation("venue")
    rig.fail("risk-0")
    rig.drained()
    rig.feed(Failed("venue", venue, "ActorDiedError: late"))
    rig.later(3600.0)
    assert not any(isinstance(a, StartChild) for a in rig.since(mark))
    assert rig.core.next_due() is None and not rig.core.busy()


def test_a_child_stopped_before_the_escalation_stays_stopped_when_the_subtree_restarts() -> None:
    rig = Rig(small_tree(risk_intensity=0))
    rig.deploy()
    rig.feed(OperatorStop(("risk-1",)))
    rig.drained()
    rig.fail("risk-0")
    rig.after_backoff()
    assert rig.all_ready() == ["risk-0"]
    assert rig.state("risk-1") == "stopped"


def test_a_subtree_child_that_fails_to_start_is_handled_by_its_own_supervisor() -> None:
    rig = escalating_risk()
    rig.drained()
    rig.after_backoff()
    rig.ready("risk-0")
    rig.start_failed("risk-1")  # the restarted risk supervisor (intensity 0) escalates again
    assert rig.types("root.risk") == ["Escalated", "ChildRestarted", "Escalated"]
