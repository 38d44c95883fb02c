"""A local Ray head started as `ray start --head --block` in its own process group, so that stopping
it stops exactly the processes it started (and nobody else's Ray)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from cluster.errors import TradingError
from cluster.local.procs import free_port, kill_tree, pid_alive

__all__ = ["GCS_BOUNDS", "RAY_TEMP_PREFIX", "RayHead", "RayHeadError"]

#: The name every Ray head's temp dir starts with (under the system temp dir).
RAY_TEMP_PREFIX = "trade-ray-"

#: Bounds on what the head's GCS keeps for observability: the events of the latest 10,000 tasks (Ray's
#: default, 100,000, is reached after about an hour of the supervisor's heartbeats and takes ~100 MB) and
#: the latest 1,000 dead actors (every killed or replaced child leaves one; the default keeps 100,000).
GCS_BOUNDS = {"RAY_task_events_max_num_task_in_gcs": "10000", "RAY_maximum_gcs_destroyed_actor_cached_count": "1000"}


class RayHeadError(TradingError, RuntimeError):
    pass


class RayHead:
    def __init__(self, log_file: str | Path, num_cpus: float = 4, object_store_mb: int = 256,
                 env: dict[str, str] | None = None) -> None:
        self.log_file = Path(log_file)
        self.num_cpus = num_cpus
        self.object_store_mb = object_store_mb
        self.env = env or {}
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.pid: int | None = None
        self.temp_dir = tempfile.mkdtemp(prefix=RAY_TEMP_PREFIX)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.gcs_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def command(self) -> list[str]:
        ray = str(Path(sys.executable).parent / "ray")
        return [
            ray, "start", "--head", "--block", "--node-ip-address", "127.0.0.1",
            "--port", str(self.gcs_port), "--num-cpus", str(self.num_cpus),
            "--object-store-memory", str(self.object_store_mb * 2**20),
            "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
            "--dashboard-port", str(self.dashboard_port),
            "--ray-client-server-port", str(free_port()),
            "--dashboard-agent-listen-port", str(free_port()),
            "--dashboard-agent-grpc-port", str(free_port()),
            "--metrics-export-port", str(free_port()),
            "--runtime-env-agent-port", str(free_port()),
            "--temp-dir", self.temp_dir, "--disable-usage-stats",
        ]

    def start(self, timeout: float = 90.0) -> None:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        venv_bin = str(Path(sys.executable).parent)
        env = GCS_BOUNDS | os.environ | {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
                                         "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"} | self.env
        with open(self.log_file, "ab") as log:
            self._proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                          env=env, start_new_session=True)
        self.pid = self._proc.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RayHeadError(f"ray start exited with {self._proc.returncode}; see {self.log_file}")
            if self._jobs_api_up():
                return
            time.sleep(0.25)
        self.stop()
        raise RayHeadError(f"Ray head did not come up within {timeout:.0f}s; see {self.log_file}")

    def _jobs_api_up(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.dashboard_url}/api/version", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # it answers (401 when token authentication is on): it is up
        except Exception:
            return False

    def stop(self) -> None:
        if self.pid is not None and pid_alive(self.pid):
            kill_tree(self.pid, timeout=3.0)
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
