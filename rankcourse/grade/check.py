"""Child process: run the instructor's checks on the exported answers, in a fresh interpreter.

Started by :mod:`rankcourse.grade.batch` under :mod:`rankcourse.grade.limits` after
:mod:`rankcourse.grade.execute`. Nothing a notebook cell did in its kernel exists here: the checks
are imported from the course's files, and each answer arrives alone, pickled by value. For each
exercise the process reports ``start <label>`` and then ``verdict <json>`` on a private copy of
its stdout, under the grader's token.

Three guards run with each check:

* reference use: the calls made during the check are traced (``sys.setprofile``); a call of any
  function of :mod:`rankcourse.exercises`, or of a package function listed for the check in
  :data:`rankcourse.grade.references.PACKAGE_ANSWERS`, that has the student's code on its call stack makes the verdict
  ``uses-reference``; so does an answer that *is* such a function (or a partial, a bound method
  or a subclass of one);
* tampering: the functions of ``builtins``, ``math``, ``numpy``, ``torch``, ``torch.nn.functional``,
  ``torch.Tensor`` and the course's check modules are recorded before the answer is loaded; if
  loading or calling the answer replaced any of them, or turned the tracing off, the verdict is
  ``error``;
* hidden cases: a check that takes ``seed`` is called with the grader's seed.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import pickle
import sys
import sysconfig
import threading
from pathlib import Path
from types import CodeType, FrameType
from typing import Any, Callable

import rankcourse
import rankcourse.exercises

from .references import PACKAGE_ANSWERS

EXERCISES_DIR = str(Path(rankcourse.exercises.__file__).resolve().parent)
_TRUSTED = tuple(sorted({str(Path(p).resolve()) for p in (
    sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths()["stdlib"],
    sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
    str(Path(rankcourse.__file__).resolve().parent))}))


def is_student_file(filename: str) -> bool:
    """Whether code from ``filename`` is the student's: anything outside Python, the installed
    libraries and the rankcourse package (notebook cells, files the notebook wrote, ``exec``)."""
    if filename.startswith("<frozen"):
        return False
    try:
        path = str(Path(filename).resolve())
    except (OSError, ValueError):
        return True
    return not path.startswith(_TRUSTED)


def _qualname(code: CodeType) -> str:
    module = Path(code.co_filename).stem
    return f"{module}.{getattr(code, 'co_qualname', code.co_name)}"


class ReferenceTracer:
    """A ``sys.setprofile`` hook that records reference calls with the student's code on the stack."""

    def __init__(self, package_codes: dict[CodeType, str]) -> None:
        self.package_codes = package_codes
        self.found: list[str] = []
        self.harness: FrameType | None = None  # the frame that calls the check: the walk stops there

    def reference_name(self, code: CodeType) -> str | None:
        if code in self.package_codes:
            return self.package_codes[code]
        if os.path.dirname(os.path.realpath(code.co_filename)) == EXERCISES_DIR:
            return "rankcourse.exercises." + _qualname(code)
        return None

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        name = self.reference_name(frame.f_code)
        if name is None:
            return
        caller = frame.f_back
        while caller is not None and caller is not self.harness:
            if is_student_file(caller.f_code.co_filename):
                found = f"{name} (called from {caller.f_code.co_name})"
                if found not in self.found and len(self.found) < 20:
                    self.found.append(found)
                return
            caller = caller.f_back


def _package_codes(check: str) -> dict[CodeType, str]:
    """Code objects of the package functions that answer the exercise of ``check``."""
    codes: dict[CodeType, str] = {}
    for dotted in PACKAGE_ANSWERS.get(check, ()):
        path, _, attr = dotted.rpartition(".")
        obj = getattr(importlib.import_module(path), attr)
        members = vars(obj).values() if isinstance(obj, type) else [obj]
        for member in members:
            member = getattr(member, "__func__", member)  # classmethod, staticmethod
            code = getattr(inspect.unwrap(member), "__code__", None) if callable(member) else None
            if code is not None:
                codes[code] = dotted
    return codes


def answer_is_reference(answer: Any, tracer: ReferenceTracer) -> str | None:
    """The reference an answer *is* (a reference, a partial or bound method of one, a subclass)."""
    obj = answer
    for _ in range(10):
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif inspect.ismethod(obj):
            obj = obj.__func__
        elif getattr(obj, "__wrapped__", None) is not None and not isinstance(obj, type):
            obj = obj.__wrapped__
        else:
            break
    if isinstance(obj, type):
        for klass in obj.__mro__:
            for member in vars(klass).values():
                code = getattr(member, "__code__", None)
                name = tracer.reference_name(code) if isinstance(code, CodeType) else None
                if name and not is_student_file(code.co_filename):
                    return f"{name} (the answer is or extends {klass.__qualname__})"
        return None
    code = getattr(obj, "__code__", None)
    name = tracer.reference_name(code) if isinstance(code, CodeType) else None
    return f"{name} (the answer is that function)" if name else None


def _watched_modules() -> list[tuple[str, Any]]:
    import builtins
    import math

    import numpy
    import torch
    import torch.nn.functional

    watched = [("builtins", builtins), ("math", math), ("numpy", numpy), ("torch", torch),
               ("torch.nn.functional", torch.nn.functional), ("torch.Tensor", torch.Tensor)]
    watched += [(n, m) for n, m in sorted(sys.modules.items()) if n.startswith("rankcourse.exercises.")]
    return watched


def snapshot() -> dict[str, int]:
    """``module.name -> id`` of every attribute of the modules a check relies on."""
    return {f"{label}.{key}": id(value) for label, module in _watched_modules()
            for key, value in list(vars(module).items())}


def changed(before: dict[str, int]) -> list[str]:
    after = snapshot()
    return sorted(k for k, v in before.items() if after.get(k) != v)


def _not_attempted(err: BaseException) -> bool:
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, NotImplementedError) or "NotImplementedError" in str(err):
            return True
        err, seen = err.__cause__ or err.__context__, seen + 1
    return False


def run_one(exercise: dict[str, str], answers: Path, exported: dict[str, str], seed: int | None,
            before: dict[str, int]) -> dict[str, Any]:
    """Grade one exercise: load its answer, run its check with the guards; the verdict as a dict."""
    label = exercise["label"]
    status = exported.get(label, "missing")
    path = answers / f"{label}.pkl"
    if status == "missing":
        return {"verdict": "not attempted", "message": f"`{exercise['answer']}` is not defined"}
    if not path.is_file():
        why = status if status != "ok" else "the saved answer is missing"
        return {"verdict": "error", "message": f"`{exercise['answer']}` {why}"}
    module = importlib.import_module(exercise["module"])
    check: Callable[..., None] = getattr(module, exercise["check"])
    tracer = ReferenceTracer(_package_codes(exercise["check"]))
    try:
        with open(path, "rb") as file:
            answer = pickle.load(file)
    except BaseException as err:  # noqa: BLE001 - an answer that cannot be loaded is an error row
        return {"verdict": "error", "message": f"the answer could not be loaded: {type(err).__name__}: {err}"}
    kwargs = {"seed": seed} if seed is not None and "seed" in inspect.signature(check).parameters else {}
    outcome: dict[str, Any] = {"verdict": "pass", "message": "", "hidden_cases": bool(kwargs)}
    error: BaseException | None = None
    tracer.harness = sys._getframe()
    threading.setprofile(tracer)  # threads the answer starts are traced too
    sys.setprofile(tracer)
    try:
        check(answer, **kwargs)
    except AssertionError as err:
        error = err
        outcome.update(verdict="fail", message=str(err))
    except BaseException as err:  # noqa: BLE001 - the student's code raised (even SystemExit) in the check
        error = err
        outcome.update(verdict="fail", message=f"{type(err).__name__}: {err}")
    finally:
        still_traced = sys.getprofile() is tracer
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    if error is not None and _not_attempted(error):
        outcome.update(verdict="not attempted", message="the answer still raises NotImplementedError")
    # The references first: a check's helper that was called is named after them.
    named = sorted(tracer.found, key=lambda f: ("reference" not in f.split(" (")[0], tracer.found.index(f)))
    reference = answer_is_reference(answer, tracer) or ", ".join(named[:3]) or None
    tampered = changed(before)
    if not still_traced:
        outcome.update(verdict="error", message="the answer turned off the grader's call tracing")
    elif tampered:
        outcome.update(verdict="error", message="the answer replaced " + ", ".join(tampered[:5]))
    elif reference:
        outcome.update(verdict="uses-reference", message=f"calls the course's reference {reference}")
    return outcome


def main() -> None:
    request = json.loads(sys.stdin.read())
    fd = os.dup(1)  # the report channel; the checks' own prints go to the log
    sink = os.open(Path(request["scratch"]) / "check.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(sink, 1)
    os.dup2(sink, 2)

    def report(kind: str, payload: str) -> None:
        os.write(fd, f"RCGRADE {request['token']} {kind} {payload}\n".encode())

    for exercise in request["exercises"]:  # import every check before any answer is loaded
        importlib.import_module(exercise["module"])
    before = snapshot()
    for exercise in request["exercises"]:
        report("start", json.dumps(exercise["label"]))
        try:
            outcome = run_one(exercise, Path(request["answers"]), request["exported"], request["seed"], before)
        except Exception as err:  # noqa: BLE001 - a failure of the grader itself, said as such
            outcome = {"verdict": "error", "message": f"the grader failed: {type(err).__name__}: {err}"}
        report("verdict", json.dumps({"label": exercise["label"], **outcome}))


if __name__ == "__main__":
    main()
