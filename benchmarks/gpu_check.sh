#!/usr/bin/env bash
# One short check on a GPU machine (about 4-6 minutes on an H200), run from anywhere:
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh
#
# 1. reports the machine, the Python and its torch (`torch.__version__`, `torch.cuda.is_available()`);
#    installs torch==2.13.0 from PyPI only if `import torch` fails (a machine that has a CUDA torch
#    keeps it), and any missing pure-Python dependency (numpy, pandas, scikit-learn, tqdm, matplotlib,
#    seaborn, pytest) by name from the registry;
# 2. installs the reference libraries into benchmarks/.libs unless they are there already;
# 3. runs the CUDA tests: pytest -m cuda;
# 4. runs the epoch benchmark on CUDA (500k rows, all implementations and models);
# 5. if time is left, rankcourse alone at batch 16384 (the GPU's large-batch throughput).
#
# Every step's output and exit code go to $OUT/gpu_check.log (the benchmark's results also to
# $OUT/bench_cuda*.json: three files in all); a failing step never stops the next one. The whole script keeps to a
# deadline (GPU_CHECK_BUDGET_S, default 360 s): each step gets at most the time that is left.
set -u
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
OUT="${OUT:-$root/gpu_check_out}"
mkdir -p "$OUT"
budget="${GPU_CHECK_BUDGET_S:-360}"
PY="${PYTHON:-python3}"
log="$OUT/gpu_check.log"
: >"$log"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"  # the package from this checkout, installed or not
export PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

say() { echo "[gpu_check +${SECONDS}s] $*" | tee -a "$log"; }

# step NAME CAP_SECONDS COMMAND...: run with the smaller of CAP and the time left; never fails.
step() {
    local name="$1" cap="$2"; shift 2
    local left=$((budget - SECONDS))
    if ((left < 10)); then say "$name: skipped, out of time"; return 0; fi
    ((cap > left)) && cap=$left
    say "$name: start (limit ${cap}s)"
    timeout --kill-after=5 "$cap" "$@" >"$tmp" 2>&1
    local rc=$?
    sed 's/^/    /' "$tmp" >>"$log"
    ((rc == 124 || rc == 137)) && say "$name: TIMED OUT after ${cap}s" || say "$name: exit $rc"
    return 0
}

# ---- 1. environment
step env 30 bash -c "uname -a; nproc; free -g | head -2; nvidia-smi -L || true; command -v $PY; $PY --version; \
    $PY -c 'import torch;print(torch.__version__, torch.cuda.is_available())'"
if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    step install_torch 240 "$PY" -m pip install torch==2.13.0
fi
"$PY" -c "import torch;print('torch', torch.__version__, 'cuda available:', torch.cuda.is_available())" 2>&1 | tee -a "$log"
# one interpreter start for all the checks: prints the registry names of the missing modules
missing="$("$PY" - <<'PY' 2>/dev/null
import importlib.util
need = {"numpy": "numpy", "pandas": "pandas", "sklearn": "scikit-learn", "tqdm": "tqdm",
        "matplotlib": "matplotlib", "seaborn": "seaborn", "pytest": "pytest"}
print(" ".join(pkg for mod, pkg in need.items() if importlib.util.find_spec(mod) is None))
PY
)"
if [[ -n "$missing" ]]; then
    say "missing: $missing"
    # shellcheck disable=SC2086
    step install_deps 120 "$PY" -m pip install $missing
fi

# ---- 2. reference libraries (skipped by the benchmark if this fails)
if PYTHONPATH="$root/benchmarks/.libs:$PYTHONPATH" "$PY" -c "import torch_rechub, deepctr_torch" >/dev/null 2>&1; then
    say "reference libraries: already in benchmarks/.libs"
else
    step install_reference_libs 90 env PYTHON="$PY" bash "$root/benchmarks/install_reference_libs.sh"
fi

# ---- 3. CUDA tests
step pytest_cuda 120 "$PY" -m pytest -m cuda -q -p no:cacheprovider -rs tests

# ---- 4. the benchmark on CUDA
step bench_cuda 240 "$PY" "$root/benchmarks/bench_epoch.py" --device cuda --rows 500000 \
    --json "$OUT/bench_cuda.json"

# ---- 5. rankcourse at a large batch, if time is left
step bench_cuda_b16384 60 "$PY" "$root/benchmarks/bench_epoch.py" --device cuda --rows 500000 \
    --impls rankcourse --batch-size 16384 --json "$OUT/bench_cuda_b16384.json"

say "done in ${SECONDS}s; results in $OUT"
exit 0
