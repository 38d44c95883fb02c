"""A local stack whose state directory was removed while it ran is not left behind: `up` refuses to
start a second stack beside it, and `down` finds it by the marker in its processes' environment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.local.procs import kill_tree, pid_alive, pids_with_env
from cluster.local.stack import STACK_ENV, LocalStack, StackError, StackState
from tests.conftest import wait_until

pytestmark = pytest.mark.integration

@pytest.fixture
def orphaned(tmp_path: Path) -> Iterator[tuple[Path, StackState]]:
    """A stack started from a state directory that was then deleted (as `rm -rf .trade` would); each
    test gets its own (one of them stops it)."""
    base = tmp_path / ".trade"
    stack = LocalStack(base=base, num_cpus=1)
    state = stack.start("examples/local.yaml")
    marker = stack.marker()
    shutil.rmtree(base)
    try:
        yield base, state
    finally:
        for pid in (state.ray_pid, state.nats_pid, *pids_with_env(STACK_ENV, marker)):
            if pid_alive(pid):
                kill_tree(pid, timeout=3.0)
        shutil.rmtree(state.ray_temp_dir, ignore_errors=True)


def test_a_process_is_found_by_a_variable_in_its_environment(tmp_path: Path) -> None:
    marked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                              env={STACK_ENV: str(tmp_path)})
    unmarked = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        found = pids_with_env(STACK_ENV, str(tmp_path))
        assert marked.pid in found
        assert unmarked.pid not in found
    finally:
        for proc in (marked, unmarked):
            proc.kill()
            proc.wait()


def test_up_refuses_to_start_beside_a_stack_whose_state_file_is_gone(orphaned) -> None:
    base, state = orphaned
    second = LocalStack(base=base, num_cpus=1)
    try:
        with pytest.raises(StackError, match=r"still running.*trade down"):
            second.start("examples/local.yaml")
    finally:
        if second.state is not None:  # it did start one: stop it, whatever the test says
            second.stop()
    assert pid_alive(state.nats_pid) and pid_alive(state.ray_pid), "the refused start stopped nothing"
    assert not (base / "stack.json").exists(), "and started nothing"


def test_down_stops_every_process_of_a_stack_whose_state_file_is_gone(orphaned) -> None:
    base, state = orphaned
    stack = LocalStack(base=base, num_cpus=1)
    assert stack.orphans(), "the orphaned stack's processes are found"
    assert stack.stop() is True
    wait_until(lambda: not pid_alive(state.nats_pid) and not pid_alive(state.ray_pid), 30,
               what="nats-server and Ray's head to stop")
    wait_until(lambda: not stack.orphans(), 30, what="every process of the stack to stop")
    assert not Path(state.ray_temp_dir).exists(), "Ray's temp dir is removed too"
    assert stack.stop() is False, "nothing left to stop"
