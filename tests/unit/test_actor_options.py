"""The tree's actors are created detached, named in the config's namespace, at the config's niceness."""

from __future__ import annotations

import pytest

from cluster.config import ConfigError, SystemConfig, parse_config
from supervision.actor_options import NICENESS_ENV, actor_options


def _cfg(**supervision: object) -> SystemConfig:
    return parse_config({"name": "desk", "supervision": supervision})


def _options(cfg: SystemConfig, name: str, num_cpus: float) -> dict[str, object]:
    return actor_options(cfg.name, name, num_cpus, cfg.supervision.niceness)


def test_actors_run_at_niceness_zero_by_default() -> None:
    options = _options(_cfg(), "desk-risk-0", 0.1)
    assert options["runtime_env"] == {"env_vars": {NICENESS_ENV: "0"}}


def test_the_configured_niceness_is_passed_to_ray() -> None:
    options = _options(_cfg(niceness=10), "desk-risk-0", 0.1)
    assert options["runtime_env"]["env_vars"][NICENESS_ENV] == "10"


def test_actors_are_detached_named_and_sized_from_the_arguments() -> None:
    options = _options(_cfg(), "desk-risk-0", 0.25)
    assert {k: options[k] for k in ("num_cpus", "name", "namespace", "lifetime")} == {
        "num_cpus": 0.25, "name": "desk-risk-0", "namespace": "desk", "lifetime": "detached"}


@pytest.mark.parametrize("value", [-1, 20])
def test_a_niceness_outside_0_to_19_is_a_config_error(value: int) -> None:
    with pytest.raises(ConfigError, match=r"supervision\.niceness"):
        _cfg(niceness=value)
