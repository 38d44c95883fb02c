"""The applied log's range bitmaps: which stream sequences of a range were applied (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actors.runtime.applied import RANGE_SPAN, RangeBits


def test_a_fresh_range_has_nothing_applied() -> None:
    assert not any(seq in RangeBits(0) for seq in range(RANGE_SPAN))


def test_set_sequences_are_applied_and_their_neighbours_are_not() -> None:
    bits = RangeBits(2).with_seqs([2 * RANGE_SPAN + 5])
    assert 2 * RANGE_SPAN + 5 in bits
    assert 2 * RANGE_SPAN + 4 not in bits and 2 * RANGE_SPAN + 6 not in bits


def test_a_sequence_of_another_range_is_never_in_this_one() -> None:
    bits = RangeBits(0).with_seqs([5])
    assert RANGE_SPAN + 5 not in bits


def test_setting_a_sequence_of_another_range_is_refused() -> None:
    with pytest.raises(ValueError, match="not in range"):
        RangeBits(0).with_seqs([RANGE_SPAN])


def test_with_seqs_leaves_the_original_unchanged() -> None:
    original = RangeBits(0)
    original.with_seqs([1])
    assert 1 not in original


def test_a_range_survives_its_bytes() -> None:
    bits = RangeBits(3).with_seqs([3 * RANGE_SPAN, 4 * RANGE_SPAN - 1])
    again = RangeBits(3, bytes(bits.bits))
    assert 3 * RANGE_SPAN in again and 4 * RANGE_SPAN - 1 in again


@given(st.sets(st.integers(0, RANGE_SPAN - 1)), st.sets(st.integers(0, RANGE_SPAN - 1)))
def test_a_writer_that_re_reads_the_range_keeps_every_sequence_either_set(a: set[int], b: set[int]) -> None:
    stored = RangeBits(0).with_seqs(a)  # what the other writer stored
    merged = RangeBits(0, bytes(stored.bits)).with_seqs(b)  # read back, then this writer's own set
    assert {seq for seq in range(RANGE_SPAN) if seq in merged} == a | b
