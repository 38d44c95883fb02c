"""Each process of the tree as its own unit for the kernel's scheduler: its own session.

Linux's autogroup (`/proc/sys/kernel/sched_autogroup_enabled`, on by default in many kernels) shares
the CPU between *sessions* first and only then between the processes inside one. Ray starts every
worker process in its raylet's session, so without this the whole tree (every stage replica, the
venue, the positions projection) and Ray's own daemons were one scheduling entity, weighted the same
as the broker alone or a driver alone: on a busy machine the order path got a share that did not grow
with the number of processes on it, and each stage waited behind its siblings.

A Ray worker leads its own process group, and a group leader may not start a session, so the process
first joins its parent's group (same session), then starts a session of its own. Nothing in Ray or
in this system relies on the session of a worker: Ray stops a worker by its pid, the local stack finds
its processes by their environment (`TRADE_STACK_DIR`). Where autogroup is off, this changes nothing.
"""

from __future__ import annotations

import logging
import os

__all__ = ["own_session"]

log = logging.getLogger(__name__)


def own_session() -> bool:
    """Make this process the leader of a new session (and so of its own autogroup). True when it is
    one afterwards; a failure is logged and harmless (the process keeps running where it was)."""
    pid = os.getpid()
    try:
        if os.getsid(0) == pid:
            return True
        if os.getpgid(0) == pid:
            os.setpgid(0, os.getpgid(os.getppid()))
        os.setsid()
        return True
    except OSError as exc:
        log.warning("process %d stays in session %d: %r", pid, os.getsid(0), exc)
        return False
