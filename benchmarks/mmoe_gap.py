#!/usr/bin/env python
"""Where does MMoE's first-task AUC gap to torch-rechub come from? One change at a time.

torch-rechub's MMoE differs from rankcourse's in three places besides speed: its embeddings start
as N(0, 1e-4^2) (``RandomNormal(0, 0.0001)``; ours N(0, 0.01^2)), every one of its MLP layers has
BatchNorm (ours only with ``batch_norm=True``), and its gates are ``Linear -> BatchNorm1d ->
softmax`` (ours ``Linear -> softmax``, as in Ma et al. 2018). Its trainer also adds weight decay
1e-5. This script trains rankcourse's MMoE on ``bench_epoch.py``'s data for one epoch with each
difference switched on alone and all together, beside torch-rechub's own MMoE, and prints the test
AUC of both tasks and the CPU seconds of each run.

    python benchmarks/mmoe_gap.py --rows 200000 --threads 1 --json gap.json
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE / ".libs")]

import bench_epoch as B  # noqa: E402

#: variant name -> (batch_norm, gate BatchNorm, embedding init std, weight decay)
VARIANTS = {
    "rankcourse default": (False, False, 0.01, 0.0),
    "+ BatchNorm in experts and towers": (True, False, 0.01, 0.0),
    "+ BatchNorm before the gate softmax": (False, True, 0.01, 0.0),
    "+ embeddings N(0, 1e-4)": (False, False, 1e-4, 0.0),
    "+ weight decay 1e-5": (False, False, 0.01, 1e-5),
    "all four (torch-rechub's recipe)": (True, True, 1e-4, 1e-5),
}


def build(schema, n_tasks: int, cfg: B.Config, batch_norm: bool, gate_bn: bool, init_std: float):
    from rankcourse.models import MMoE

    net = MMoE(schema, n_tasks=n_tasks, n_experts=cfg.mmoe_experts, expert=cfg.mmoe_expert,
               tower=cfg.tower, embed_dim=cfg.embed_dim, batch_norm=batch_norm)
    if init_std != 0.01:
        nn.init.normal_(net.embedding.weight, std=init_std)
    if gate_bn:  # one BatchNorm1d over every gate's logits: each (gate, expert) logit on its own
        linear = net.gate.linear
        net.gate.linear = nn.Sequential(linear, nn.BatchNorm1d(linear.out_features))
    return net


def run_variant(name: str, bench: B.Bench, cfg: B.Config, seed: int) -> dict:
    from rankcourse.inference import predict_proba
    from rankcourse.training import fit

    batch_norm, gate_bn, init_std, wd = VARIANTS[name]
    torch.manual_seed(seed)
    net = build(bench.mtl_train.schema, bench.mtl_train.n_tasks, cfg, batch_norm, gate_bn, init_std)
    wall, cpu = B.timed(torch.device("cpu"), lambda: fit(
        net, bench.mtl_train, epochs=1, batch_size=cfg.batch_size, lr=cfg.lr, weight_decay=wd,
        device="cpu", seed=seed, progress=False))
    p = predict_proba(net, bench.mtl_test)
    y = bench.mtl_test.labels.numpy()
    aucs = [B.metrics(y[:, k], p[:, k])[0] for k in range(y.shape[1])]
    return {"variant": name, "auc_task1": aucs[0], "auc_task2": aucs[1], "wall_s": wall, "cpu_s": cpu}


def run_rechub(bench: B.Bench, cfg: B.Config, seed: int) -> dict:
    r = B.run_rechub("mmoe", bench.mtl_train, bench.mtl_test, cfg, torch.device("cpu"), seed, False)
    y = bench.mtl_test.labels.numpy()
    aucs = [B.metrics(y[:, k], r.probs[:, k])[0] for k in range(y.shape[1])]
    return {"variant": "torch-rechub 0.9.0 MMOE", "auc_task1": aucs[0], "auc_task2": aucs[1],
            "wall_s": r.train_s, "cpu_s": r.cpu_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", default=",".join(str(i) for i in range(len(VARIANTS))),
                    help="comma list of variant numbers (0..5) to run")
    ap.add_argument("--no-rechub", dest="rechub", action="store_false")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = B.Config()
    bench = B.build_data(args.rows, args.seed, "conversion", 0.5, need_mtl=True)
    print(f"data: {args.rows} rows, {bench.second_task}; load average {os.getloadavg()}", flush=True)
    bayes = [B.metrics(bench.mtl_test.labels[:, k].numpy(), bench.mtl_test.true_prob[:, k].numpy())[0]
             for k in range(2)]
    print(f"Bayes AUC on the test rows: {bayes[0]:.4f}, {bayes[1]:.4f}", flush=True)
    rows = []
    names = list(VARIANTS)
    jobs = [names[int(i)] for i in args.variants.split(",") if i]
    # torch-rechub right after our default: the gap is known early even if the run is cut short.
    order = jobs[:1] + (["rechub"] if args.rechub else []) + jobs[1:]
    for name in order:
        rows.append(run_rechub(bench, cfg, args.seed) if name == "rechub" else
                    run_variant(name, bench, cfg, args.seed))
        print(json.dumps(rows[-1]), f"load {os.getloadavg()[0]:.1f}", flush=True)
        if args.json:
            write(args, bayes, rows)


def write(args: argparse.Namespace, bayes: list[float], rows: list[dict]) -> None:
    if args.json:
        args.json.write_text(json.dumps({"rows": args.rows, "seed": args.seed, "bayes_auc": bayes,
                                         "runs": rows, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())},
                                        indent=1))


if __name__ == "__main__":
    main()
