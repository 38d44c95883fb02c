"""The supervision tree as the supervisor core keeps it: each child's and each supervisor's state and
counters, built from the plan's `NodeSpec`. Pure data; the decisions are in `supervision.core`."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum

from supervision.backoff import Backoff
from supervision.intensity import RestartIntensity
from supervision.settings import BackoffConfig
from supervision.spec import ChildSpec, NodeSpec

__all__ = ["Child", "ChildState", "Identity", "Node", "NodeState", "Tree"]


class ChildState(StrEnum):
    STARTING = "starting"  # its process is being started (or adopted); not ready yet
    RUNNING = "running"  # ready: it consumes or serves
    FAILED = "failed"  # it failed; its restart waits for its backoff (or its group's stops)
    WAITING = "waiting"  # queued to start: with its group's restart, a deploy or an operator start
    STOPPED = "stopped"  # stopped for good (operator, decider, restart type); an operator may start it
    ESCALATED = "escalated"  # stopped because its supervisor escalated (or the root gave up)


class NodeState(StrEnum):
    RUNNING = "running"
    ESCALATED = "escalated"  # its intensity was exceeded: its children are stopped, its parent decides


@dataclass(frozen=True)
class Identity:
    """Who a running child is: its actor's name, its process id and its node."""

    name: str | None = None
    pid: int | None = None
    node: str | None = None


@dataclass
class Node:
    """A supervisor: its strategy, intensity and backoff over its ordered members (child or node ids)."""

    spec: NodeSpec
    parent: Node | None
    intensity: RestartIntensity
    backoff: Backoff
    members: list[str] = field(default_factory=list)
    state: NodeState = NodeState.RUNNING
    restarts: int = 0
    last_failure: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def path(self) -> str:
        return self.spec.id if self.parent is None else f"{self.parent.path}.{self.spec.id}"

    def fresh_intensity(self) -> None:
        """A restarted subtree starts with an empty intensity window."""
        self.intensity = RestartIntensity(self.spec.intensity, self.spec.period)


@dataclass
class Child:
    """A supervised child. `incarnation` numbers its starts: an event about an older one is stale.
    `live`: the current incarnation has a process the shell holds (starting or running)."""

    spec: ChildSpec
    node: Node
    backoff: Backoff
    state: ChildState = ChildState.WAITING
    incarnation: int = 0
    live: bool = False
    identity: Identity = Identity()
    restarts: int = 0
    last_failure: str | None = None
    last_failure_at: float | None = None
    last_restart_at: float | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def path(self) -> str:
        return f"{self.node.path}.{self.spec.id}"


class Tree:
    """Every child and supervisor of a plan's tree, children in start order."""

    def __init__(self, root: NodeSpec, backoff: BackoffConfig, rng: random.Random) -> None:
        self.children: dict[str, Child] = {}
        self.nodes: dict[str, Node] = {}
        self.root = self._build(root, None, backoff, rng)
        self._order = {child_id: i for i, child_id in enumerate(self.children)}

    def _build(self, spec: NodeSpec, parent: Node | None, backoff: BackoffConfig, rng: random.Random) -> Node:
        if spec.id in self.nodes or spec.id in self.children:
            raise ValueError(f"the tree's ids must be unique: {spec.id!r} is repeated")
        node = Node(spec, parent, RestartIntensity(spec.intensity, spec.period), Backoff(backoff, rng))
        self.nodes[spec.id] = node
        for member in spec.members:
            if isinstance(member, NodeSpec):
                self._build(member, node, backoff, rng)
            else:
                self._add_child(member, node, backoff, rng)
            node.members.append(member.id)
        return node

    def _add_child(self, spec: ChildSpec, node: Node, backoff: BackoffConfig, rng: random.Random) -> None:
        if spec.id in self.nodes or spec.id in self.children:
            raise ValueError(f"the tree's ids must be unique: {spec.id!r} is repeated")
        self.children[spec.id] = Child(spec, node, Backoff(backoff, rng))

    def under(self, member_id: str) -> list[Child]:
        """The children a member stands for, in start order: itself, or every child of a subtree."""
        if member_id in self.children:
            return [self.children[member_id]]
        return [c for m in self.nodes[member_id].members for c in self.under(m)]

    def in_start_order(self, child_ids: set[str] | list[str]) -> list[str]:
        return sorted(set(child_ids), key=self._order.__getitem__)

    def nodes_under(self, member_id: str) -> list[Node]:
        """The supervisors a member stands for: none for a child, a node and every node below it."""
        if member_id in self.children:
            return []
        node = self.nodes[member_id]
        return [node, *(n for m in node.members for n in self.nodes_under(m))]
