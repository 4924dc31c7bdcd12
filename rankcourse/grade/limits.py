"""Run one step of grading in a child process with wall-clock, memory, CPU and file-size limits.

This is damage control, not a sandbox: the child runs as the same user, can read what that user
can read, can reach the network and can write to any absolute path the user may write to. What
it does stop: a hang or endless loop (killed at the wall-clock limit, the notebook's kernel too),
memory exhaustion (``RLIMIT_AS``), runaway files (``RLIMIT_FSIZE``), and writes through ``~`` or
relative paths (``HOME``, the caches and the working folder all point into a temporary folder that
is deleted afterwards). Run the grader in a container for real isolation (see the instructors'
page).
"""

from __future__ import annotations

import os
import re
import resource
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# Lines a child writes to report to the grader: "RCGRADE <token> <kind> <payload>".
_REPORT = re.compile(r"^RCGRADE (\S+) (\w+) ?(.*)$")


@dataclass(frozen=True)
class Limits:
    """Limits for one submission: seconds of wall clock, bytes of address space and of one file."""

    seconds: float = 300.0
    memory_bytes: int = 4 * 1024**3
    file_bytes: int = 256 * 1024**2

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"Limits.seconds must be positive, got {self.seconds}")
        if self.memory_bytes < 512 * 1024**2:
            raise ValueError(f"Limits.memory_bytes must be at least 512 MiB (torch needs it), got {self.memory_bytes}")


def scratch_env(root: Path) -> dict[str, str]:
    """A small environment whose home, caches and temporary files all lie under ``root``.

    Only ``PATH``, ``PYTHONPATH`` and the locale are kept from the grader's own environment: the
    child sees none of the instructor's other variables (tokens, credentials).
    """
    env = {k: os.environ[k] for k in ("PATH", "PYTHONPATH", "LANG", "LC_ALL") if k in os.environ}
    folders = {"HOME": "home", "XDG_CACHE_HOME": "home/.cache", "XDG_CONFIG_HOME": "home/.config",
               "XDG_DATA_HOME": "home/.local/share", "MPLCONFIGDIR": "home/.config/matplotlib",
               "TORCH_HOME": "home/.cache/torch", "IPYTHONDIR": "home/.ipython",
               "JUPYTER_RUNTIME_DIR": "home/.jupyter/runtime", "JUPYTER_CONFIG_DIR": "home/.jupyter",
               "TMPDIR": "tmp"}
    for key, sub in folders.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        env[key] = str(root / sub)
    # One thread each: parallel submissions share the CPUs, and fewer threads reserve less memory.
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MALLOC_ARENA_MAX="2",
               PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1")
    return env


def _apply_limits(limits: Limits) -> None:
    # Runs in the child between fork and exec; inherited by the kernel it starts.
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
    cpu = int(limits.seconds) + 30  # a backstop for a busy kernel that outlives its parent
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


@dataclass
class ChildResult:
    """What a limited child reported: its lines for our token, and why it stopped if it failed."""

    reports: list[tuple[str, str]]  # (kind, payload)
    returncode: int | None
    timed_out: bool
    stderr_tail: str


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_limited(module: str, request: str, token: str, cwd: Path, env: dict[str, str],
                limits: Limits, seconds: float) -> ChildResult:
    """Run ``python -m module`` in ``cwd`` under ``limits``; ``request`` goes to its stdin.

    The child reports on stdout in lines ``RCGRADE <token> <kind> <payload>``; lines without the
    token are ignored, so output the child's untrusted code prints cannot pass for a report. A
    child that reports ``kernel <pid>`` has its kernel's process group killed with it.
    """
    proc = subprocess.Popen([sys.executable, "-m", module], cwd=cwd, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=lambda: _apply_limits(limits))
    timed_out = False
    try:
        out, err = proc.communicate(request, timeout=seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc.pid)
        out, err = proc.communicate()
    reports = []
    for line in out.splitlines():
        found = _REPORT.match(line)
        if found and found.group(1) == token:
            reports.append((found.group(2), found.group(3)))
    stopped = any(kind == "kernel_stopped" for kind, _ in reports)
    for kind, payload in reports:  # the kernel runs in its own session: end it too
        if kind == "kernel" and payload.isdigit() and not stopped:
            _kill_group(int(payload))
    return ChildResult(reports, proc.returncode, timed_out, err[-2000:])
