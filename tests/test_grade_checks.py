"""The graded runs of the self-checks, in process (fast): hidden cases drawn from a seed, the
trace that finds a reference, the tamper guard, the feedback levels and the exercise discovery."""

from __future__ import annotations

import functools
import inspect
import re
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch

from rankcourse import losses
from rankcourse.exercises import appendix_a, ch01, ch02, ch03, ch04, ch05, ch06, ch07, ch08, ch09, ch10
from rankcourse.grade import check as grade_check
from rankcourse.grade.exercises import course_chapters, default_course_folder
from rankcourse.grade.feedback import feedback, hint
from rankcourse.group_metrics import gauc
from rankcourse.layers.attention import AUGRUCell, TargetAttentionPooling
from rankcourse.layers.cross import CrossNetV2
from rankcourse.serving.scorer import corrected_probability

ROOT = Path(__file__).resolve().parents[1]


def _platt(z, y):
    if len(np.unique(y)) < 2:
        raise ValueError("one class")
    return ch07.reference_platt(z, y)


def _augru(x, h, a, cell):
    ref = AUGRUCell(cell.input_size, cell.hidden_size).double()
    ref.gru.load_state_dict(cell.state_dict())
    return ref(x, h, a)


# check -> a right answer (the references and the package's own code)
SOLUTIONS = {
    ch01.check_focal_grad: lambda z, y, a, g: losses.focal_grad(z, y, a, g, reduction="none"),
    ch01.check_bias_newton_step: ch01.reference_bias_newton_step,
    ch01.check_smoothed_bce_grad: ch01.reference_smoothed_bce_grad,
    ch01.check_prior_shift_ratio: ch01.reference_prior_shift_ratio,
    ch02.check_cross_ids: ch02.reference_cross_ids,
    ch02.check_shared_bucket_fraction: ch02.reference_shared_bucket_fraction,
    ch02.check_ftrl_step: ch02.reference_ftrl_step,
    ch03.check_fm_interaction: lambda v: 0.5 * (v.sum(1).square() - v.square().sum(1)).sum(-1),
    ch03.check_ffm_interaction: ch03.ffm_bruteforce,
    ch04.check_cin_layer: ch04.reference_cin_layer,
    ch04.check_cin_weight_gradient: ch04.reference_cin_weight_gradient,
    ch04.check_first_layer_jacobian: ch04.reference_first_layer_jacobian,
    ch05.check_mmoe_mixture: ch05.reference_mmoe_mixture,
    ch07.check_platt_scaling: _platt,
    ch08.check_encode_categorical: ch08.reference_encode_categorical,
    ch09.check_din_pooling: ch09.reference_din_pooling,
    ch09.check_minibatch_l2: ch09.reference_minibatch_l2,
    ch09.check_gauc: gauc,
    ch09.check_augru_step: _augru,
    ch10.check_shared_fm: ch10.reference_shared_fm,
    ch10.check_corrected_probability: ch10.reference_corrected_probability,
    ch10.check_latency_line: lambda n, ms: tuple(np.polyfit(n, ms, 1)[::-1]),
    ch10.check_cross_once: ch10.reference_cross_once,
    appendix_a.check_allreduce_seconds: appendix_a.reference_allreduce_seconds,
}


def _key(value) -> object:
    if isinstance(value, torch.Tensor):
        return ("t", tuple(value.shape), tuple(np.round(value.detach().double().flatten().tolist(), 9)))
    if isinstance(value, np.ndarray):
        return _key(torch.as_tensor(value.astype(float) if value.dtype != object else np.zeros(0)))
    if isinstance(value, (list, tuple)):
        return tuple(_key(v) for v in value)
    if isinstance(value, torch.nn.Module):
        return tuple(_key(p) for p in value.state_dict().values())
    return value


def replay_of_public_cases(check, solution):
    """An answer that only knows the public cases: it replays the solution's outputs on them."""
    table = {}

    def recorder(*args):
        out = solution(*args)
        table[_key(args)] = out
        return out

    check(recorder)

    def replay(*args):
        if _key(args) not in table:
            raise ValueError("not one of the public cases")
        return table[_key(args)]

    return replay


def test_every_graded_check_takes_a_seed():
    # The grader's hidden cases need it: a new check takes `*, seed: int | None = None` too.
    for exercises in course_chapters(default_course_folder()).values():
        for e in exercises:
            check = getattr(__import__(e.module, fromlist=[e.check]), e.check)
            assert "seed" in inspect.signature(check).parameters, f"{e.module}.{e.check} takes no seed"


@pytest.mark.parametrize("check", list(SOLUTIONS), ids=lambda c: c.__name__)
def test_right_answer_passes_the_public_and_the_hidden_cases(check):
    for seed in (None, 1, 987_654_321):
        check(SOLUTIONS[check], seed=seed)


# The FM checks also differentiate through the answer, which a table of outputs cannot fake.
REPLAYABLE = [c for c in SOLUTIONS if c not in (ch03.check_fm_interaction, ch03.check_ffm_interaction)]


@pytest.mark.parametrize("check", REPLAYABLE, ids=lambda c: c.__name__)
def test_answer_hard_coded_to_the_public_cases_fails_under_a_seed(check):
    replay = replay_of_public_cases(check, SOLUTIONS[check])
    check(replay)  # the self-check, on its public cases, is fooled...
    with pytest.raises(Exception):  # noqa: B017 - the grader fails an answer on any exception
        check(replay, seed=20261206)  # ...the hidden cases are not


def test_behaviour_pooling_check_is_seeded_by_its_own_argument():
    ch06.check_behaviour_pooling(lambda dim: TargetAttentionPooling(dim, 16), seed=123)


def test_hidden_cases_depend_on_the_seed_and_repeat_for_the_same_seed():
    first, again, other = ch01._bias_cases(5), ch01._bias_cases(5), ch01._bias_cases(6)
    assert torch.equal(first[0][1], again[0][1])
    assert not torch.equal(first[0][1], other[0][1])
    assert torch.equal(ch01._bias_cases()[0][1], ch01._bias_cases(None)[0][1])


# ----------------------------------------------------------------------------- discovery
def test_every_chapter_exercise_with_a_self_check_is_graded():
    chapters = course_chapters(default_course_folder())
    labels = {e.label for exercises in chapters.values() for e in exercises}
    assert {"ch01-ex-focal-grad", "ch01-ex-bias-newton", "ch05-ex-mixture", "appA-ex-allreduce"} <= labels
    assert len(labels) == sum(len(e) for e in chapters.values())  # a label is graded once
    student = course_chapters(ROOT / "notebooks" / "student")
    assert student == chapters  # the student copies declare the same graded exercises
    for exercises in chapters.values():
        for e in exercises:
            module = __import__(e.module, fromlist=[e.check])
            assert callable(getattr(module, e.check))


# ----------------------------------------------------------------------------- guards of the check process
def _graded(tmp_path, label, check, module, answer, seed=None):
    """Run the check process's grading of one pickled answer, in this process."""
    (tmp_path / f"{label}.pkl").write_bytes(cloudpickle.dumps(answer))
    exercise = {"label": label, "check": check, "module": module, "answer": "answer"}
    before = grade_check.snapshot()
    return grade_check.run_one(exercise, tmp_path, {label: "ok"}, seed, before)


BIAS = ("ch01-ex-bias-newton", "check_bias_newton_step", "rankcourse.exercises.ch01")


def bias_step(logits, labels):
    p = torch.sigmoid(logits)
    return (labels - p).sum() / (p * (1 - p)).sum()


def test_own_answer_passes(tmp_path):
    assert _graded(tmp_path, *BIAS, bias_step, seed=3)["verdict"] == "pass"


@pytest.mark.parametrize("answer", [
    ch01.reference_bias_newton_step,
    functools.partial(ch01.reference_bias_newton_step),
    lambda z, y: ch01.reference_bias_newton_step(z, y),
    lambda z, y: -(-ch01._bias_wrong_answers(z, y)[0][0]),  # a check's helper that calls the reference
], ids=["the reference", "a partial of it", "a wrapper", "a check helper"])
def test_answer_that_is_or_calls_a_reference_gets_uses_reference(tmp_path, answer):
    outcome = _graded(tmp_path, *BIAS, answer)
    assert outcome["verdict"] == "uses-reference"
    assert "reference_bias_newton_step" in outcome["message"]


def test_reference_called_in_a_thread_gets_uses_reference(tmp_path):
    import threading

    def answer(logits, labels):
        out = {}
        worker = threading.Thread(target=lambda: out.update(step=ch01.reference_bias_newton_step(logits, labels)))
        worker.start()
        worker.join()
        return out["step"]

    assert _graded(tmp_path, *BIAS, answer)["verdict"] == "uses-reference"


def test_package_code_that_answers_the_exercise_counts_as_a_reference(tmp_path):
    answer = lambda z, y, a, g: losses.focal_grad(z, y, a, g, reduction="none")  # noqa: E731
    outcome = _graded(tmp_path, "ch01-ex-focal-grad", "check_focal_grad", "rankcourse.exercises.ch01", answer)
    assert outcome["verdict"] == "uses-reference"
    assert "rankcourse.losses.focal_grad" in outcome["message"]


def _smoothed_via_bce_grad(z, y, eps):
    return losses.bce_grad(z, (1 - eps) * y + eps / 2, reduction="none", validate=False)


def _jacobian_via_cross_net(x0, W, b):
    layer = CrossNetV2(len(x0), 1).double()
    with torch.no_grad():
        layer.layers[0].weight.copy_(W)
        layer.layers[0].bias.copy_(b)
    return torch.autograd.functional.jacobian(lambda x: layer(x[None])[0], x0)


def _corrected_via_scorer(p, keep):
    return corrected_probability(torch.logit(torch.as_tensor(p)), keep).numpy()


@pytest.mark.parametrize("label, check, module, answer, used", [
    ("ch01-ex-smoothing", "check_smoothed_bce_grad", "rankcourse.exercises.ch01", _smoothed_via_bce_grad,
     "rankcourse.losses.bce_grad"),
    ("ch04-ex-first-layer-jacobian", "check_first_layer_jacobian", "rankcourse.exercises.ch04",
     _jacobian_via_cross_net, "rankcourse.layers.cross.CrossNetV2"),
    ("ch10-ex-correct", "check_corrected_probability", "rankcourse.exercises.ch10", _corrected_via_scorer,
     "rankcourse.serving.scorer.corrected_probability"),
], ids=["smoothing through bce_grad", "jacobian through CrossNetV2", "calibration through the scorer"])
def test_package_code_of_the_new_exercises_counts_as_a_reference(tmp_path, label, check, module, answer, used):
    module_checks = __import__(module, fromlist=[check])
    getattr(module_checks, check)(answer, seed=5)  # a right answer...
    outcome = _graded(tmp_path, label, check, module, answer, seed=5)
    assert outcome["verdict"] == "uses-reference"  # ...but not the student's own
    assert used in outcome["message"]


def test_subclass_of_a_package_answer_gets_uses_reference(tmp_path):
    class MyPooling(TargetAttentionPooling):
        pass

    def answer(behaviours, candidate, mask, scorer):
        return MyPooling(behaviours.shape[-1]).double()(behaviours, candidate, mask)

    outcome = _graded(tmp_path, "ch09-ex-din-pooling", "check_din_pooling", "rankcourse.exercises.ch09", answer)
    assert outcome["verdict"] == "uses-reference"


@pytest.mark.parametrize("use_package", [False, True], ids=["own module", "package module"])
def test_behaviour_pooling_answer_is_graded_and_the_package_pooling_is_a_reference(tmp_path, use_package):
    class OwnPooling(torch.nn.Module):  # DIN's unit written out: the student's own code
        def __init__(self, dim):
            super().__init__()
            self.score = torch.nn.Sequential(torch.nn.Linear(4 * dim, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))

        def forward(self, history, candidate, mask):
            c = candidate.unsqueeze(1).expand_as(history)
            w = self.score(torch.cat([history, c, history - c, history * c], -1)).squeeze(-1)
            return ((w * mask.to(w.dtype)).unsqueeze(-1) * history).sum(1)

    class PackagePooling(TargetAttentionPooling):
        def __init__(self, dim):
            super().__init__(dim, 8)

    answer = PackagePooling if use_package else OwnPooling
    outcome = _graded(tmp_path, "ch06-ex-attention", "check_behaviour_pooling", "rankcourse.exercises.ch06", answer,
                      seed=5)
    assert outcome["verdict"] == ("uses-reference" if use_package else "pass"), outcome
    assert outcome["hidden_cases"]


def test_answer_that_patches_torch_while_checked_is_an_error_not_a_pass(tmp_path):
    def answer(logits, labels):
        torch.allclose = lambda *a, **k: True  # would make every comparison pass
        return torch.zeros(())

    original = torch.allclose
    try:
        outcome = _graded(tmp_path, *BIAS, answer)
    finally:
        torch.allclose = original
    assert outcome["verdict"] == "error"
    assert "torch.allclose" in outcome["message"]


def test_answer_that_turns_off_the_trace_is_an_error(tmp_path):
    import sys

    def answer(logits, labels):
        sys.setprofile(None)
        return ch01.reference_bias_newton_step(logits, labels)

    assert _graded(tmp_path, *BIAS, answer)["verdict"] == "error"


def test_answer_that_calls_sys_exit_fails_without_ending_the_grader(tmp_path):
    import sys

    def answer(logits, labels):
        sys.exit(0)

    outcome = _graded(tmp_path, *BIAS, answer)
    assert outcome["verdict"] == "fail" and "SystemExit" in outcome["message"]


def test_unwritten_answer_is_not_attempted(tmp_path):
    def answer(logits, labels):
        raise NotImplementedError("write the Newton step")

    assert _graded(tmp_path, *BIAS, answer)["verdict"] == "not attempted"


def test_answer_that_cannot_be_loaded_is_an_error(tmp_path):
    (tmp_path / "ch01-ex-bias-newton.pkl").write_bytes(b"not a pickle")
    exercise = {"label": BIAS[0], "check": BIAS[1], "module": BIAS[2], "answer": "answer"}
    outcome = grade_check.run_one(exercise, tmp_path, {BIAS[0]: "ok"}, None, grade_check.snapshot())
    assert outcome["verdict"] == "error" and "could not be loaded" in outcome["message"]


# ----------------------------------------------------------------------------- feedback levels
def _failure(check, answer, seed=None) -> str:
    with pytest.raises(AssertionError) as info:
        check(answer, seed=seed)
    return str(info.value)


def test_hints_keep_the_named_mistake_and_drop_the_formula():
    def sign_flipped(z, y):
        return -ch01.reference_bias_newton_step(z, y)

    message = _failure(ch01.check_bias_newton_step, sign_flipped, seed=4)
    assert "sign is flipped" in message and "mean(p - y)" in message
    graded = feedback(message, "hints")
    assert "sign is flipped" in graded
    assert "mean(" not in graded and "=" not in graded


def test_hints_contain_no_expected_value():
    def off_by_ten_percent(z, y):
        return 1.1 * ch01.reference_bias_newton_step(z, y)

    message = _failure(ch01.check_bias_newton_step, off_by_ten_percent, seed=4)
    z, y = ch01._bias_cases(4)[0][1:]
    expected = f"{ch01.reference_bias_newton_step(z, y).item():.6g}"
    assert expected in message  # the practice message shows it...
    graded = feedback(message, "hints")
    assert expected not in graded and "expected" not in graded  # ...the graded one does not
    assert graded


@pytest.mark.parametrize("check, wrong", [
    (ch08.check_encode_categorical, lambda t, v, m: ch08.reference_encode_categorical(t, v, 1)),
    (ch09.check_minibatch_l2, lambda table, ids, counts: (table[ids.reshape(-1)] ** 2).sum()),
    (appendix_a.check_allreduce_seconds, lambda r, d, w, g: 8 * appendix_a.reference_allreduce_seconds(r, d, w, g)),
    (ch07.check_platt_scaling, lambda z, y: tuple(reversed(_platt(z, y)))),
], ids=["vocabulary", "mini-batch l2", "all-reduce", "platt"])
def test_hints_of_other_checks_show_no_decimal_value(check, wrong):
    message = _failure(check, wrong, seed=9)
    graded = hint(message)
    assert graded
    outside_case_names = re.sub(r"case '[^']*'", "", graded)
    assert not re.search(r"\d\.\d", outside_case_names), graded
    assert "expected" not in graded


def test_verdict_level_says_nothing_and_practice_says_all():
    assert feedback("x is wrong: expected 1.5", "verdict") == ""
    assert feedback("x is wrong: expected 1.5", "practice") == "x is wrong: expected 1.5"
    with pytest.raises(ValueError, match="feedback level"):
        feedback("x", "full")
