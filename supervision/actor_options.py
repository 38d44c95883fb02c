"""The Ray options every actor of the supervision tree is created with: resources, name, lifetime and
the scheduling priority of its process.

Ray starts worker processes at nice 15 unless their runtime environment sets `RAY_worker_niceness`
(its job supervisor does exactly that for the job's driver). The tree's actors are the order path
itself, so by default they run at the config's `supervision.niceness` (0): the same priority as the
broker and the drivers that feed them, not a fraction of the CPU those leave over.
"""

from __future__ import annotations

from typing import Any

__all__ = ["NICENESS_ENV", "actor_options"]

NICENESS_ENV = "RAY_worker_niceness"


def actor_options(namespace: str, name: str, num_cpus: float, niceness: int = 0) -> dict[str, Any]:
    """Options for `ActorClass.options(...)`: detached, named in the system's namespace, at the given
    niceness (merged by Ray with the job's runtime environment, working_dir included)."""
    return {
        "num_cpus": num_cpus,
        "name": name,
        "namespace": namespace,
        "lifetime": "detached",
        "runtime_env": {"env_vars": {NICENESS_ENV: str(niceness)}},
    }
