"""Restart strategies (OTP/Akka): which children a supervisor restarts when one of them fails."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

__all__ = ["Strategy", "children_to_restart", "shutdown_order"]


class Strategy(StrEnum):
    ONE_FOR_ONE = "one_for_one"  # only the failed child
    ONE_FOR_ALL = "one_for_all"  # every child
    REST_FOR_ONE = "rest_for_one"  # the failed child and every child started after it


def _check_ids(ids: Sequence[str]) -> None:
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if list(ids).count(i) > 1})
        raise ValueError(f"child ids must be unique, repeated: {duplicates}")


def children_to_restart(strategy: Strategy | str, ordered_child_ids: Sequence[str], failed: str) -> list[str]:
    """The children to restart after `failed` failed, in start order.

    The supervisor stops them in reverse (see shutdown_order) and starts them again in this order.
    """
    strategy = Strategy(strategy)
    _check_ids(ordered_child_ids)
    if failed not in ordered_child_ids:
        raise ValueError(f"{failed!r} is not one of the supervisor's children {list(ordered_child_ids)}")
    if strategy is Strategy.ONE_FOR_ONE:
        return [failed]
    if strategy is Strategy.ONE_FOR_ALL:
        return list(ordered_child_ids)
    return list(ordered_child_ids[list(ordered_child_ids).index(failed):])


def shutdown_order(ids: Sequence[str]) -> list[str]:
    """Children in the order to stop them: the last started first."""
    _check_ids(ids)
    return list(reversed(ids))
