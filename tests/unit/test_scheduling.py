"""A process of the tree leaves Ray's session for its own (autogroup scheduling per process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cluster.config import SupervisionConfig

ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import os
from supervision.scheduling import own_session
before = os.getsid(0)
ok = own_session()
print(before, os.getsid(0), os.getpgid(0), int(ok))
"""


def _run_probe() -> tuple[int, int, int, bool]:
    # process_group=0: the child leads its own process group inside this session, as a Ray worker does.
    proc = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, capture_output=True, text=True,
                          process_group=0, timeout=60, check=True)
    sid_before, sid_after, pgid_after, ok = (int(x) for x in proc.stdout.split())
    return sid_before, sid_after, pgid_after, bool(ok)


def test_a_process_group_leader_in_its_parents_session_becomes_the_leader_of_its_own_session() -> None:
    sid_before, sid_after, pgid_after, ok = _run_probe()
    assert sid_before == os.getsid(0), "the probe starts in this test's session"
    assert ok
    assert sid_after != sid_before
    assert sid_after == pgid_after, "a new session, led by the probe, with the probe's own process group"


def test_a_session_leader_stays_where_it_is() -> None:
    # This test process is not necessarily a session leader; a fresh session makes one that is.
    probe = "import os; from supervision.scheduling import own_session; s = os.getsid(0); " \
            "print(int(s == os.getpid()), int(own_session()), int(os.getsid(0) == s))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                         start_new_session=True, timeout=60, check=True).stdout.split()
    assert out == ["1", "1", "1"]


def test_own_session_is_on_by_default() -> None:
    assert SupervisionConfig().own_session is True
