"""Self-checks for the chapters' code exercises: one module per chapter (``ch01`` ... ``ch10``) and ``appendix_a``.

Each check takes the student's function or module, runs it on small inputs against a reference,
and raises ``AssertionError`` with a message that says *what* is wrong (the shape, the value, the
case) — not only that something is.

Every check also takes ``seed``: ``None`` (the default, in the notebooks) runs its fixed public
cases; an integer, which the grader (:mod:`rankcourse.grade`) passes from the instructor's
``--seed``, runs hidden cases with the same roles and new values (:mod:`._seeding`).
"""
