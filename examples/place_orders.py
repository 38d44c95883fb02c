"""A driver script to copy: place a few orders against the running system and print their outcomes.

    .venv/bin/trade up
    .venv/bin/python examples/place_orders.py [--config examples/local.yaml]
"""

from __future__ import annotations

import argparse
import sys

from actors.runtime import event_loop
from cluster.client import TradingClient
from cluster.client.errors import OrderTimeout, OrderValidationError, TradingError
from cluster.config import load_config
from cluster.local.stack import load_state


async def main(config: str) -> int:
    cfg = load_config(config)
    state = load_state()
    if cfg.nats.url == "embedded" and state is not None:
        cfg = cfg.with_nats_url(state.nats_url)
    orders = [
        ("ACC2", "AAPL", "BUY", 100, "187.25", "FUND3"),
        ("ACC3", "MSFT", "SELL", 50, "411.10", None),
        ("ACC1", "TSLA", "BUY", 900, "243.80", None),  # ACC1 may trade at most 500: rejected by risk
    ]
    async with TradingClient.from_config(cfg) as client:
        try:
            ids = [await client.place_order(a, s, side, q, p, allocation_profile=prof)
                   for a, s, side, q, p, prof in orders]
        except OrderValidationError as exc:
            print(f"bad order ({', '.join(exc.fields)}): {exc}", file=sys.stderr)
            return 2
        for order_id in ids:
            try:
                outcome = await client.wait(order_id, timeout=30)
            except OrderTimeout as exc:
                print(exc, file=sys.stderr)
                return 1
            print(f"{order_id}: {outcome.status} filled={outcome.filled_qty} avg_px={outcome.avg_px} "
                  f"allocated={outcome.allocated} {outcome.reason or ''}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", default="examples/local.yaml")
    try:
        sys.exit(event_loop.run(main(parser.parse_args().config)))
    except TradingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(3)
