"""Start jobs: children the supervisor core is starting, batch after batch. A deploy starts the tree
child by child; an operator's start starts a one_for_one supervisor's children together; a restart
waits for its backoff and for its group's stops, then starts the group in start order.

A child belongs to at most one job: a new job takes its members out of the jobs that had them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["JobKind", "Jobs", "StartJob"]


class JobKind(StrEnum):
    DEPLOY = "started"
    OPERATOR = "started by operator"
    RECOVER = "started by a restarted root (not running)"
    RESTART = "restart"


@dataclass
class StartJob:
    """Batches of child ids, started one batch after the other (a batch's children together).

    A restart (`JobKind.RESTART`) carries each child's ChildRestarted detail (`notes`) and the
    supervisors it restarts whole (`subtrees`: node id -> the detail of the node's ChildRestarted)."""

    kind: JobKind
    pending: list[list[str]]
    due: float = 0.0
    delay: float = 0.0
    notes: dict[str, str] = field(default_factory=dict)
    subtrees: dict[str, str] = field(default_factory=dict)
    #: The batch being started: ids not yet ready.
    current: set[str] = field(default_factory=set)

    def members(self) -> set[str]:
        return self.current | {i for batch in self.pending for i in batch}

    def discard(self, child_ids: Iterable[str]) -> None:
        gone = set(child_ids)
        self.current -= gone
        self.pending = [kept for batch in self.pending if (kept := [i for i in batch if i not in gone])]

    @property
    def done(self) -> bool:
        return not self.current and not self.pending

    def waits_for_time(self, now: float) -> bool:
        return not self.current and bool(self.pending) and now < self.due


class Jobs:
    def __init__(self) -> None:
        self._jobs: list[StartJob] = []

    def __bool__(self) -> bool:
        return bool(self._jobs)

    def add(self, job: StartJob) -> None:
        """Take the new job's members out of the others; a job left empty hands its subtrees over."""
        members = job.members()
        for other in list(self._jobs):
            if other.members() & members:
                other.discard(members)
                if other.done:
                    self._jobs.remove(other)
                    job.subtrees = {**other.subtrees, **job.subtrees}
        self._jobs.append(job)

    def discard(self, child_ids: Iterable[str]) -> list[StartJob]:
        """Take children out of their jobs; returns the jobs that this leaves finished (and drops them)."""
        ids = set(child_ids)
        finished = []
        for job in list(self._jobs):
            if job.members() & ids:
                job.discard(ids)
                if job.done:
                    self._jobs.remove(job)
                    finished.append(job)
        return finished

    def of(self, child_id: str) -> StartJob | None:
        return next((job for job in self._jobs if child_id in job.members()), None)

    def started(self, job: StartJob, child_id: str) -> bool:
        """A member of the job's current batch is ready; True when that finished the job (dropped)."""
        job.current.discard(child_id)
        if job.done:
            self._jobs.remove(job)
            return True
        return False

    def next_batches(self, now: float, draining: set[str]) -> list[tuple[StartJob, list[str]]]:
        """Batches to start now: each job's next one, once its previous batch is ready, its due time has
        come and none of its members is still stopping."""
        out = []
        for job in self._jobs:
            if job.current or not job.pending or now < job.due or job.members() & draining:
                continue
            batch = job.pending.pop(0)
            job.current = set(batch)
            out.append((job, batch))
        return out

    def next_due(self, now: float) -> float | None:
        """When the next job waiting for its backoff may start (None: none waits)."""
        dues = [job.due for job in self._jobs if job.waits_for_time(now)]
        return min(dues) if dues else None

    def members(self) -> set[str]:
        return {i for job in self._jobs for i in job.members()}

    def clear(self) -> None:
        self._jobs.clear()
