"""Self-checks for the chapters' code exercises: one module per chapter (``ch01`` ... ``ch06``).

Each check takes the student's function or module, runs it on small inputs against a reference,
and raises ``AssertionError`` with a message that says *what* is wrong (the shape, the value, the
case) — not only that something is.
"""
