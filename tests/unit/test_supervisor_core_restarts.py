"""The supervisor core restarts children: deploy, the three strategies, restart types, deciders, hung
children, replacements that fail to start, and events about processes already replaced."""

from __future__ import annotations

import pytest

from supervision.core_actions import KillChild, Proc, StartChild, StopChildren
from supervision.core_events import Deploy, Failed, StopAll
from supervision.decider import Directive
from supervision.spec import Restart
from tests.unit.test_supervisor_core_rig import Rig, small_tree

ORDER = ["venue", "gateway", "risk-0", "risk-1", "positions"]


# ---- deploy -------------------------------------------------------------------------------------
def test_a_deploy_starts_the_children_one_after_another_in_start_order() -> None:
    rig = Rig()
    actions = rig.feed(Deploy())
    assert [a.spec.id for a in actions if isinstance(a, StartChild)] == ["venue"]
    assert rig.all_ready() == ORDER
    assert set(rig.states().values()) == {"running"}


def test_a_started_child_is_announced_with_its_identity() -> None:
    rig = Rig()
    rig.deploy()
    assert rig.published("root.risk.risk-0") == [("ChildStarted", "root.risk.risk-0", "started")]
    row = rig.row("risk-0")
    assert row["pid"] is not None and row["node"] == "node-1"


# ---- strategies ---------------------------------------------------------------------------------
def test_one_for_one_restarts_only_the_failed_child() -> None:
    rig = Rig()
    rig.deploy()
    assert rig.restart("risk-0") == ["risk-0"]
    assert rig.stops == [] and rig.killed() == ["risk-0"]
    assert rig.row("risk-0")["restarts"] == 1 and rig.row("risk-1")["restarts"] == 0


def test_one_for_all_stops_the_others_last_started_first_and_restarts_all_in_start_order() -> None:
    rig = Rig(small_tree(risk="one_for_all"))
    rig.deploy()
    rig.fail("risk-0")
    assert rig.drained() == ["risk-1"]
    rig.after_backoff()
    assert rig.all_ready() == ["risk-0", "risk-1"]
    assert (rig.row("risk-0")["restarts"], rig.row("risk-1")["restarts"]) == (1, 1)


def test_one_for_all_stops_every_other_child_last_started_first() -> None:
    rig = Rig(small_tree(root_strategy="one_for_all"))
    rig.deploy()
    rig.fail("positions")
    assert rig.drained() == ["risk-1", "risk-0", "gateway", "venue"]


def test_rest_for_one_restarts_the_failed_child_and_those_started_after_it() -> None:
    rig = Rig()
    rig.deploy()
    assert rig.restart("venue") == ["venue", "gateway"]
    assert rig.row("risk-0")["restarts"] == 0


def test_rest_for_one_leaves_the_children_started_before_the_failed_one_alone() -> None:
    rig = Rig()
    rig.deploy()
    assert rig.restart("gateway") == ["gateway"]
    assert rig.row("venue")["restarts"] == 0


def test_a_group_restart_waits_until_the_stopped_children_have_drained() -> None:
    rig = Rig()
    rig.deploy()
    rig.fail("venue")
    rig.later(10.0)
    assert rig.starts == {} and rig.state("gateway") == "waiting"
    rig.drained()
    assert list(rig.starts) == ["venue"]


def test_a_group_restart_starts_the_next_child_only_once_the_previous_is_ready() -> None:
    rig = Rig()
    rig.deploy()
    rig.fail("venue")
    rig.drained()
    rig.after_backoff()
    assert list(rig.starts) == ["venue"]
    rig.ready("venue")
    assert list(rig.starts) == ["gateway"]


def test_the_others_of_a_group_are_announced_as_restarted_with_the_failed_child() -> None:
    rig = Rig()
    rig.deploy()
    rig.restart("venue")
    assert rig.published("root.SIM.gateway")[-1] == (
        "ChildRestarted", "root.SIM.gateway", "restarted after 0.100s backoff with venue (rest_for_one)")
    assert rig.types("root.SIM.venue") == ["ChildStarted", "ChildFailed", "ChildRestarted"]


def test_a_failed_child_waits_as_failed_and_its_group_as_waiting() -> None:
    rig = Rig()
    rig.deploy()
    rig.fail("venue", reason="ActorDiedError: gone")
    assert (rig.state("venue"), rig.state("gateway")) == ("failed", "waiting")
    assert rig.row("venue")["last_failure"] == "ActorDiedError: gone"


# ---- restart types ------------------------------------------------------------------------------
def test_a_permanent_child_is_restarted_after_a_normal_exit() -> None:
    rig = Rig()
    rig.deploy()
    rig.exit("positions")
    rig.after_backoff()
    assert rig.all_ready() == ["positions"]


@pytest.mark.parametrize("end", ["fail", "hang"])
def test_a_transient_child_is_restarted_after_an_abnormal_end(end: str) -> None:
    rig = Rig(small_tree(restart={"positions": Restart.TRANSIENT}))
    rig.deploy()
    getattr(rig, end)("positions")
    rig.after_backoff()
    assert rig.all_ready() == ["positions"]


def test_a_transient_child_that_exits_normally_stays_stopped() -> None:
    rig = Rig(small_tree(restart={"positions": Restart.TRANSIENT}))
    rig.deploy()
    rig.exit("positions")
    assert rig.state("positions") == "stopped" and rig.core.next_due() is None and rig.starts == {}


@pytest.mark.parametrize("end", ["fail", "exit", "hang"])
def test_a_temporary_child_is_never_restarted(end: str) -> None:
    rig = Rig(small_tree(restart={"positions": Restart.TEMPORARY}))
    rig.deploy()
    getattr(rig, end)("positions")
    assert rig.state("positions") == "stopped" and rig.core.next_due() is None and rig.starts == {}


def test_a_child_stopped_for_good_is_left_out_of_its_groups_restart() -> None:
    rig = Rig(small_tree(restart={"gateway": Restart.TEMPORARY}))
    rig.deploy()
    rig.fail("gateway")
    assert rig.restart("venue") == ["venue"]
    assert rig.state("gateway") == "stopped"


# ---- deciders ---------------------------------------------------------------------------------
def test_a_deciders_stop_stops_the_child_for_good() -> None:
    rig = Rig()
    rig.deploy()
    rig.fail("risk-0", reason="stop (decider): ValueError: bad", directive=Directive.STOP)
    rig.later(60.0)
    assert rig.state("risk-0") == "stopped" and rig.starts == {}
    assert rig.killed() == ["risk-0"], "its run() ended but its process may live on"
    assert rig.types("root.risk.risk-0") == ["ChildStarted", "ChildFailed"]


def test_a_deciders_restart_restarts_the_child() -> None:
    rig = Rig()
    rig.deploy()
    assert rig.restart("risk-0", reason="restart (decider): ValueError: bad", directive=Directive.RESTART) == ["risk-0"]
    assert rig.row("risk-0")["last_failure"] == "restart (decider): ValueError: bad"


def test_a_deciders_escalate_escalates_at_once_whatever_the_intensity() -> None:
    rig = Rig()
    rig.deploy()
    rig.fail("risk-0", reason="escalate (decider): ValueError: bad", directive=Directive.ESCALATE)
    assert rig.published("root.risk") == [("Escalated", "root.risk",
                                           "risk-0 asked to escalate: escalate (decider): ValueError: bad")]
    assert rig.drained() == ["risk-1"]
    rig.after_backoff()
    assert rig.all_ready() == ["risk-0", "risk-1"], "the root restarted the risk subtree"


# ---- hung ---------------------------------------------------------------------------------------
def test_a_hung_child_is_killed_and_restarted_with_the_verdict_as_its_failure() -> None:
    rig = Rig()
    rig.deploy()
    rig.hang("risk-1", "stalled: no progress for 3 x 0.5s")
    assert rig.killed() == ["risk-1"]
    assert rig.row("risk-1")["last_failure"] == "hung (stalled: no progress for 3 x 0.5s)"
    rig.after_backoff()
    assert rig.all_ready() == ["risk-1"]


# ---- replacements that fail to start ------------------------------------------------------------
def test_a_replacement_that_fails_to_start_counts_as_another_failure() -> None:
    rig = Rig()
    rig.deploy()
    rig.fail("risk-0")
    rig.after_backoff()
    rig.start_failed("risk-0", "TimeoutError: not ready")
    assert rig.state("risk-0") == "failed" and rig.row("risk-0")["last_failure"] == "TimeoutError: not ready"
    assert rig.supervisor("risk")["restarts_in_window"] == 2
    assert rig.delays() == [0.1, 0.2], "and it backs off further"


def test_a_replacement_that_fails_to_start_keeps_its_group_waiting() -> None:
    rig = Rig()
    rig.deploy()
    rig.fail("venue")
    rig.drained()
    rig.after_backoff()
    rig.start_failed("venue")
    rig.later(0.05)
    assert rig.starts == {} and rig.state("gateway") == "waiting"
    rig.after_backoff()
    assert rig.all_ready() == ["venue", "gateway"]


def test_a_start_that_fails_during_deploy_is_retried_and_the_deploy_goes_on() -> None:
    rig = Rig()
    rig.feed(Deploy())
    rig.start_failed("venue")
    assert list(rig.starts) == ["risk-0"], "the rest of the venue's group waits for it; the others start"
    rig.all_ready()
    rig.after_backoff()
    assert rig.all_ready() == ["venue", "gateway"]
    assert not rig.core.busy()


# ---- events about replaced processes -------------------------------------------------------------
def test_an_event_about_a_replaced_process_is_ignored() -> None:
    rig = Rig()
    rig.deploy()
    old = rig.incarnation("risk-0")
    rig.restart("risk-0")
    assert rig.feed(Failed("risk-0", old, "late news")) == []
    assert rig.state("risk-0") == "running"


def test_a_process_that_becomes_ready_after_it_was_replaced_is_killed() -> None:
    rig = Rig(small_tree(risk="one_for_all"))
    rig.deploy()
    rig.fail("risk-0")
    rig.drained()
    rig.after_backoff()
    rig.ready("risk-0")
    late = rig.starts["risk-1"]
    rig.fail("risk-0")  # risk-1's start is still under way: its group restarts again
    assert any(isinstance(a, StopChildren) and a.procs == (Proc("risk-1", late),) for a in rig.actions)
    assert rig.ready("risk-1") == [KillChild(Proc("risk-1", late))]


def test_stop_all_drains_every_live_child_last_started_first() -> None:
    rig = Rig()
    rig.deploy()
    rig.fail("positions", directive=Directive.STOP)
    rig.feed(StopAll())
    assert rig.drained() == ["risk-1", "risk-0", "gateway", "venue"]
    assert set(rig.states().values()) == {"stopped"}


def test_a_child_that_never_ran_is_announced_as_started_when_its_group_restarts() -> None:
    rig = Rig()
    rig.feed(Deploy())
    rig.start_failed("venue")
    rig.all_ready()
    rig.after_backoff()
    rig.all_ready()
    assert rig.types("root.SIM.gateway") == ["ChildStarted"] and rig.row("gateway")["restarts"] == 0
    assert rig.types("root.SIM.venue") == ["ChildFailed", "ChildRestarted"]
