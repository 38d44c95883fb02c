"""The supervision tree and child specs from the config; what a failure counts as."""

from __future__ import annotations

from cluster.config import parse_config
from cluster.plan import tree_plan
from supervision.decider import FailureKind, counts_against_intensity
from supervision.spec import NodeSpec, Restart
from supervision.supervisor import classify_failure


def shape(node: NodeSpec) -> list[object]:
    return [(m.id, shape(m)) if isinstance(m, NodeSpec) else m.id for m in node.members]


def test_the_tree_is_one_supervisor_per_venue_then_risk_allocator_and_positions() -> None:
    cfg = parse_config({"venues": {"SIM": {}, "XNYS": {}}, "stages": {"risk": {"replicas": 2}}})
    assert shape(tree_plan(cfg).root) == [
        ("SIM", ["venue-SIM", "gateway-SIM"]), ("XNYS", ["venue-XNYS", "gateway-XNYS"]),
        ("risk", ["risk-0", "risk-1"]), ("allocator", ["allocator-0", "allocator-1"]), "positions"]


def test_a_venue_supervisor_restarts_the_rest_for_one_by_default_and_others_inherit_the_roots_intensity() -> None:
    cfg = parse_config({"supervision": {"intensity": 7, "period": "9s"}})
    root = tree_plan(cfg).root
    venue, risk = root.members[0], root.members[1]
    assert (venue.strategy, risk.strategy) == ("rest_for_one", "one_for_one")
    assert (risk.intensity, risk.period) == (7, 9.0)


def test_a_subtree_override_sets_its_own_strategy_and_intensity() -> None:
    cfg = parse_config({"supervision": {"supervisors": {"risk": {"strategy": "one_for_all", "intensity": 1}}}})
    risk = next(m for m in tree_plan(cfg).root.members if m.id == "risk")
    assert (risk.strategy, risk.intensity) == ("one_for_all", 1)


def test_child_policies_by_kind_set_restart_type_and_shutdown_time() -> None:
    cfg = parse_config({"supervision": {"children": {"allocator": {"restart": "transient", "shutdown": "2s"}}}})
    children = {c.id: c for c in tree_plan(cfg).root.walk()}
    assert (children["allocator-0"].restart, children["allocator-0"].shutdown) == (Restart.TRANSIENT, 2.0)
    assert children["risk-0"].restart is Restart.PERMANENT


def test_a_lost_node_is_not_the_childs_fault_and_does_not_count_against_intensity() -> None:
    kind = classify_failure(RuntimeError("ActorDiedError: the actor died because its node died (NodeDiedError)"))
    assert kind is FailureKind.NODE_LOST and not counts_against_intensity(kind)


def test_a_killed_process_counts_against_intensity() -> None:
    kind = classify_failure(RuntimeError("ActorDiedError: the worker process exited unexpectedly"))
    assert kind is FailureKind.PROCESS_DIED and counts_against_intensity(kind)
