#!/usr/bin/env python
"""Does MMoE's first-task AUC gap to torch-rechub vanish with several epochs and early stopping?

``mmoe_gap.py`` compares one epoch. This script trains rankcourse's MMoE (defaults, and with the
opt-in BatchNorm variants) and torch-rechub's ``MMOE`` for several epochs on the same data
(``bench_epoch.py``'s MMoE data: click and conversion, correlation 0.5), scores the validation
split after every epoch (sklearn AUC, the same code for both), and keeps the epoch with the best
mean validation AUC, as early stopping would. It reports the test AUC of that epoch and draws the
per-epoch validation curves of both tasks.

    python benchmarks/mmoe_epochs.py --rows 200000 --epochs 4 --seeds 0,1 \
        --json results/mmoe_epochs.json --png results/mmoe_epochs.png
    python benchmarks/mmoe_epochs.py --plot-from a.json b.json --png both.png
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE)]
sys.path.append(str(HERE / ".libs"))  # after the course's packages: never shadows its torch

import bench_epoch as B  # noqa: E402

#: variant name -> MMoE keyword arguments
VARIANTS = {
    "rankcourse default": {},
    "rankcourse gate_batch_norm=True": {"gate_batch_norm": True},
    "rankcourse batch_norm=True": {"batch_norm": True},
}
RECHUB = "torch-rechub 0.9.0 MMOE"


def make_data(rows: int, seed: int):
    from rankcourse.data.multitask import make_click_conversion

    return make_click_conversion(0.5, n_samples=rows, seed=seed)


def aucs(data, probs: np.ndarray) -> list[float]:
    y = data.labels.numpy()
    return [B.metrics(y[:, k], probs[:, k])[0] for k in range(y.shape[1])]


def run_rankcourse(name: str, ds, cfg: B.Config, epochs: int, seed: int) -> dict:
    from rankcourse.inference import predict_proba
    from rankcourse.models import MMoE
    from rankcourse.training import fit

    torch.manual_seed(seed)
    net = MMoE(ds.train.schema, n_tasks=ds.train.n_tasks, n_experts=cfg.mmoe_experts,
               expert=cfg.mmoe_expert, tower=cfg.tower, embed_dim=cfg.embed_dim, **VARIANTS[name])
    t0, c0 = time.perf_counter(), time.process_time()
    # patience = epochs: every epoch runs (whole curves), and fit restores the best epoch's weights
    hist = fit(net, ds.train, ds.valid, epochs=epochs, batch_size=cfg.batch_size, lr=cfg.lr,
               device="cpu", seed=seed, early_stopping=epochs, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    names = ds.train.task_names
    curves = [[float(v) for v in hist[f"valid_auc_{t}"].dropna()] for t in names]
    score = np.mean(curves, axis=0)
    return {"variant": name, "valid_auc": curves, "best_epoch": int(np.argmax(score)) + 1,
            "test_auc_best": aucs(ds.test, predict_proba(net, ds.test)), "wall_s": wall, "cpu_s": cpu}


def rechub_probs(net, cols: dict[str, np.ndarray]) -> np.ndarray:
    net.eval()
    n = len(next(iter(cols.values())))
    out = []
    with torch.no_grad():
        for a in range(0, n, B.EVAL_BATCH):
            xb = {k: torch.as_tensor(v[a:a + B.EVAL_BATCH]) for k, v in cols.items()}
            out.append(net(xb).reshape(len(next(iter(xb.values()))), -1).double())
    net.train()
    return torch.cat(out).numpy()


def run_rechub(ds, cfg: B.Config, epochs: int, seed: int) -> dict:
    from torch_rechub.basic.features import DenseFeature, SparseFeature
    from torch_rechub.models.multi_task import MMOE
    from torch_rechub.trainers import MTLTrainer
    from torch_rechub.utils.data import DataGenerator

    cols_tr, dense_names, sparse = B.columns(ds.train)
    cols_va, _, _ = B.columns(ds.valid)
    cols_te, _, _ = B.columns(ds.test)
    feats = [DenseFeature(n) for n in dense_names]
    feats += [SparseFeature(n, vocab_size=v, embed_dim=cfg.embed_dim) for n, v in sparse]
    types = ["classification"] * ds.train.n_tasks
    torch.manual_seed(seed)
    net = MMOE(features=feats, task_types=types, n_expert=cfg.mmoe_experts,
               expert_params={"dims": list(cfg.mmoe_expert)},
               tower_params_list=[{"dims": list(cfg.tower)}] * ds.train.n_tasks)
    y_tr, y_va = ds.train.labels.numpy().copy(), ds.valid.labels.numpy().copy()
    train_dl, _, _ = DataGenerator(cols_tr, y_tr).generate_dataloader(
        x_val=cols_va, y_val=y_va, x_test=cols_va, y_test=y_va, batch_size=cfg.batch_size)
    curves: list[list[float]] = [[] for _ in range(ds.train.n_tasks)]
    best, best_state, wall, cpu = -1.0, None, 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        trainer = MTLTrainer(net, task_types=types, n_epoch=epochs, device="cpu", model_path=tmp)
        for _ in range(epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            with B.quiet(True):
                trainer.train_one_epoch(train_dl)
            wall, cpu = wall + time.perf_counter() - t0, cpu + time.process_time() - c0
            scores = aucs(ds.valid, rechub_probs(net, cols_va))
            for k, s in enumerate(scores):
                curves[k].append(s)
            if np.mean(scores) > best:  # the rule of fit's early stopping: mean validation AUC
                best, best_state = float(np.mean(scores)), copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    score = np.mean(curves, axis=0)
    return {"variant": RECHUB, "valid_auc": curves, "best_epoch": int(np.argmax(score)) + 1,
            "test_auc_best": aucs(ds.test, rechub_probs(net, cols_te)), "wall_s": wall, "cpu_s": cpu}


def plot(results: dict, task_names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seeds = sorted(results)
    fig, axes = plt.subplots(len(seeds), len(task_names), figsize=(10, 3.6 * len(seeds)),
                             squeeze=False)
    styles = {RECHUB: ("black", "o", "-")}
    palette = ["tab:blue", "tab:orange", "tab:green"]
    for i, name in enumerate(VARIANTS):
        styles[name] = (palette[i % 3], "s^v"[i % 3], "--" if i else "-")
    for r, seed in enumerate(seeds):
        for k, task in enumerate(task_names):
            ax = axes[r][k]
            for run in results[seed]["runs"]:
                ys = run["valid_auc"][k]
                color, marker, line = styles[run["variant"]]
                ax.plot(range(1, len(ys) + 1), ys, line, color=color, marker=marker,
                        label=run["variant"])
            ax.set_title(f"task {k + 1} ({task}), seed {seed}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("validation AUC")
            ax.grid(alpha=0.3)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", default=",".join(str(i) for i in range(len(VARIANTS))),
                    help="comma list of rankcourse variant numbers (0..2) to run")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--plot-from", type=Path, nargs="+", default=None,
                    help="only draw --png from these --json files (e.g. one per seed)")
    args = ap.parse_args()
    if args.plot_from:
        merged = {}
        for f in args.plot_from:
            merged.update({int(k): v for k, v in json.loads(f.read_text())["results"].items()})
        plot(merged, ["click", "conversion"], args.png)
        return
    torch.set_num_threads(args.threads)
    cfg = B.Config()
    names = [list(VARIANTS)[int(i)] for i in args.variants.split(",") if i]
    results: dict[int, dict] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        ds = make_data(args.rows, seed)
        bayes = aucs(ds.test, ds.test.true_prob.numpy())
        print(f"seed {seed}: {args.rows} rows ({len(ds.train)} train, {len(ds.valid)} valid, "
              f"{len(ds.test)} test), Bayes test AUC {bayes[0]:.4f} / {bayes[1]:.4f}, "
              f"load average {os.getloadavg()}", flush=True)
        results[seed] = {"bayes_test_auc": bayes, "runs": []}
        # torch-rechub right after our default: the comparison is known early if the run is cut
        for name in names[:1] + [RECHUB] + names[1:]:
            run = (run_rechub(ds, cfg, args.epochs, seed) if name == RECHUB else
                   run_rankcourse(name, ds, cfg, args.epochs, seed))
            results[seed]["runs"].append(run)
            print(json.dumps(run), f"load {os.getloadavg()[0]:.1f}", flush=True)
            if args.json:
                args.json.write_text(json.dumps(
                    {"rows": args.rows, "epochs": args.epochs, "threads": args.threads,
                     "results": results,
                     "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=1))
            if args.png:
                plot(results, list(ds.train.task_names), args.png)


if __name__ == "__main__":
    main()
