"""Self-checks for chapter 8 (real logs).

:func:`check_encode_categorical` tests a student's encoder of one categorical column,
``encode(train_values, values, min_count) -> ids (len(values),)``, against the course's rule
(:class:`rankcourse.datasets._common.Vocabulary`): the vocabulary is built on ``train_values`` only;
a value seen fewer than ``min_count`` times there, or not at all, gets id 0 (out of vocabulary); a
missing value (``None``) gets id 1; kept values get ids 2, 3, ... by decreasing training count, ties
broken by the value. When the answer is wrong, the check names the mistake it matches.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ._seeding import numpy_rng

from ..datasets._common import Vocabulary

__all__ = ["check_encode_categorical", "reference_encode_categorical"]

Encoder = Callable[[Sequence, Sequence, int], Sequence[int]]


def reference_encode_categorical(train_values: Sequence, values: Sequence, min_count: int) -> np.ndarray:
    """Ids of ``values`` under the vocabulary of ``train_values`` (0 = OOV, 1 = missing, 2.. = kept)."""
    vocab = Vocabulary.build(np.asarray(list(train_values), dtype=object), min_count)
    return vocab.encode(np.asarray(list(values), dtype=object))


def _cases(seed: int | None = None) -> list[tuple[str, list, list, int]]:
    """The public cases; given ``seed``, the same cases with the values renamed at random (the
    roles stay, the ids change: they are ordered by count, then by value)."""
    cases = _public_cases()
    if seed is None:
        return cases
    rng = numpy_rng(7, seed)
    names = sorted({v for _, t, vs, _ in cases for v in [*t, *vs] if v is not None})
    letters = list("abcdefghijklmnopqrstuvwxyz")
    fresh = ["".join(rng.choice(letters, size=3)) + str(i) for i in rng.permutation(len(names))]
    rename = dict(zip(names, fresh)) | {None: None}
    return [(what.split(" (")[0].split(":")[0] + f" (hidden case {i + 1})", [rename[v] for v in rng.permutation(
        np.array(t, dtype=object))], [rename[v] for v in vs], m) for i, (what, t, vs, m) in enumerate(cases)]


def _public_cases() -> list[tuple[str, list, list, int]]:
    train = ["b", "a", "b", "c", "b", "a", None, "d", "a", "c", "a"]
    return [
        ("a value seen only outside training ('z')", train, ["a", "z", "b"], 1),
        ("min_count=2: 'd' (seen once in training) is rare", train, ["d", "c", "a", "b"], 2),
        ("min_count=3: exactly 3 'b's are kept", train, ["b", "c", "a"], 3),
        ("missing values (None)", train, [None, "a", None], 1),
        ("a value frequent in `values` but absent from training", ["x", "y", "y"], ["q", "q", "q", "q", "y"], 2),
        ("ties in the training count are ordered by value", ["p", "n", "p", "n", "m"], ["n", "p", "m"], 1),
    ]


def _wrong_answers(train: list, values: list, min_count: int) -> list[tuple[str, np.ndarray]]:
    ref = reference_encode_categorical
    leak = ref(list(train) + list(values), values, min_count)
    no_min = ref(train, values, 1)
    strict = ref(train, values, min_count + 1)
    shifted = ref(train, values, min_count) - 2
    missing_as_oov = np.where(np.asarray([v is None for v in values]), 0, ref(train, values, min_count))
    return [
        ("the vocabulary was built on `values` as well as `train_values`: the held-out rows leaked into "
         "it (build it on the training values only)", leak),
        ("`min_count` is ignored: rare training values must go to the OOV id 0", no_min),
        ("a value seen exactly `min_count` times was dropped: keep counts >= min_count (not >)", strict),
        ("ids start at 0 for the kept values: 0 and 1 are reserved for OOV and missing, kept values "
         "start at 2", shifted),
        ("missing values (None) got the OOV id 0: they have their own id 1", missing_as_oov),
    ]


def _run(encode: Encoder, what: str, train: list, values: list, min_count: int) -> np.ndarray:
    try:
        return np.asarray(encode(list(train), list(values), min_count))
    except Exception as err:  # the student's code failed: say on what input
        raise AssertionError(f"{what}: encode raised {type(err).__name__}: {err}") from err


def _diagnose(encode: Encoder, what: str, train: list, values: list, min_count: int, got: np.ndarray,
              cases: list[tuple[str, list, list, int]]) -> str | None:
    """The mistake that explains ``got`` here and, preferably, the answers on every other case too."""
    here = [d for d, wrong in _wrong_answers(train, values, min_count)
            if wrong.shape == got.shape and np.array_equal(got, wrong)]
    for diagnosis in here:
        consistent = True
        for _, t, v, m in cases:
            wrong = dict(_wrong_answers(t, v, m))[diagnosis]
            other = _run(encode, what, t, v, m)
            consistent &= other.shape == wrong.shape and np.array_equal(other, wrong)
        if consistent:
            return diagnosis
    return here[0] if here else None


def check_encode_categorical(encode: Encoder, *, seed: int | None = None) -> None:
    """Run ``encode`` on small columns with known ids; raise an ``AssertionError`` naming the mistake."""
    cases = _cases(seed)
    for what, train, values, min_count in cases:
        expected = reference_encode_categorical(train, values, min_count)
        got = _run(encode, what, train, values, min_count)
        if got.shape != expected.shape:
            raise AssertionError(f"{what}: expected {len(values)} ids, shape {expected.shape}, got shape {got.shape}")
        if np.array_equal(got, expected):
            continue
        diagnosis = _diagnose(encode, what, train, values, min_count, got, cases)
        if diagnosis is not None:
            raise AssertionError(f"{what}: {diagnosis}. Got {got.tolist()}, expected {expected.tolist()}")
        raise AssertionError(
            f"{what} (train_values={train}, values={values}, min_count={min_count}): "
            f"got ids {got.tolist()}, expected {expected.tolist()}"
        )
    print(f"check_encode_categorical: all {len(cases)} cases pass")
