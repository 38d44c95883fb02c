"""The kill switch: `trade halt` stops new orders (of one account or of the desk) at every risk
replica, each rejection naming the rule; `trade resume` lets them through again."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from cluster.client.trading import TradingClient

pytestmark = pytest.mark.e2e


def _trade(cfg_file, *args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "cluster.ops.cli", *args, "--config", str(cfg_file)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


async def _status(client: TradingClient, account: str) -> tuple[str, str | None]:
    outcome = await client.wait(await client.place_order(account, "AAPL", "BUY", 1, "100"), timeout=30)
    return str(outcome.status), outcome.reason


async def test_halt_blocks_new_orders_until_resume(deployed, tmp_path):
    cfg_file = tmp_path / "cfg.yaml"
    cfg_file.write_text(yaml.safe_dump(json.loads(deployed.model_dump_json())))
    async with TradingClient.from_config(deployed) as client:
        _trade(cfg_file, "halt", "--account", "ACC2", "--reason", "test")
        status, reason = await _status(client, "ACC2")
        assert status == "rejected" and reason.startswith("trading_state: trading is halted for account ACC2")
        assert (await _status(client, "ACC3"))[0] == "filled", "other accounts still trade"

        _trade(cfg_file, "halt")
        assert (await _status(client, "ACC3"))[0] == "rejected", "a desk-wide halt stops everyone"
        _trade(cfg_file, "resume")
        assert (await _status(client, "ACC3"))[0] == "filled"
        assert (await _status(client, "ACC2"))[0] == "rejected", "the account's own halt still holds"
        _trade(cfg_file, "resume", "--account", "ACC2")
        assert (await _status(client, "ACC2"))[0] == "filled"
