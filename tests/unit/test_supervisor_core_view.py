"""What others read of the supervisor core: the rows of `status()` (the CLI, its table and the metrics
read every key), the snapshot a restarted root recovers from, and what the core imports."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from tests.unit.test_supervisor_core_rig import Rig

ROOT = Path(__file__).resolve().parents[2]
CHILD_KEYS = {"id", "path", "state", "pid", "node", "restarts", "restarts_in_window", "last_failure",
              "last_failure_at", "last_restart_at"}
SUPERVISOR_KEYS = {"path", "strategy", "state", "restarts", "restarts_in_window", "intensity", "period",
                   "last_failure"}


def test_each_child_row_has_every_key_status_readers_use() -> None:
    rig = Rig()
    rig.deploy()
    assert [set(row) for row in rig.core.children()] == [CHILD_KEYS] * 5


def test_each_supervisor_row_has_every_key_status_readers_use() -> None:
    rig = Rig()
    assert [r["path"] for r in rig.core.supervisors()] == ["root", "root.SIM", "root.risk"]
    assert all(set(row) == SUPERVISOR_KEYS for row in rig.core.supervisors())


def test_states_are_plain_strings_in_the_rows() -> None:
    rig = Rig()
    rig.deploy()
    assert {type(r["state"]) for r in rig.core.children() + rig.core.supervisors()} == {str}


def test_a_failed_childs_row_tells_when_and_why() -> None:
    rig = Rig()
    rig.deploy()
    rig.later(2.0)
    rig.restart("risk-0", reason="ActorDiedError: oom")
    row = rig.row("risk-0")
    assert (row["last_failure"], row["last_failure_at"]) == ("ActorDiedError: oom", rig.clock.time() - 0.1)
    assert row["last_restart_at"] == rig.clock.time() and row["restarts_in_window"] == 1


def test_the_snapshot_is_json_with_each_childs_actor_name_and_counters() -> None:
    rig = Rig()
    rig.deploy()
    saved = json.loads(json.dumps(rig.core.snapshot()))
    assert saved["gave_up"] is None
    assert saved["children"]["risk-0"]["name"] == rig.core.tree.children["risk-0"].identity.name
    assert saved["supervisors"]["risk"] == {"state": "running", "restarts": 0, "last_failure": None}


def _imports(module: str) -> set[str]:
    """Every module `module` imports, transitively through the project's own packages (read, not run)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = ROOT.joinpath(*name.split("."))
        file = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if not file.exists():
            continue
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Import):
                todo.extend(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                todo.append(node.module)
                todo.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return seen


def test_the_supervisor_core_imports_no_ray_no_broker_and_no_layer_above_supervision() -> None:
    roots = {name.split(".")[0] for name in _imports("supervision.core") | _imports("supervision.failures")}
    assert roots & {"ray", "nats", "actors", "cluster"} == set()
