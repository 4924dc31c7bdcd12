"""Child process: run a submitted notebook's cells in a fresh kernel, then export the answers.

Started by :mod:`rankcourse.grade.batch` under :mod:`rankcourse.grade.limits`; reads a JSON request
on stdin and reports on a private copy of its stdout (``RCGRADE <token> <kind> <payload>``). The
kernel gets ``/dev/null`` as its stdout, so nothing a notebook cell prints or writes to a file
descriptor reaches the grader. No submitted code runs in this process.

After the last cell, a new folder with a random name receives each answer (the object the student
bound to the exercise's answer name), pickled by value with ``cloudpickle``; the checks then run
in another fresh process (:mod:`rankcourse.grade.check`), where nothing a cell changed in the
kernel (a rebound check, a patched module) exists.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Callable

Report = Callable[[str, str], None]

_EXPORT = '''
def _rcgrade_export(names, folder):
    import json, os
    import cloudpickle
    found = {}
    for label, name in names:
        if name not in globals():
            found[label] = "missing"
            continue
        try:
            with open(os.path.join(folder, label + ".pkl"), "wb") as file:
                cloudpickle.dump(globals()[name], file)
            found[label] = "ok"
        except Exception as err:
            found[label] = f"could not be saved: {type(err).__name__}: {err}"
    return found
print(__import__("json").dumps(_rcgrade_export(NAMES, FOLDER)))
'''


def _private_report(token: str, log: Path) -> Report:
    """A report function on a copy of stdout; fd 1 and 2 then go to ``log`` for the kernel."""
    fd = os.dup(1)  # not inherited by the kernel (close-on-exec)
    sink = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.dup2(sink, 1)
    os.dup2(sink, 2)

    def report(kind: str, payload: str) -> None:
        os.write(fd, f"RCGRADE {token} {kind} {payload.replace(chr(10), ' ')}\n".encode())

    return report


def _first_error(cell: Any) -> str | None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            value = str(output.get("evalue", ""))[:300]
            return f"{output.get('ename', 'an exception')}: {value}" if value else output.get("ename", "an exception")
    return None


def _run_cells(client: Any, notebook: Any, deadline: float, report: Report) -> bool:
    """Run every code cell; report the first raising cell. False when the run had to stop."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    raised = False
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        remaining = deadline - time.monotonic()
        if remaining < 1:
            report("stopped", json.dumps(f"time limit reached before cell {index + 1}"))
            return False
        client.timeout = int(remaining)
        try:
            client.execute_cell(cell, index)
        except CellTimeoutError:
            report("stopped", json.dumps(f"cell {index + 1} was still running at the time limit (a hang or a loop?)"))
            return False
        except DeadKernelError:
            report("stopped", json.dumps(f"the kernel died in cell {index + 1} (out of memory, os._exit, a crash?)"))
            return False
        error = _first_error(cell)
        if error and not raised:
            raised = True
            report("raised", json.dumps(f"cell {index + 1} raised {error}"))
    return True


def _export(client: Any, exercises: list[dict[str, str]], folder: Path, report: Report) -> None:
    import nbformat

    source = _EXPORT.replace("NAMES", repr([(e["label"], e["answer"]) for e in exercises]))
    cell = nbformat.v4.new_code_cell(source.replace("FOLDER", repr(str(folder))))
    client.nb.cells.append(cell)
    client.timeout = 60
    client.execute_cell(cell, len(client.nb.cells) - 1)
    streams = [o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream"]
    report("exported", json.dumps("".join(streams).strip().splitlines()[-1:] or [""]))


def run(request: dict[str, Any], report: Report) -> None:
    """Run the notebook of ``request`` and export its answers (see the module's docstring)."""
    import nbformat
    from nbclient import NotebookClient

    try:
        notebook = nbformat.read(request["notebook"], as_version=4)
        if not isinstance(notebook.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as err:  # untrusted input: every way it can be broken becomes a reason
        report("stopped", json.dumps(f"malformed notebook: {type(err).__name__}: {str(err)[:300]}"))
        return
    for cell in notebook.cells:
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    deadline = time.monotonic() + float(request["seconds"])
    # The kernel is python3 whatever the notebook's metadata names; it is killed, not asked, to stop.
    client = NotebookClient(notebook, kernel_name="python3", allow_errors=True, timeout=60,
                            shutdown_kernel="immediate", resources={"metadata": {"path": os.getcwd()}})
    with client.setup_kernel():
        report("kernel", str(client.km.provisioner.process.pid))
        if _run_cells(client, notebook, deadline, report):
            folder = Path(request["scratch"]) / f"answers-{secrets.token_hex(8)}"
            folder.mkdir()  # made after the cells ran: no cell could have known its name
            _export(client, request["exercises"], folder, report)
            report("answers", json.dumps(str(folder)))
    report("kernel_stopped", "")


def main() -> None:
    request = json.loads(sys.stdin.read())
    report = _private_report(request["token"], Path(request["scratch"]) / "execute.log")
    try:
        run(request, report)
    except Exception as err:  # noqa: BLE001 - any failure is the submission's row, never a crash
        report("stopped", json.dumps(f"the run failed: {type(err).__name__}: {str(err)[:300]}"))


if __name__ == "__main__":
    main()
