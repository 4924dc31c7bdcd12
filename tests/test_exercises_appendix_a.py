"""The appendix's self-check names the usual mistakes in an all-reduce cost estimate."""

from __future__ import annotations

import pytest

from rankcourse.exercises.appendix_a import check_allreduce_seconds, reference_allreduce_seconds


def test_reference_passes_its_own_check():
    check_allreduce_seconds(reference_allreduce_seconds)


def test_one_rank_exchanges_nothing():
    assert reference_allreduce_seconds(10**8, 64, 1, 100.0) == 0.0


def test_bits_taken_for_bytes_is_named():
    def wrong(rows, dim, world, gbit):
        return 2 * (world - 1) / world * rows * dim * 4 / (gbit * 1e9)
    with pytest.raises(AssertionError, match="bits is 1/8 as many bytes"):
        check_allreduce_seconds(wrong)


def test_buffer_sent_once_is_named():
    def wrong(rows, dim, world, gbit):
        return rows * dim * 4 / (gbit * 1e9 / 8)
    with pytest.raises(AssertionError, match=r"2 \(W - 1\) / W"):
        check_allreduce_seconds(wrong)


def test_missing_bytes_per_float_is_named():
    def wrong(rows, dim, world, gbit):
        return 2 * (world - 1) / world * rows * dim / (gbit * 1e9 / 8)
    with pytest.raises(AssertionError, match="4 bytes"):
        check_allreduce_seconds(wrong)
