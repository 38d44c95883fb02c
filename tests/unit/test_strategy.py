"""Restart strategies: which children restart after one fails, and the order they stop in."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervision.strategy import Strategy, children_to_restart, shutdown_order

CHILDREN = ["venue-SIM", "gateway-SIM", "risk-0", "risk-1", "allocator-0"]


@pytest.mark.parametrize(
    ("strategy", "failed", "expected"),
    [
        (Strategy.ONE_FOR_ONE, "risk-0", ["risk-0"]),
        (Strategy.ONE_FOR_ONE, "venue-SIM", ["venue-SIM"]),
        (Strategy.ONE_FOR_ALL, "risk-0", CHILDREN),
        (Strategy.ONE_FOR_ALL, "allocator-0", CHILDREN),
        (Strategy.REST_FOR_ONE, "gateway-SIM", ["gateway-SIM", "risk-0", "risk-1", "allocator-0"]),
        (Strategy.REST_FOR_ONE, "venue-SIM", CHILDREN),
        (Strategy.REST_FOR_ONE, "allocator-0", ["allocator-0"]),
    ],
)
def test_children_to_restart_follows_the_strategy_in_start_order(strategy: Strategy, failed: str,
                                                                 expected: list[str]) -> None:
    assert children_to_restart(strategy, CHILDREN, failed) == expected


def test_strategy_may_be_given_by_its_config_name() -> None:
    assert children_to_restart("rest_for_one", CHILDREN, "risk-1") == ["risk-1", "allocator-0"]


def test_an_unknown_strategy_name_is_rejected() -> None:
    with pytest.raises(ValueError):
        children_to_restart("all_for_none", CHILDREN, "risk-1")


def test_a_failed_child_that_is_not_a_child_is_rejected() -> None:
    with pytest.raises(ValueError, match="not one of"):
        children_to_restart(Strategy.ONE_FOR_ONE, CHILDREN, "risk-9")


def test_repeated_child_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="unique"):
        children_to_restart(Strategy.ONE_FOR_ALL, ["a", "b", "a"], "b")


def test_children_to_restart_does_not_alias_the_callers_list() -> None:
    ids = list(CHILDREN)
    children_to_restart(Strategy.ONE_FOR_ALL, ids, "risk-0").clear()
    assert ids == CHILDREN


def test_shutdown_order_is_reverse_start_order() -> None:
    assert shutdown_order(CHILDREN) == ["allocator-0", "risk-1", "risk-0", "gateway-SIM", "venue-SIM"]


def test_shutdown_order_of_no_children_is_empty() -> None:
    assert shutdown_order([]) == []


@given(ids=st.lists(st.text(min_size=1, max_size=5), min_size=1, max_size=10, unique=True), data=st.data())
def test_every_strategy_restarts_the_failed_child_and_keeps_start_order(ids: list[str], data: st.DataObject) -> None:
    failed = data.draw(st.sampled_from(ids))
    for strategy in Strategy:
        restart = children_to_restart(strategy, ids, failed)
        assert failed in restart
        assert restart == [i for i in ids if i in restart]
