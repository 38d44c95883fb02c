"""The supervisor core's state as others read it: the rows of `status()` (children and supervisors),
and the snapshot a restarted root takes its counters back from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from supervision.tree import ChildState, NodeState, Tree

__all__ = ["child_rows", "node_rows", "restore", "snapshot"]


def child_rows(tree: Tree, now: float) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "path": c.path, "state": str(c.state), "pid": c.identity.pid, "node": c.identity.node,
         "restarts": c.restarts, "restarts_in_window": c.node.intensity.count(now),
         "last_failure": c.last_failure, "last_failure_at": c.last_failure_at, "last_restart_at": c.last_restart_at}
        for c in tree.children.values()
    ]


def node_rows(tree: Tree, now: float) -> list[dict[str, Any]]:
    return [
        {"path": n.path, "strategy": n.spec.strategy, "state": str(n.state), "restarts": n.restarts,
         "restarts_in_window": n.intensity.count(now), "intensity": n.spec.intensity, "period": n.spec.period,
         "last_failure": n.last_failure}
        for n in tree.nodes.values()
    ]


def snapshot(tree: Tree, gave_up: str | None) -> dict[str, Any]:
    return {
        "gave_up": gave_up,
        "children": {c.id: {"name": c.identity.name, "state": str(c.state), "restarts": c.restarts,
                            "last_failure": c.last_failure, "last_failure_at": c.last_failure_at,
                            "last_restart_at": c.last_restart_at} for c in tree.children.values()},
        "supervisors": {n.id: {"state": str(n.state), "restarts": n.restarts, "last_failure": n.last_failure}
                        for n in tree.nodes.values()},
    }


def restore(tree: Tree, saved: Mapping[str, Any]) -> str | None:
    """Counters and states from a snapshot; returns why the root had given up (None: it had not).

    A child saved as stopped stays stopped; after a give-up every child keeps its saved state. Any other
    child is to run again (adopted, or started): also one whose group was between stop and restart, or
    whose supervisor had escalated, when the old root died."""
    gave_up = saved.get("gave_up")
    children = saved.get("children") or {}
    for child in tree.children.values():
        record = children.get(child.id) or {}
        child.restarts = int(record.get("restarts", child.restarts))
        child.last_failure = record.get("last_failure", child.last_failure)
        child.last_failure_at = record.get("last_failure_at", child.last_failure_at)
        child.last_restart_at = record.get("last_restart_at", child.last_restart_at)
        state = record.get("state")
        if state == ChildState.STOPPED or (gave_up and state in set(ChildState)):
            child.state = ChildState(state)
        elif gave_up:
            child.state = ChildState.ESCALATED
    supervisors = saved.get("supervisors") or {}
    for node in tree.nodes.values():
        record = supervisors.get(node.id) or {}
        node.restarts = int(record.get("restarts", node.restarts))
        node.last_failure = record.get("last_failure", node.last_failure)
        if gave_up and record.get("state") in set(NodeState):
            node.state = NodeState(record["state"])
    if gave_up:
        tree.root.state = NodeState.ESCALATED
    return gave_up
