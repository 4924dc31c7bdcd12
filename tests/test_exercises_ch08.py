"""The chapter 8 self-check accepts a correct categorical encoder and names the typical mistakes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from rankcourse.exercises.ch08 import check_encode_categorical, reference_encode_categorical


def counter_solution(train_values, values, min_count):
    counts = Counter(v for v in train_values if v is not None)
    kept = sorted((v for v, c in counts.items() if c >= min_count), key=lambda v: (-counts[v], v))
    index = {v: i + 2 for i, v in enumerate(kept)}
    return [1 if v is None else index.get(v, 0) for v in values]


def test_reference_solution_passes(capsys):
    check_encode_categorical(reference_encode_categorical)
    assert "all 6 cases pass" in capsys.readouterr().out


def test_independent_counter_solution_passes():
    check_encode_categorical(counter_solution)


def test_reference_gives_the_documented_ids():
    ids = reference_encode_categorical(["a", "a", "b", None], ["a", "b", "z", None], 1)
    assert ids.tolist() == [2, 3, 0, 1]


def leaky(train_values, values, min_count):
    return counter_solution(list(train_values) + list(values), values, min_count)


def strict(train_values, values, min_count):
    return counter_solution(train_values, values, min_count + 1)


def from_zero(train_values, values, min_count):
    return [i - 2 for i in counter_solution(train_values, values, min_count)]


def missing_oov(train_values, values, min_count):
    return [0 if v is None else i for v, i in zip(values, counter_solution(train_values, values, min_count))]


@pytest.mark.parametrize(
    "wrong, message",
    [
        (leaky, "leaked"),
        (lambda t, v, m: counter_solution(t, v, 1), "`min_count` is ignored"),
        (strict, ">= min_count"),
        (from_zero, "start at 2"),
        (missing_oov, "their own id 1"),
    ],
    ids=["vocabulary-from-all-rows", "min-count-ignored", "strict-inequality", "ids-from-zero", "missing-as-oov"],
)
def test_typical_mistake_is_named(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_encode_categorical(wrong)


def test_wrong_length_and_crash_are_reported():
    with pytest.raises(AssertionError, match="expected 3 ids"):
        check_encode_categorical(lambda t, v, m: [0])
    with pytest.raises(AssertionError, match="raised KeyError"):
        check_encode_categorical(lambda t, v, m: [{}[x] for x in v])


def test_unrecognised_mistake_shows_got_and_expected():
    with pytest.raises(AssertionError, match="got ids .* expected"):
        check_encode_categorical(lambda t, v, m: np.full(len(v), 7))
