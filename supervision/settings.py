"""The supervision tree's own settings (`supervision` in the config): strategies, restart intensity,
backoff, child policies, deciders, liveness, spares and the scheduling of the tree's processes.

Generic: it knows no stage. The system's config checks that the kinds it names exist."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from messages.units import Duration

__all__ = ["BackoffConfig", "ChildConfig", "SubtreeConfig", "SupervisionConfig"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackoffConfig(Settings):
    min: Duration = 0.05
    max: Duration = 5.0
    jitter: float = Field(0.2, ge=0, le=1)
    reset_after: Duration = 30.0


_STRATEGY = "^(one_for_one|one_for_all|rest_for_one)$"


class SubtreeConfig(Settings):
    """One supervisor below the root. Unset values are the root's (the venue subtrees default to
    rest_for_one: a restarted venue session restarts its gateway, which reconciles)."""

    strategy: str | None = Field(None, pattern=_STRATEGY)
    intensity: int | None = Field(None, ge=0)
    period: Duration | None = None


class ChildConfig(Settings):
    """A child spec's policy: restart permanent (always), transient (after an abnormal exit) or
    temporary (never); `shutdown`: how long it may drain before it is killed."""

    restart: str = Field("permanent", pattern="^(permanent|transient|temporary)$")
    shutdown: Duration = 10.0


_NAME = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_\-]{0,31}$")]
_DIRECTIVE = "^(resume|restart|stop|escalate)$"


class SupervisionConfig(Settings):
    strategy: str = Field("one_for_one", pattern=_STRATEGY)
    intensity: int = Field(3, ge=0)
    period: Duration = 5.0
    #: The supervisors under the root, by kind (the system names its kinds: its config checks the names).
    supervisors: dict[_NAME, SubtreeConfig] = {}
    #: Child specs by kind.
    children: dict[_NAME, ChildConfig] = {}
    #: Handler exceptions by type name -> resume (retry / dead-letter the message, the default),
    #: restart (replace the actor), stop (stop it for good) or escalate (fail its supervisor).
    deciders: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][\w.]*$")],
                   Annotated[str, StringConstraints(pattern=_DIRECTIVE)]] = {}
    #: Each child is asked for a heartbeat this often; `heartbeat_misses` missed (or no progress with
    #: work pending for as long) means hung: it is killed and restarted.
    heartbeat: Duration = 0.5
    heartbeat_misses: int = Field(3, ge=1)
    backoff: BackoffConfig = BackoffConfig()
    num_cpus: float = Field(0.1, gt=0, le=64)
    #: Spare processes kept started (Ray worker up, code imported) that can become a child of any kind:
    #: a replacement then skips the process start and imports. 0 = every replacement starts cold.
    spares: int = Field(1, ge=0, le=8)
    #: The resources a spare reserves; it hosts only children that need no more than this.
    spare_num_cpus: float = Field(0.1, gt=0, le=64)
    #: A used standby or spare is replaced this long after it took over, so that starting a process
    #: (about 0.7 s of CPU) does not compete with the replacement's rebuild and catch-up. 0 = at once.
    spare_refill_delay: Duration = 3.0
    #: Unix nice value of every process the tree runs in (supervisor, children, spares). Ray starts its
    #: worker processes at 15 unless told otherwise, below the broker and the drivers (0): on a busy
    #: machine the stages then get a small share of the CPU and the order path queues behind the
    #: processes that feed it. 0 runs them at the same priority as everything else on the path.
    niceness: int = Field(0, ge=0, le=19)
    #: Every process of the tree leads its own session, so the kernel's autogroup scheduling weighs each
    #: one like the broker or a driver instead of lumping the whole tree (and Ray's daemons) into one
    #: group (see supervision.scheduling). False leaves the processes in Ray's session.
    own_session: bool = True
