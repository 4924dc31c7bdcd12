#!/usr/bin/env python
"""One training epoch of DeepFM, DCN-V2 and MMoE: rankcourse vs torch-rechub vs DeepCTR-Torch.

All implementations train on the same synthetic Criteo-like data (13 dense + 26 categorical fields,
Zipf ids, vocabularies 10..100k) made by ``rankcourse.data.ctr.make_ctr_data``, with embedding 16,
MLP 256-128, batch 1024 and Adam at lr 1e-3, for one epoch over the train split. Reported per
implementation and model:

* samples/s of the training epoch alone (building the data, the model and the library's input
  objects is not timed; each library's own per-batch input pipeline is);
* test AUC and logloss, and the Bayes-optimal AUC and logloss of the true probabilities on the
  same test rows (the ceiling any model can reach on this data).

Each library is fed as its documentation recommends, with tensor/array inputs and its own default
optimiser settings:

* rankcourse: ``rankcourse.training.fit`` with its defaults (fused Adam, tensor-resident
  index-slice batches);
* torch-rechub 0.9.0: its model classes, ``DataGenerator`` over a dict of pre-built numpy columns
  (its fastest documented input: its Dataset indexes numpy columns about 6x faster than torch
  tensor columns and far faster than a DataFrame; ``--rechub-input tensor`` for tensor columns) and
  its ``CTRTrainer``/``MTLTrainer`` (default: Adam lr 1e-3, weight decay 1e-5);
* DeepCTR-Torch 0.3.0: ``model.compile("adam", "binary_crossentropy")`` and
  ``model.fit(x, y, batch_size=1024, epochs=1)`` on a dict of numpy columns.

The reference libraries are looked for in ``benchmarks/.libs`` (``install_reference_libs.sh``
puts them there, away from the course environment); an implementation whose library is missing
is skipped with a message.

Usage::

    python benchmarks/bench_epoch.py --threads 2                 # full run, 500k rows
    python benchmarks/bench_epoch.py --rows 100000 --models deepfm --impls rankcourse,deepctr
    python benchmarks/bench_epoch.py --device cuda --repeats 3 --json results.json
"""

from __future__ import annotations

import os
import sys

if "--verbose" not in sys.argv:  # must precede any import of tqdm: the libraries' progress bars
    os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import contextlib
import io
import json
import math
import platform
import statistics
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from sklearn.metrics import log_loss, roc_auc_score

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
if str(HERE) not in sys.path:  # minimal_loops.py, next to this file
    sys.path.insert(1, str(HERE))

from rankcourse.data.tabular import TabularData  # noqa: E402

MODELS = ("deepfm", "dcnv2", "mmoe")
IMPLS = ("rankcourse", "minimal", "rechub", "deepctr")
MODEL_LABEL = {"deepfm": "DeepFM", "dcnv2": "DCN-V2", "mmoe": "MMoE"}
IMPL_LABEL = {
    "rankcourse": "rankcourse",
    "minimal": "minimal PyTorch loop",
    "rechub": "torch-rechub 0.9.0 (array input)",
    "deepctr": "DeepCTR-Torch 0.3.0",
}
LIB_MODULE = {"rechub": ("torch_rechub", "0.9.0"), "deepctr": ("deepctr_torch", "0.3.0")}
# Speed-up of rankcourse over the faster library that the course promises (2 CPU cores).
TARGET_RATIO = {"deepfm": 2.5, "dcnv2": 1.8, "mmoe": 2.2}
# rankcourse's speed as a fraction of the minimal hand-written loop's (benchmarks/minimal_loops.py).
MINIMAL_TARGET = 0.9
AUC_TOLERANCE = 0.003
EVAL_BATCH = 8192


@dataclass(frozen=True)
class Config:
    """The shared hyper-parameters; every implementation is built from these."""

    batch_size: int = 1024
    lr: float = 1e-3
    embed_dim: int = 16
    hidden: tuple[int, ...] = (256, 128)
    n_cross: int = 2
    dcn_cross: str = "mix"  # "mix": low-rank mixture (both libraries' default); "full": full-rank W
    low_rank: int = 32
    dcn_experts: int = 4
    mmoe_experts: int = 4
    mmoe_expert: tuple[int, ...] = (256, 128)  # hidden widths of each MMoE expert
    tower: tuple[int, ...] = (64,)
    rechub_input: str = "numpy"  # column type handed to torch-rechub's DataGenerator
    batch_norm: bool = False  # rankcourse's MLPs with BatchNorm (as torch-rechub's always are)


@dataclass
class Bench:
    """Train/test splits for the single-task models (``ctr``) and for MMoE (``mtl``, two tasks)."""

    ctr_train: TabularData
    ctr_test: TabularData
    mtl_train: TabularData
    mtl_test: TabularData
    second_task: str  # says where MMoE's second label comes from
    build_s: float

    def splits(self, model: str) -> tuple[TabularData, TabularData]:
        return (self.mtl_train, self.mtl_test) if model == "mmoe" else (self.ctr_train, self.ctr_test)


@dataclass
class RunResult:
    train_s: float  # wall-clock seconds of the epoch
    cpu_s: float  # CPU seconds of this process (all threads) during the epoch
    n_train: int
    probs: np.ndarray  # (n_test, n_tasks) predicted probabilities

    @property
    def samples_per_s(self) -> float:
        return self.n_train / self.train_s


@dataclass
class Outcome:
    """All repeats of one (implementation, model) pair, or why it did not run."""

    impl: str
    model: str
    runs: list[RunResult] = field(default_factory=list)
    skipped: str | None = None


# --------------------------------------------------------------------------- data
def build_data(rows: int, seed: int, second_task: str, correlation: float, need_mtl: bool) -> Bench:
    """Make the CTR data once, and MMoE's two-task data if MMoE is benchmarked."""
    try:
        from rankcourse.data.ctr import make_ctr_data
    except ImportError as err:
        raise SystemExit(f"rankcourse.data.ctr.make_ctr_data is needed to build the data: {err}")
    t0 = time.perf_counter()
    ds = make_ctr_data(n_samples=rows, seed=seed)
    ctr_train, ctr_test = ds.train, ds.test
    mtl_train, mtl_test, source = ctr_train, ctr_test, "not built"
    if need_mtl and second_task == "conversion":
        from rankcourse.data.multitask import make_click_conversion

        mtl = make_click_conversion(correlation, n_samples=rows, seed=seed)
        mtl_train, mtl_test = mtl.train, mtl.test
        source = (f"click and conversion from rankcourse.data.multitask.make_click_conversion(correlation="
                  f"{correlation}) on the same features (rates {mtl_test.labels.mean(0)[0]:.3f}, "
                  f"{mtl_test.labels.mean(0)[1]:.3f})")
    elif need_mtl:
        def twice(d: TabularData) -> TabularData:
            return TabularData(d.schema, d.dense, d.sparse, d.labels[:, :1].repeat(1, 2),
                               d.true_prob[:, :1].repeat(1, 2), ("click", "click_copy"), ("binary", "binary"))
        mtl_train, mtl_test = twice(ctr_train), twice(ctr_test)
        source = "the click label used twice (task 2 = copy of task 1)"
    return Bench(ctr_train, ctr_test, mtl_train, mtl_test, source, time.perf_counter() - t0)


def columns(d: TabularData) -> tuple[dict[str, np.ndarray], list[str], list[tuple[str, int]]]:
    """Named numpy columns (contiguous), the dense names and the (name, vocab) of sparse fields."""
    cols: dict[str, np.ndarray] = {}
    dense_names = list(d.schema.dense)
    sparse = [(f.name, f.vocab_size) for f in d.schema.sparse]
    dense = d.dense.cpu().numpy()
    ids = d.sparse.cpu().numpy()
    for i, name in enumerate(dense_names):
        cols[name] = np.ascontiguousarray(dense[:, i])
    for j, (name, _) in enumerate(sparse):
        cols[name] = np.ascontiguousarray(ids[:, j])
    return cols, dense_names, sparse


# --------------------------------------------------------------------------- helpers
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device: torch.device, fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of ``fn()``, the device drained before and after.

    CPU seconds count every thread of this process; on a busy shared machine they are much less
    disturbed by other work than the wall clock (though waiting threads that spin still count).
    """
    sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    sync(device)
    return time.perf_counter() - t0, time.process_time() - c0


@contextlib.contextmanager
def quiet(enabled: bool = True):
    """Swallow the libraries' prints (device names, per-epoch losses) unless --verbose."""
    if not enabled:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def metrics(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(AUC, logloss) of probabilities ``p`` for labels ``y`` (both 1-D)."""
    p = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(roc_auc_score(y, p)), float(log_loss(y, p, labels=[0, 1]))


def library_status(impl: str) -> str | None:
    """None if the library imports at the expected version, else a message saying why it is skipped."""
    if impl == "minimal":
        return None
    if impl == "rankcourse":
        try:
            import rankcourse.models  # noqa: F401
            import rankcourse.training  # noqa: F401
        except ImportError as err:
            return f"rankcourse.models / rankcourse.training not importable: {err}"
        return None
    module, version = LIB_MODULE[impl]
    try:
        mod = __import__(module)
    except ImportError as err:
        return f"{module} is not installed ({err}); run benchmarks/install_reference_libs.sh"
    found = getattr(mod, "__version__", "?")
    if found != version:
        print(f"note: {module} {found} found, the benchmark was written for {version}", file=sys.stderr)
    return None


# --------------------------------------------------------------------------- rankcourse
def run_rankcourse(model: str, train: TabularData, test: TabularData, cfg: Config,
                   device: torch.device, seed: int, verbose: bool) -> RunResult:
    from rankcourse.models import DCNv2, DeepFM, MMoE
    from rankcourse.inference import predict_proba
    from rankcourse.training import fit

    schema = train.schema
    torch.manual_seed(seed)
    bn = cfg.batch_norm
    if model == "deepfm":
        net = DeepFM(schema, embed_dim=cfg.embed_dim, hidden=cfg.hidden, batch_norm=bn)
    elif model == "dcnv2":
        net = DCNv2(schema, embed_dim=cfg.embed_dim, n_cross=cfg.n_cross, hidden=cfg.hidden, structure="parallel",
                    low_rank=cfg.low_rank if cfg.dcn_cross == "mix" else None, n_experts=cfg.dcn_experts,
                    batch_norm=bn)
    else:
        net = MMoE(schema, n_tasks=train.n_tasks, n_experts=cfg.mmoe_experts, expert=cfg.mmoe_expert, tower=cfg.tower,
                   embed_dim=cfg.embed_dim, batch_norm=bn)
    net.to(device)
    train_d = train.to(device)  # data building, not timed: fit would do this once itself
    elapsed, cpu = timed(device, lambda: fit(net, train_d, epochs=1, batch_size=cfg.batch_size, lr=cfg.lr,
                                        device=device, seed=seed, progress=verbose))
    probs = np.asarray(predict_proba(net, test.to(device), batch_size=EVAL_BATCH), dtype=np.float64)
    return RunResult(elapsed, cpu, len(train), probs.reshape(len(test), -1))


# --------------------------------------------------------------------------- the minimal loop
def run_minimal(model: str, train: TabularData, test: TabularData, cfg: Config,
                device: torch.device, seed: int, verbose: bool) -> RunResult:
    from minimal_loops import MinimalDCNv2, MinimalDeepFM, MinimalMMoE, train_one_epoch

    vocab, n_dense = list(train.schema.vocab_sizes), train.schema.n_dense
    torch.manual_seed(seed)
    if model == "deepfm":
        net = MinimalDeepFM(vocab, n_dense, cfg.embed_dim, cfg.hidden)
    elif model == "dcnv2":
        net = MinimalDCNv2(vocab, n_dense, cfg.embed_dim, cfg.hidden, cfg.n_cross,
                           cfg.low_rank if cfg.dcn_cross == "mix" else None, cfg.dcn_experts)
    else:
        net = MinimalMMoE(vocab, n_dense, cfg.embed_dim, train.n_tasks, cfg.mmoe_experts, cfg.mmoe_expert, cfg.tower)
    net.to(device)
    d, s, y = (t.to(device) for t in (train.dense, train.sparse, train.labels))
    elapsed, cpu = timed(device, lambda: train_one_epoch(net, d, s, y, cfg.batch_size, cfg.lr, seed))
    out = []
    with torch.no_grad():
        for a in range(0, len(test), EVAL_BATCH):
            z = net(test.dense[a:a + EVAL_BATCH].to(device), test.sparse[a:a + EVAL_BATCH].to(device))
            out.append(torch.sigmoid(z).reshape(len(z), -1).double().cpu())
    return RunResult(elapsed, cpu, len(train), torch.cat(out).numpy())


# --------------------------------------------------------------------------- torch-rechub
def run_rechub(model: str, train: TabularData, test: TabularData, cfg: Config,
               device: torch.device, seed: int, verbose: bool) -> RunResult:
    from torch_rechub.basic.features import DenseFeature, SparseFeature
    from torch_rechub.models.multi_task import MMOE
    from torch_rechub.models.ranking import DCNv2, DeepFM
    from torch_rechub.trainers import CTRTrainer, MTLTrainer
    from torch_rechub.utils.data import DataGenerator

    cols_tr, dense_names, sparse = columns(train)
    cols_te, _, _ = columns(test)
    multi = model == "mmoe"
    y_tr = train.labels.numpy().copy() if multi else train.labels[:, 0].numpy().copy()
    y_te = test.labels.numpy().copy() if multi else test.labels[:, 0].numpy().copy()
    x_tr, x_te = cols_tr, cols_te
    if cfg.rechub_input == "tensor":
        x_tr = {k: torch.from_numpy(v) for k, v in cols_tr.items()}
        x_te = {k: torch.from_numpy(v) for k, v in cols_te.items()}
        y_tr, y_te = torch.from_numpy(y_tr), torch.from_numpy(y_te)

    dense_f = [DenseFeature(n) for n in dense_names]
    sparse_f = [SparseFeature(n, vocab_size=v, embed_dim=cfg.embed_dim) for n, v in sparse]
    mlp = {"dims": list(cfg.hidden), "dropout": 0.0, "activation": "relu"}
    torch.manual_seed(seed)
    if model == "deepfm":
        net = DeepFM(deep_features=dense_f + sparse_f, fm_features=sparse_f, mlp_params=mlp)
    elif model == "dcnv2":
        net = DCNv2(features=dense_f + sparse_f, n_cross_layers=cfg.n_cross, mlp_params=mlp,
                    model_structure="parallel", use_low_rank_mixture=cfg.dcn_cross == "mix",
                    low_rank=cfg.low_rank, num_experts=cfg.dcn_experts)
    else:
        net = MMOE(features=dense_f + sparse_f, task_types=["classification"] * train.n_tasks,
                   n_expert=cfg.mmoe_experts, expert_params={"dims": list(cfg.mmoe_expert)},
                   tower_params_list=[{"dims": list(cfg.tower)}] * train.n_tasks)

    train_dl, _, _ = DataGenerator(x_tr, y_tr).generate_dataloader(
        x_val=x_te, y_val=y_te, x_test=x_te, y_test=y_te, batch_size=cfg.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        dev = str(device)
        if multi:
            trainer = MTLTrainer(net, task_types=["classification"] * train.n_tasks, n_epoch=1, device=dev,
                                 model_path=tmp)
        else:
            trainer = CTRTrainer(net, n_epoch=1, device=dev, model_path=tmp)
        with quiet(not verbose):
            elapsed, cpu = timed(device, lambda: trainer.train_one_epoch(train_dl))

    net.eval()
    out = []
    with torch.no_grad():
        for a in range(0, len(test), EVAL_BATCH):
            xb = {k: torch.as_tensor(v[a:a + EVAL_BATCH]).to(device) for k, v in x_te.items()}
            out.append(net(xb).reshape(len(next(iter(xb.values()))), -1).double().cpu())
    return RunResult(elapsed, cpu, len(train), torch.cat(out).numpy())


# --------------------------------------------------------------------------- DeepCTR-Torch
def run_deepctr(model: str, train: TabularData, test: TabularData, cfg: Config,
                device: torch.device, seed: int, verbose: bool) -> RunResult:
    from deepctr_torch.inputs import DenseFeat, SparseFeat
    from deepctr_torch.models import DCN, MMOE, DCNMix, DeepFM

    cols_tr, dense_names, sparse = columns(train)
    cols_te, _, _ = columns(test)
    fcs = [SparseFeat(n, vocabulary_size=v, embedding_dim=cfg.embed_dim) for n, v in sparse]
    fcs += [DenseFeat(n, 1) for n in dense_names]
    dev = "cuda:0" if device.type == "cuda" else "cpu"
    hidden = tuple(cfg.hidden)
    if model == "deepfm":
        net = DeepFM(fcs, fcs, dnn_hidden_units=hidden, seed=seed, device=dev)
        y_tr = train.labels[:, 0].numpy()
    elif model == "dcnv2":
        if cfg.dcn_cross == "mix":
            net = DCNMix(fcs, fcs, cross_num=cfg.n_cross, dnn_hidden_units=hidden, low_rank=cfg.low_rank,
                         num_experts=cfg.dcn_experts, seed=seed, device=dev)
        else:
            net = DCN(fcs, fcs, cross_num=cfg.n_cross, cross_parameterization="matrix", dnn_hidden_units=hidden,
                      seed=seed, device=dev)
        y_tr = train.labels[:, 0].numpy()
    else:
        net = MMOE(fcs, num_experts=cfg.mmoe_experts, expert_dnn_hidden_units=tuple(cfg.mmoe_expert),
                   gate_dnn_hidden_units=(),
                   tower_dnn_hidden_units=tuple(cfg.tower), task_types=("binary",) * train.n_tasks,
                   task_names=tuple(train.task_names), seed=seed, device=dev)
        y_tr = train.labels.numpy()
    net.compile("adam", "binary_crossentropy")
    # fit() concatenates the columns into one float array itself: that is its documented input path,
    # so it stays inside the timed call (about 0.1 s of a 20 s epoch on 400k rows).
    with quiet(not verbose):
        elapsed, cpu = timed(device, lambda: net.fit(cols_tr, y_tr, batch_size=cfg.batch_size, epochs=1,
                                                 verbose=1 if verbose else 0))
        probs = net.predict(cols_te, batch_size=EVAL_BATCH)
    return RunResult(elapsed, cpu, len(train), np.asarray(probs, dtype=np.float64).reshape(len(test), -1))


RUNNERS = {"rankcourse": run_rankcourse, "minimal": run_minimal, "rechub": run_rechub, "deepctr": run_deepctr}


# --------------------------------------------------------------------------- reporting
def _fmt_rate(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x / 1000:.1f}k" if x < 1e6 else f"{x / 1e6:.2f}M"


def summarise(outcomes: list[Outcome], bench: Bench) -> list[dict]:
    """One record per (implementation, model, task) with medians over the repeats."""
    records = []
    for o in outcomes:
        train, test = bench.splits(o.model)
        if o.skipped or not o.runs:
            records.append({"impl": o.impl, "model": o.model, "task": None, "skipped": o.skipped or "no run"})
            continue
        rates = [r.samples_per_s for r in o.runs]
        for k, task in enumerate(test.task_names):
            y = test.labels[:, k].numpy()
            per_run = [metrics(y, r.probs[:, k]) for r in o.runs]
            bayes = metrics(y, test.true_prob[:, k].numpy())
            records.append({
                "impl": o.impl, "model": o.model, "task": task,
                "samples_per_s": statistics.median(rates),
                "samples_per_s_runs": rates,
                "epoch_s": statistics.median(r.train_s for r in o.runs),
                "cpu_s": statistics.median(r.cpu_s for r in o.runs),
                "samples_per_cpu_s": statistics.median(r.n_train / r.cpu_s for r in o.runs),
                "n_train": len(train), "n_test": len(test),
                "auc": statistics.median(m[0] for m in per_run),
                "logloss": statistics.median(m[1] for m in per_run),
                "bayes_auc": bayes[0], "bayes_logloss": bayes[1],
                "skipped": None,
            })
    return records


def target_checks(records: list[dict]) -> list[dict]:
    """rankcourse vs the faster library, per model (first task for MMoE)."""
    checks = []
    for model in MODELS:
        rows = {r["impl"]: r for r in records if r["model"] == model and not r["skipped"]
                and r["task"] == (records_first_task(records, model))}
        ours = rows.get("rankcourse")
        libs = [r for i, r in rows.items() if i in LIB_MODULE]
        minimal = rows.get("minimal")
        if ours is not None and minimal is not None:
            checks.append({
                "model": model, "versus": "minimal",
                "ratio": ours["samples_per_s"] / minimal["samples_per_s"],
                "ratio_cpu_time": ours["samples_per_cpu_s"] / minimal["samples_per_cpu_s"],
                "target_ratio": MINIMAL_TARGET, "rankcourse_auc": ours["auc"], "minimal_auc": minimal["auc"],
            })
        if ours is None or not libs:
            continue
        fastest = max(libs, key=lambda r: r["samples_per_s"])
        best_auc = max(r["auc"] for r in libs)
        ratio = ours["samples_per_s"] / fastest["samples_per_s"]
        fastest_cpu = max(libs, key=lambda r: r["samples_per_cpu_s"])
        checks.append({
            "model": model, "versus": "library", "rankcourse_samples_per_s": ours["samples_per_s"],
            "faster_library": fastest["impl"], "library_samples_per_s": fastest["samples_per_s"],
            "ratio": ratio, "target_ratio": TARGET_RATIO[model], "speed_met": ratio >= TARGET_RATIO[model],
            "ratio_cpu_time": ours["samples_per_cpu_s"] / fastest_cpu["samples_per_cpu_s"],
            "rankcourse_auc": ours["auc"], "best_library_auc": best_auc,
            "auc_met": ours["auc"] >= best_auc - AUC_TOLERANCE,
        })
    return checks


def records_first_task(records: list[dict], model: str) -> str | None:
    for r in records:
        if r["model"] == model and r.get("task"):
            return r["task"]
    return None


def markdown(records: list[dict], checks: list[dict], impls: list[str], models: list[str]) -> str:
    lines = ["| implementation | model | task | samples/s | epoch s | CPU s | test AUC | test logloss | Bayes AUC | Bayes logloss |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in records:
        if r["skipped"]:
            lines.append(f"| {IMPL_LABEL[r['impl']]} | {MODEL_LABEL[r['model']]} | – | – | – | – | – | – | – | – |")
            continue
        lines.append(
            f"| {IMPL_LABEL[r['impl']]} | {MODEL_LABEL[r['model']]} | {r['task']} | {_fmt_rate(r['samples_per_s'])} "
            f"| {r['epoch_s']:.1f} | {r['cpu_s']:.1f} | {r['auc']:.4f} | {r['logloss']:.4f} | {r['bayes_auc']:.4f} | {r['bayes_logloss']:.4f} |")
    lines += ["", "| implementation | " + " | ".join(f"{MODEL_LABEL[m]} samples/s" for m in models) + " |",
              "|---|" + "---:|" * len(models)]
    for impl in impls:
        cells = []
        for m in models:
            rate = next((r["samples_per_s"] for r in records if r["impl"] == impl and r["model"] == m
                         and not r["skipped"]), None)
            cells.append(_fmt_rate(rate))
        lines.append(f"| {IMPL_LABEL[impl]} | " + " | ".join(cells) + " |")
    minimal = [c for c in checks if c["versus"] == "minimal"]
    checks = [c for c in checks if c["versus"] == "library"]
    if minimal:
        lines += ["", "| model | rankcourse / minimal loop, samples/s | in CPU time | target | AUC rankcourse | AUC minimal |",
                  "|---|---:|---:|---:|---:|---:|"]
        for c in minimal:
            lines.append(f"| {MODEL_LABEL[c['model']]} | {c['ratio']:.2f} | {c['ratio_cpu_time']:.2f} | "
                         f"≥ {c['target_ratio']:.2f} | {c['rankcourse_auc']:.4f} | {c['minimal_auc']:.4f} |")
    if checks:
        lines += ["", "| model | rankcourse | faster library | speed-up | target | met | speed-up in CPU time | AUC rankcourse | best library AUC | AUC within 0.003 |",
                  "|---|---:|---|---:|---:|---|---:|---:|---:|---|"]
        for c in checks:
            lines.append(
                f"| {MODEL_LABEL[c['model']]} | {_fmt_rate(c['rankcourse_samples_per_s'])} | {IMPL_LABEL[c['faster_library']]} "
                f"{_fmt_rate(c['library_samples_per_s'])} | {c['ratio']:.2f}× | ≥ {c['target_ratio']:.1f}× | "
                f"{'yes' if c['speed_met'] else 'NO'} | {c['ratio_cpu_time']:.2f}× | {c['rankcourse_auc']:.4f} | {c['best_library_auc']:.4f} | "
                f"{'yes' if c['auc_met'] else 'NO'} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu",
                    help="default: cuda if available")
    ap.add_argument("--rows", type=int, default=500_000, help="rows generated in all (train 80%%, test 10%%)")
    ap.add_argument("--models", default=",".join(MODELS), help=f"comma list of {MODELS}")
    ap.add_argument("--impls", default=",".join(IMPLS), help=f"comma list of {IMPLS}")
    ap.add_argument("--repeats", type=int, default=1, help="train each pair N times; report the median")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's own)")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--dcn-cross", choices=("mix", "full"), default="mix",
                    help="DCN-V2 cross layers: low-rank mixture (rank 32, 4 experts; the libraries' default) or full rank")
    ap.add_argument("--second-task", choices=("conversion", "copy"), default="conversion",
                    help="MMoE's tasks: click + conversion (make_click_conversion), or the click twice")
    ap.add_argument("--correlation", type=float, default=0.5,
                    help="correlation of the click and conversion true logits for MMoE (default 0.5)")
    ap.add_argument("--rechub-input", choices=("numpy", "tensor"), default="numpy",
                    help="columns handed to torch-rechub's DataGenerator (numpy is the faster of the two)")
    ap.add_argument("--no-warmup", dest="warmup", action="store_false",
                    help="skip the untimed warm-up steps of every pair")
    ap.add_argument("--mmoe-expert", default="256,128", help="hidden widths of each MMoE expert")
    ap.add_argument("--batch-norm", action="store_true",
                    help="rankcourse's MLPs, experts and towers with BatchNorm (like torch-rechub's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--libs", type=Path, default=HERE / ".libs", help="folder holding the reference libraries")
    ap.add_argument("--verbose", action="store_true", help="show progress bars and the libraries' prints")
    args = ap.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        args.mmoe_expert = tuple(int(w) for w in args.mmoe_expert.split(",") if w.strip())
    except ValueError:
        ap.error(f"--mmoe-expert must be comma-separated widths, got {args.mmoe_expert!r}")
    if not args.mmoe_expert or min(args.mmoe_expert) < 1:
        ap.error(f"--mmoe-expert needs at least one positive width, got {args.mmoe_expert!r}")
    args.impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    bad = [m for m in args.models if m not in MODELS] + [i for i in args.impls if i not in IMPLS]
    if bad:
        ap.error(f"unknown model/implementation {bad}; models: {MODELS}, implementations: {IMPLS}")
    if args.rows < 1000:
        ap.error(f"--rows must be at least 1000, got {args.rows}")
    if args.repeats < 1 or args.batch_size < 1:
        ap.error("--repeats and --batch-size must be positive")
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda asked for, but torch.cuda.is_available() is False")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.libs.is_dir():
        sys.path.append(str(args.libs))  # after site-packages: never shadows the course's own torch
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cfg = Config(batch_size=args.batch_size, dcn_cross=args.dcn_cross, rechub_input=args.rechub_input,
                 mmoe_expert=args.mmoe_expert, batch_norm=args.batch_norm)

    skipped = {impl: library_status(impl) for impl in args.impls}
    for impl, why in skipped.items():
        if why:
            print(f"skipping {IMPL_LABEL[impl]}: {why}", file=sys.stderr)

    bench = build_data(args.rows, args.seed, args.second_task, args.correlation, "mmoe" in args.models)
    if device.type == "cuda":  # CUDA context and cuBLAS handles before any timing
        torch.ones(256, 256, device=device).matmul(torch.ones(256, 256, device=device)).sum().item()

    print(f"# one epoch, {len(bench.ctr_train):,} train rows / {len(bench.ctr_test):,} test rows "
          f"({bench.ctr_train.schema.n_dense} dense + {bench.ctr_train.schema.n_fields} categorical fields, "
          f"{bench.ctr_train.schema.total_vocab:,} ids; data built in {bench.build_s:.1f} s, not timed)")
    print(f"# device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{platform.python_version()}, batch {cfg.batch_size}, embed {cfg.embed_dim}, MLP {cfg.hidden}, "
          f"DCN-V2 cross {cfg.dcn_cross} x{cfg.n_cross}, MMoE {cfg.mmoe_experts} experts {cfg.mmoe_expert} "
          f"towers {cfg.tower}, rankcourse batch norm {cfg.batch_norm}, "
          f"median of {args.repeats}")
    if "mmoe" in args.models:
        print(f"# MMoE tasks: {bench.second_task}")

    outcomes = {(i, m): Outcome(i, m, skipped=skipped[i]) for m in args.models for i in args.impls}
    if args.warmup:
        # A few untimed steps of every pair first: the first use of each kernel, allocator growth and
        # lazy imports cost seconds once per process, which would otherwise land on whichever
        # implementation happens to run first.
        t0 = time.perf_counter()
        for m in args.models:
            train, test = bench.splits(m)
            small_train = train.subset(slice(0, min(len(train), 4 * cfg.batch_size)))
            small_test = test.subset(slice(0, min(len(test), 1000)))
            for i in args.impls:
                o = outcomes[(i, m)]
                if o.skipped:
                    continue
                try:
                    RUNNERS[i](m, small_train, small_test, cfg, device, args.seed, False)
                except Exception as err:
                    traceback.print_exc()
                    o.skipped = f"error: {type(err).__name__}: {err}"
                    print(f"{IMPL_LABEL[i]} {MODEL_LABEL[m]} failed in the warm-up: {o.skipped}", file=sys.stderr)
        print(f"# warm-up (4 untimed steps of every pair): {time.perf_counter() - t0:.1f} s")
    for rep in range(args.repeats):  # interleaved, so slow drifts of the machine hit every pair alike
        for m in args.models:
            train, test = bench.splits(m)
            for i in args.impls:
                o = outcomes[(i, m)]
                if o.skipped:
                    continue
                try:
                    r = RUNNERS[i](m, train, test, cfg, device, args.seed, args.verbose)
                except Exception as err:  # one broken pair must not stop the others
                    traceback.print_exc()
                    o.skipped = f"error: {type(err).__name__}: {err}"
                    print(f"{IMPL_LABEL[i]} {MODEL_LABEL[m]} failed: {o.skipped}", file=sys.stderr)
                    continue
                o.runs.append(r)
                auc = roc_auc_score(test.labels[:, 0].numpy(), r.probs[:, 0])
                print(f"  [{rep + 1}/{args.repeats}] {IMPL_LABEL[i]:<34} {MODEL_LABEL[m]:<7} "
                      f"{r.samples_per_s:>10,.0f} samples/s  {r.train_s:6.1f} s  CPU {r.cpu_s:6.1f} s  "
                      f"AUC {auc:.4f}", flush=True)

    records = summarise(list(outcomes.values()), bench)
    checks = target_checks(records)
    print()
    print(markdown(records, checks, args.impls, args.models))
    for o in outcomes.values():
        if o.skipped:
            print(f"- {IMPL_LABEL[o.impl]} {MODEL_LABEL[o.model]}: {o.skipped}")
    if args.json:
        meta = {"rows": args.rows, "n_train": len(bench.ctr_train), "n_test": len(bench.ctr_test),
                "device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
                "repeats": args.repeats, "config": cfg.__dict__, "mmoe_tasks": bench.second_task,
                "seed": args.seed, "python": platform.python_version()}
        if device.type == "cuda":
            meta["gpu"] = torch.cuda.get_device_name(device)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "results": records, "targets": checks}, indent=2,
                                        default=list))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
