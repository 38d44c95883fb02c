"""Connecting a driver to Ray the same way everywhere."""

from __future__ import annotations

import os

import ray

__all__ = ["RAY_NAMESPACE_DEFAULT", "init_ray"]

RAY_NAMESPACE_DEFAULT = "trading"


def init_ray(address: str | None = None, namespace: str = RAY_NAMESPACE_DEFAULT) -> None:
    """Join a running Ray cluster (`address`, else RAY_ADDRESS, else the job's own cluster)."""
    if ray.is_initialized():
        return
    ray.init(address=address or os.environ.get("RAY_ADDRESS") or "auto", namespace=namespace,
             log_to_driver=False, logging_level="WARNING", configure_logging=True)
