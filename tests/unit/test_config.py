"""The one config file: loading, strictness, human units and derived values."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cluster.config import ConfigError, RiskLimits, load_config, parse_config
from messages.units import parse_bytes, parse_duration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_local_example_config_loads() -> None:
    config = load_config(EXAMPLES / "local.yaml")
    assert config.partitions == 8
    assert config.nats.max_bytes == 2**30
    assert config.stages.risk.replicas == 2
    assert config.allocation_profiles["FUND3"].split == {
        "A": Decimal(33),
        "B": Decimal(33),
        "C": Decimal(34),
    }


def test_an_empty_config_gives_the_defaults() -> None:
    config = parse_config(None)
    assert config.partitions == 16
    assert config.stages.gateway.replicas == 1


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"stages": {"risk": {"replicaz": 2}}}, "stages.risk.replicaz"),
        ({"partitionz": 4}, "partitionz"),
        ({"nats": {"uri": "nats://x:4222"}}, "nats.uri"),
        ({"risk": {"accounts": {"ACC1": {"max_qty": 5}}}}, "risk.accounts.ACC1.max_qty"),
        ({"stages": {"risk": {"delivery": {"ackwait": "5s"}}}}, "stages.risk.delivery.ackwait"),
    ],
)
def test_an_unknown_key_is_rejected_with_its_dotted_path(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"{path}: unknown key")):
        parse_config(data)


@pytest.mark.parametrize("value", ["5 parsecs", "fast", "-5s", "5 s s", ""])
def test_a_bad_duration_string_is_rejected(value: str) -> None:
    with pytest.raises(ConfigError, match=r"supervision\.period"):
        parse_config({"supervision": {"period": value}})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("5s", 5.0), ("7d", 7 * 86400.0), ("2m", 120.0), ("1h", 3600.0), (3, 3.0)],
)
def test_a_duration_parses_to_seconds(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_a_duration_in_the_config_becomes_seconds() -> None:
    config = parse_config({"stages": {"risk": {"delivery": {"ack_wait": "250ms"}}}})
    assert config.stages.risk.delivery.ack_wait == pytest.approx(0.25)


@pytest.mark.parametrize(
    ("text", "size"),
    [("10GiB", 10 * 2**30), ("512MiB", 512 * 2**20), ("1GB", 10**9), ("100", 100), (4096, 4096)],
)
def test_a_size_parses_to_bytes(text: str | int, size: int) -> None:
    assert parse_bytes(text) == size


def test_a_bad_size_string_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"nats\.max_bytes"):
        parse_config({"nats": {"max_bytes": "lots"}})


@pytest.mark.parametrize(
    "split",
    [{"A": 50, "B": 40}, {"A": 50, "B": 51}, {"A": "33.3", "B": "33.3", "C": "33.3"}],
)
def test_a_percent_split_not_summing_to_100_is_rejected(split: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match="must sum to 100"):
        parse_config({"allocation_profiles": {"FUND": {"split": split}}})


@pytest.mark.parametrize("replicas", [0, 2, 3])
def test_a_gateway_with_other_than_one_replica_is_rejected(replicas: int) -> None:
    with pytest.raises(ConfigError, match=r"stages\.gateway"):
        parse_config({"stages": {"gateway": {"replicas": replicas}}})


def test_account_risk_limits_overlay_the_defaults() -> None:
    config = parse_config(
        {
            "risk": {
                "default": {"max_order_qty": 10000, "max_notional": 1000000},
                "accounts": {"ACC1": {"max_order_qty": 500}},
            }
        }
    )
    assert config.risk.limits_for("ACC1") == RiskLimits(max_order_qty=500, max_notional=Decimal(1000000))


def test_an_account_without_its_own_limits_gets_the_defaults() -> None:
    config = parse_config({"risk": {"default": {"max_order_qty": 10000}, "accounts": {"ACC1": {}}}})
    assert config.risk.limits_for("OTHER") == config.risk.default


def test_loading_a_missing_file_raises_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")


def test_loading_invalid_yaml_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("stages: {risk: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)


def test_loading_a_yaml_list_raises_config_error(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(path)


# --- risk limits and allocation profiles -----------------------------------------------------------


def test_the_new_risk_limits_load() -> None:
    config = parse_config(
        {
            "risk": {
                "default": {
                    "max_order_qty": 10000,
                    "collar_pct": 5,
                    "max_position": 50000,
                    "max_gross_exposure": "2500000.50",
                    "max_orders_per_window": 100,
                    "rate_window": "250ms",
                    "restricted_symbols": ["TSLA", "BRK.B"],
                }
            }
        }
    )
    assert config.risk.default == RiskLimits(
        max_order_qty=10000,
        collar_pct=Decimal(5),
        max_position=50000,
        max_gross_exposure=Decimal("2500000.50"),
        max_orders_per_window=100,
        rate_window=0.25,
        restricted_symbols=("TSLA", "BRK.B"),
    )


def test_the_new_risk_limits_are_off_by_default() -> None:
    limits = parse_config(None).risk.default
    assert (limits.collar_pct, limits.max_position, limits.max_gross_exposure, limits.max_orders_per_window) == (
        None,
        None,
        None,
        None,
    )
    assert (limits.rate_window, limits.restricted_symbols) == (1.0, ())


def test_an_account_keeps_the_default_keys_it_does_not_set_and_adds_restricted_symbols() -> None:
    config = parse_config(
        {
            "risk": {
                "default": {"rate_window": "2s", "max_orders_per_window": 10, "restricted_symbols": ["TSLA"]},
                "accounts": {"ACC1": {"max_orders_per_window": 5, "restricted_symbols": ["GME"]}},
            }
        }
    )
    limits = config.risk.limits_for("ACC1")
    assert (limits.rate_window, limits.max_orders_per_window) == (2.0, 5)
    assert limits.restricted_symbols == ("TSLA", "GME")


@pytest.mark.parametrize(
    ("limits", "path"),
    [
        ({"collar_pct": 0}, "risk.default.collar_pct"),
        ({"collar_pct": -5}, "risk.default.collar_pct"),
        ({"collar_pct": "wide"}, "risk.default.collar_pct"),
        ({"max_position": 0}, "risk.default.max_position"),
        ({"max_position": 1.5}, "risk.default.max_position"),
        ({"max_gross_exposure": -1}, "risk.default.max_gross_exposure"),
        ({"max_gross_exposure": "NaN"}, "risk.default.max_gross_exposure"),
        ({"max_orders_per_window": 0}, "risk.default.max_orders_per_window"),
        ({"rate_window": "0s"}, "risk.default.rate_window"),
        ({"rate_window": "2h"}, "risk.default.rate_window"),
        ({"rate_window": "soon"}, "risk.default.rate_window"),
        ({"restricted_symbols": ["tsla"]}, "risk.default.restricted_symbols.0"),
        ({"restricted_symbols": "TSLA"}, "risk.default.restricted_symbols"),
    ],
)
def test_a_bad_risk_limit_is_rejected_naming_its_key(limits: dict[str, Any], path: str) -> None:
    with pytest.raises(ConfigError, match=rf"\n  {re.escape(path)}: "):
        parse_config({"risk": {"default": limits}})


def test_a_bad_account_limit_is_rejected_naming_the_account() -> None:
    with pytest.raises(ConfigError, match=r"risk\.accounts\.ACC1\.max_position"):
        parse_config({"risk": {"accounts": {"ACC1": {"max_position": -1}}}})


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        ({"method": "ratio", "split": {"A": 2, "B": 1}}, {"A": Decimal(2), "B": Decimal(1)}),
        ({"method": "fixed", "split": {"A": 500, "B": 300}, "odd_lot_account": "HOUSE"},
         {"A": Decimal(500), "B": Decimal(300)}),
        ({"method": "percent", "split": {"A": 50, "B": 50}, "lot": 100, "odd_lot_account": "ODD"},
         {"A": Decimal(50), "B": Decimal(50)}),
    ],
)
def test_allocation_profiles_of_every_method_load(profile: dict[str, Any], expected: dict[str, Decimal]) -> None:
    loaded = parse_config({"allocation_profiles": {"FUND": profile}}).allocation_profiles["FUND"]
    assert loaded.split == expected
    assert loaded.method.value == profile["method"]
    assert loaded.odd_lot_account == profile.get("odd_lot_account")


def test_an_existing_profile_without_odd_lot_account_still_loads() -> None:
    profile = load_config(EXAMPLES / "local.yaml").allocation_profiles["FUND3"]
    assert (profile.method.value, profile.lot, profile.odd_lot_account) == ("percent", 1, None)


@pytest.mark.parametrize(
    ("profile", "path", "message"),
    [
        ({"method": "ratio", "split": {"A": "1.5", "B": 1}}, "split", "positive whole number"),
        ({"method": "ratio", "split": {"A": 0, "B": 1}}, "split", "positive whole number"),
        ({"method": "ratio", "split": {}}, "split", "at least one account"),
        ({"method": "fixed", "split": {"A": -100}}, "split", "positive whole number"),
        ({"method": "fixed", "split": {"A": "10.5"}}, "split", "positive whole number"),
        ({"method": "fixed", "split": {"A": 100}, "lot": 100}, "lot", "lot must be 1 with method fixed"),
        ({"method": "percent", "split": {"A": 110, "B": -10}}, "split", "must be positive"),
        ({"method": "percent", "split": {"A": 60, "B": 60}}, "split", "must sum to 100"),
        ({"method": "pro_rata", "split": {"A": 100}}, "method", "Input should be"),
        ({"split": {"A": 100}, "odd_lot_account": "no spaces"}, "odd_lot_account", "pattern"),
        ({"split": {"A": 100}, "lot": 0}, "lot", "greater than or equal to 1"),
    ],
)
def test_a_bad_allocation_profile_is_rejected_naming_its_key(profile: dict[str, Any], path: str, message: str) -> None:
    with pytest.raises(ConfigError, match=rf"allocation_profiles\.FUND\.{path}: .*{message}"):
        parse_config({"allocation_profiles": {"FUND": profile}})


def test_the_config_shipped_in_the_package_is_the_example_users_copy() -> None:
    from pathlib import Path

    from cluster.config import load_config
    from cluster.ops.cli import DEFAULT_CONFIG

    root = Path(__file__).resolve().parents[2]
    assert load_config(DEFAULT_CONFIG) == load_config(root / "examples" / "local.yaml")


def test_an_embedded_url_is_the_running_local_stacks_when_no_environment_names_one(tmp_path, monkeypatch) -> None:
    import json
    import os

    from cluster.config import EMBEDDED_URL_ENV, parse_config, resolve_nats_url
    from cluster.local.stack import STACK_ENV, state_file

    state = {"nats_url": "nats://127.0.0.1:4999", "nats_pid": os.getpid(), "nats_store": "", "ray_address": "",
             "ray_pid": os.getpid(), "dashboard_url": "", "ray_temp_dir": "", "config": ""}
    state_file(tmp_path).write_text(json.dumps(state))
    monkeypatch.delenv(EMBEDDED_URL_ENV, raising=False)
    monkeypatch.setenv(STACK_ENV, str(tmp_path))
    assert resolve_nats_url(parse_config({})).nats.url == "nats://127.0.0.1:4999"


def test_an_embedded_url_with_no_stack_running_is_a_config_error_that_says_what_to_do(tmp_path, monkeypatch) -> None:
    from cluster.config import EMBEDDED_URL_ENV, ConfigError, parse_config, resolve_nats_url
    from cluster.local.stack import STACK_ENV

    monkeypatch.delenv(EMBEDDED_URL_ENV, raising=False)
    monkeypatch.setenv(STACK_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match="trade up"):
        resolve_nats_url(parse_config({}))


def test_every_error_a_user_meets_is_a_trading_error() -> None:
    import cluster.client.errors as client_errors
    from cluster.config import ConfigError
    from cluster.errors import TradingError
    from cluster.local.nats_server import NatsServerError
    from cluster.local.ray_head import RayHeadError
    from cluster.local.stack import StackError
    from cluster.ops.cli import CliError
    from cluster.ops.dlq import OriginalGone
    from cluster.ops.positions import ProjectionUnavailable
    from cluster.ops.venue_admin import VenueAdminUnavailable, VenueFaultsRefused

    errors = [getattr(client_errors, name) for name in client_errors.__all__]
    errors += [ConfigError, NatsServerError, RayHeadError, StackError, CliError, OriginalGone, ProjectionUnavailable,
               VenueAdminUnavailable, VenueFaultsRefused]
    assert [e.__name__ for e in errors if not issubclass(e, TradingError)] == []


async def test_an_unreachable_broker_raises_a_trading_error_after_the_timeout() -> None:
    from cluster.client import TradingClient
    from cluster.errors import TradingError
    from cluster.local.procs import free_port

    client = TradingClient(f"nats://127.0.0.1:{free_port()}", partitions=1, connect_timeout=0.5)
    with pytest.raises(TradingError, match="cannot reach NATS"):
        await client.connect()
