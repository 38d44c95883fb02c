import gc
from collections.abc import Iterator

import pytest

from actors.runtime.gc_tuning import THRESHOLDS, GcClock, tune


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_the_clock_counts_collections_and_their_seconds_per_generation() -> None:
    clock = GcClock()
    for generation in (0, 0, 2):
        clock("start", {"generation": generation})
        clock("stop", {"generation": generation})
    snap = clock.snapshot()
    assert snap["collections"] == [2, 0, 1]
    assert snap["total_s"] == pytest.approx(sum(snap["seconds"]))
    assert snap["longest_s"] >= max(snap["seconds"]) / 2


def test_the_clock_sees_a_real_collection(restored_gc: None) -> None:
    clock = tune()
    before = clock.snapshot()["collections"][2]
    gc.collect()
    assert clock.snapshot()["collections"][2] == before + 1


def test_tuning_makes_full_collections_rarer_than_the_defaults(restored_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    tune()
    assert gc.get_threshold() == THRESHOLDS
    assert THRESHOLDS[1] * THRESHOLDS[2] >= 10 * 10 * 10


def test_tuning_freezes_what_is_alive_at_start_up(restored_gc: None) -> None:
    gc.unfreeze()
    tune()
    assert gc.get_freeze_count() > 0
