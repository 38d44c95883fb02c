"""The child protocol: what the supervisor's shell calls on a child's process, and how it makes one.

Every child runs in an actor of the class the plan names (`TreePlan.host`, `module:attribute`), created
detached and named in the system's namespace (`supervision.actor_options`) as

    Host.options(...).remote(payload_json, name, lead_session)

with the child's opaque payload, or None for a *spare* (a started process waiting to become a child),
or a `StandbyPool`'s payload for a *warm standby*. The shell relies on these methods and nothing else
(implemented by actors.stages.host.ChildHost and actors.stages.worker_base.WorkerBase):

- `run() -> dict`: the long-running call, made once, right after the actor is created. It starts the
  child (connect, build, consume or serve) and returns only when the child ends: with the child's final
  counters when it was stopped (or ended by itself: a normal exit), or with
  `{"directive": "restart" | "stop" | "escalate", "error": "Type: message"}` when a decider ended it.
  It raises when the child fails; when the process dies the call fails with Ray's error (whose text
  tells a lost node or a preemption apart, see `supervision.failures`): this is how a crash is known
  within milliseconds. A spare's or a standby's `run()` first waits to become a child; stopped before
  that, it returns `{}`.
- `ready(timeout=60.0) -> {"pid": int, "node": str, ...}`: returns once the child consumes or serves
  (a spare at once, with `"spare": True`); raises if it does not within `timeout`.
- `health() -> {"progress": int, "pending": int}`: a heartbeat. `progress` is a counter that changes
  whenever the child gets work done; `pending` is the work waiting for it (see supervision.health).
  A call that does not answer within two heartbeat intervals is a missed beat.
- `stop() -> None`: drain: stop taking input, finish and acknowledge the batch in hand; `run()` then
  returns. The shell waits `ChildSpec.shutdown` seconds for `run()` to end, then kills the actor.
- `wait_stopped() -> dict`: for a root that adopted the child after its own restart (it did not make
  the `run()` call): returns and raises as `run()` does.
- `become(payload_json, name, timeout) -> {"pid", "node", ...}`: a spare becomes the child the payload
  describes, in its already warm process; returns once that child is ready, as `ready()` does.
- `call("assign", name, payload_json) -> {"pid", "node", ...}`: a warm standby takes a child's place
  (the child's consumers, from their positions) under the child's name; returns once it consumes.
- `call(method, *args)`: any other public method of the hosted worker (operators and fault tests:
  `stats`, `freeze`, `arm_fault`, ...).
"""

from __future__ import annotations

import asyncio
from typing import Any

from supervision.actor_options import actor_options
from supervision.spec import TreePlan, load_host

__all__ = ["ADOPT_TIMEOUT_S", "READY_TIMEOUT_S", "HostFactory", "until_ready"]

#: How long a new child (or a spare taking a child's place) may take to become ready.
READY_TIMEOUT_S = 60.0
#: How long a restarted root waits for a child it adopts to answer `ready()`.
ADOPT_TIMEOUT_S = 5.0


class HostFactory:
    """Creates a child's process: an actor of the plan's host class, told what to be (None: a spare)."""

    def __init__(self, plan: TreePlan) -> None:
        self._plan = plan
        self._host: Any = None

    def create(self, name: str, num_cpus: float, payload: str | None) -> Any:
        if self._host is None:
            self._host = load_host(self._plan.host)
        sup = self._plan.supervision
        options = actor_options(self._plan.system, name, num_cpus, sup.niceness)
        return self._host.options(**options).remote(payload, name, sup.own_session)


async def until_ready(what: str, handle: Any, run_ref: Any, timeout: float = READY_TIMEOUT_S) -> dict[str, Any]:
    """The child's identity once it reports ready; fails fast if its `run()` ends first."""
    ready = asyncio.ensure_future(handle.ready.remote())
    running = asyncio.ensure_future(run_ref)
    try:
        done, _ = await asyncio.wait({ready, running}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not done:
            raise TimeoutError(f"{what} was not ready within {timeout:.0f}s")
        if ready not in done:  # run() ended before the child was ready: it failed to start
            running.result()
            raise RuntimeError(f"{what} stopped before it was ready")
        return ready.result()
    finally:
        ready.cancel()  # (the run() call itself goes on: it is the child's life)
