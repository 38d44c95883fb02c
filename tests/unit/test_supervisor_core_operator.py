"""An operator's stop and start in the supervisor core, and a restarted root adopting its children
from the saved state with their counters."""

from __future__ import annotations

from supervision.core_actions import AdoptChild, StartChild
from supervision.core_events import OperatorStart, OperatorStop
from supervision.decider import Directive
from tests.unit.test_supervisor_core_rig import Rig, small_tree


def deployed(rig: Rig | None = None) -> Rig:
    rig = rig or Rig()
    rig.deploy()
    return rig


def stopped(rig: Rig, *child_ids: str) -> Rig:
    rig.feed(OperatorStop(child_ids))
    rig.drained()
    return rig


# ---- operator stop / start ------------------------------------------------------------------------
def test_an_operator_stop_drains_the_chosen_children_last_started_first() -> None:
    rig = Rig()
    rig.deploy()
    rig.feed(OperatorStop(("risk-0", "risk-1")))
    assert rig.drained() == ["risk-1", "risk-0"]
    assert (rig.state("risk-0"), rig.state("risk-1")) == ("stopped", "stopped")


def test_an_operator_stop_is_not_a_failure_and_restarts_nothing() -> None:
    rig = stopped(deployed(), "venue")
    rig.later(60.0)
    assert rig.starts == {} and rig.state("gateway") == "running"
    assert rig.supervisor("SIM")["restarts_in_window"] == 0 and rig.types("root.SIM.venue") == ["ChildStarted"]


def test_an_operator_stop_cancels_a_restart_that_waits_for_its_backoff() -> None:
    rig = Rig()
    rig.deploy()
    rig.fail("risk-0")
    rig.feed(OperatorStop(("risk-0",)))
    rig.later(60.0)
    assert rig.starts == {} and rig.state("risk-0") == "stopped"


def test_an_operator_start_starts_a_one_for_one_supervisors_children_together() -> None:
    rig = Rig()
    rig.deploy()
    stopped(rig, "risk-0", "risk-1")
    actions = rig.feed(OperatorStart(("risk-0", "risk-1")))
    assert [a.spec.id for a in actions if isinstance(a, StartChild)] == ["risk-0", "risk-1"]


def test_an_operator_start_starts_other_supervisors_children_one_after_another() -> None:
    rig = Rig()
    rig.deploy()
    stopped(rig, "venue", "gateway")
    actions = rig.feed(OperatorStart(("venue", "gateway")))
    assert [a.spec.id for a in actions if isinstance(a, StartChild)] == ["venue"]
    assert rig.all_ready() == ["venue", "gateway"]


def test_an_operator_start_is_announced_as_such_and_is_not_a_restart() -> None:
    rig = Rig()
    rig.deploy()
    rig.fail("risk-0", reason="stop (decider): ValueError: x", directive=Directive.STOP)
    rig.feed(OperatorStart(("risk-0",)))
    rig.all_ready()
    assert rig.types("root.risk.risk-0") == ["ChildStarted", "ChildFailed", "ChildStarted"]
    assert rig.published("root.risk.risk-0")[-1][2] == "started by operator"
    assert (rig.state("risk-0"), rig.row("risk-0")["restarts"]) == ("running", 0)


def test_an_operator_start_leaves_running_children_alone() -> None:
    rig = Rig()
    rig.deploy()
    stopped(rig, "risk-1")
    actions = rig.feed(OperatorStart(("risk-0", "risk-1")))
    assert [a.spec.id for a in actions if isinstance(a, StartChild)] == ["risk-1"]


def test_the_core_is_busy_until_an_operator_start_is_done() -> None:
    rig = stopped(deployed(), "risk-0")
    rig.feed(OperatorStart(("risk-0",)))
    assert rig.core.busy(["risk-0"]) and not rig.core.busy(["venue"])
    rig.all_ready()
    assert not rig.core.busy()


# ---- adoption after a root restart ------------------------------------------------------------------
def restarted_root(rig: Rig) -> Rig:
    """A new core (a restarted root) recovering from the old one's snapshot."""
    new = Rig(rig.root)
    new.clock.advance(rig.clock.monotonic())
    new.recover(rig.core.snapshot())
    return new


def test_a_restarted_root_adopts_each_running_child_by_its_saved_name() -> None:
    old = Rig()
    old.deploy()
    new = restarted_root(old)
    assert {c: a.name for c, a in new.adoptions.items()} == {r["id"]: old.core.tree.children[r["id"]].identity.name
                                                               for r in old.core.children()}
    for child_id in list(new.adoptions):
        new.adopted(child_id)
    assert set(new.states().values()) == {"running"} and new.core.adopted == list(new.core.tree.children)
    assert new.published("root.risk.risk-0") == [("ChildStarted", "root.risk.risk-0", "adopted by a restarted root")]


def test_adoption_keeps_each_childs_counters() -> None:
    old = Rig()
    old.deploy()
    old.restart("risk-0")
    old.restart("risk-0")
    new = restarted_root(old)
    for child_id in list(new.adoptions):
        new.adopted(child_id)
    keys = ("restarts", "last_failure", "last_failure_at", "last_restart_at")
    assert {k: new.row("risk-0")[k] for k in keys} == {k: old.row("risk-0")[k] for k in keys}
    assert new.row("risk-0")["restarts"] == 2


def test_adoption_keeps_each_supervisors_restart_count() -> None:
    old = Rig(small_tree(risk_intensity=0))
    old.deploy()
    old.restart("risk-0")
    old.all_ready()
    new = restarted_root(old)
    assert new.supervisor("risk")["restarts"] == 1


def test_an_adopted_child_is_supervised_again() -> None:
    new = restarted_root(deployed())
    for child_id in list(new.adoptions):
        new.adopted(child_id)
    assert new.restart("risk-0") == ["risk-0"]


def test_a_child_whose_process_is_gone_is_started_after_a_root_restart() -> None:
    old = Rig()
    old.deploy()
    new = restarted_root(old)
    for child_id in list(new.adoptions):
        new.adopted(child_id, found=child_id != "positions")
    assert new.all_ready() == ["positions"]
    assert new.published("root.positions")[-1][2] == "started by a restarted root (not running)"
    assert "positions" not in new.core.adopted


def test_a_child_saved_as_stopped_stays_stopped_after_a_root_restart() -> None:
    old = stopped(deployed(), "risk-1")
    new = restarted_root(old)
    assert "risk-1" not in new.adoptions and new.state("risk-1") == "stopped"


def test_a_root_that_had_given_up_adopts_nothing_and_stays_given_up() -> None:
    old = Rig(small_tree(risk_intensity=0, root_intensity=0))
    old.deploy()
    old.fail("risk-0")
    old.drained()
    new = restarted_root(old)
    assert not any(isinstance(a, AdoptChild) for a in new.actions)
    assert new.core.gave_up == old.core.gave_up and set(new.states().values()) == {"escalated"}
