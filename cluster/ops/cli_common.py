"""What the `trade` commands share: the config they act on, their exit codes and errors, the way to the
system's supervisor and to NATS."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path
from typing import Any

from actors.runtime import event_loop
from cluster.config import SystemConfig, load_config
from cluster.errors import TradingError
from cluster.local.stack import load_state

__all__ = ["DEFAULT_CONFIG", "EXIT_BAD_INPUT", "EXIT_TIMEOUT", "EXIT_UNAVAILABLE", "CliError", "cli_config",
           "int_or_str", "supervisor_handle", "with_nats"]

#: The config shipped inside the package (a copy of examples/local.yaml): the CLI works from any directory.
DEFAULT_CONFIG = str(Path(__file__).resolve().parent.parent / "defaults" / "local.yaml")
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3
EXIT_TIMEOUT = 4


class CliError(TradingError):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def cli_config(args: argparse.Namespace) -> SystemConfig:
    state = load_state()
    path = args.config or os.environ.get("TRADE_CONFIG") or (state.config if state else None) or DEFAULT_CONFIG
    cfg = load_config(path)
    if cfg.nats.url == "embedded":
        if state is None:
            raise CliError("no local stack is running here: run `trade up` first (or use a config with a "
                           "nats:// URL)", EXIT_UNAVAILABLE)
        cfg = cfg.with_nats_url(state.nats_url)
    return cfg


def int_or_str(value: str) -> int | str:
    return int(value) if re.fullmatch(r"[+-]?\d+", value.strip()) else value


def supervisor_handle(cfg: SystemConfig) -> Any:
    """The root supervisor of the system on the local stack's Ray (or RAY_ADDRESS's)."""
    import ray

    from cluster.local.ray_env import init_ray
    from supervision.supervisor import SUPERVISOR_NAME

    state = load_state()
    if state is not None:
        init_ray(state.ray_address, namespace=cfg.name)
    else:
        init_ray(namespace=cfg.name)
    try:
        return ray.get_actor(SUPERVISOR_NAME, namespace=cfg.name)
    except ValueError:
        raise CliError("the system is not deployed on this Ray cluster", EXIT_UNAVAILABLE) from None


def with_nats(args: argparse.Namespace, work: Any) -> int:
    from actors.runtime.nats_conn import connect

    cfg = cli_config(args)

    async def _run() -> int:
        nc = await connect(cfg.nats.url, name=f"trade-{args.command}", connect_timeout=cfg.nats.connect_timeout,
                           reconnect_forever=False)
        try:
            return await work(nc)
        finally:
            await nc.close()

    return event_loop.run(_run())

