#!/usr/bin/env python
"""Serving latency: p50 / p95 / p99 of one request's model time, for DeepFM and DIN (chapter 10).

The models are chapter 10's: trained briefly on chapter 9's behaviour data with string ids (the
weights' values do not change the time), saved and loaded as bundles. Each request is one test
user with N candidate items drawn from the catalogue, encoded once beforehand; each engine scores
it alone, as a server would. Engines:

* ``eager`` -- naive PyTorch: N full rows, the user's columns copied into each;
* ``shared`` -- the user's part (embeddings, FM sums, first MLP layer share; DIN's history)
  computed once per request (``rankcourse.serving.engines``);
* ``onnxruntime`` -- the shared engine exported with torch's dynamo ONNX exporter, run by
  onnxruntime on the CPU (skipped when onnxruntime is not installed).

Printed: the table of percentiles in ms, the ratios of eager to shared and to onnxruntime at
N = 500 (medians, one thread), DeepFM's p99 at N = 500 on one thread against the 10 ms aim, and
the load average before and after (timings on a loaded machine include time the process waited).
The timed requests take a pool of encoded requests in turn (``--pool``): encoding is not timed,
and the model's time does not depend on which ids a request holds.

Then batches: B requests of N = 500 candidates scored in one forward pass by the shared engine
(``RequestScorer.batch_logits``: candidates concatenated, each request's user side once), on the
CPU with one thread and on CUDA when present: requests per second and p50/p99 per batch.
``--profile`` prints the operators that take DeepFM's time at N = 500 on one thread.

Usage::

    python benchmarks/bench_serving.py                      # 1,000 requests per point
    python benchmarks/bench_serving.py --requests 200 --sizes 50,500 --threads 1 --csv out.csv
    python benchmarks/bench_serving.py --models DeepFM --sizes 500 --threads 1 --profile
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rankcourse.data import make_behaviour_data  # noqa: E402
from rankcourse.models import DIN, DeepFM  # noqa: E402
from rankcourse.runtime import seed_everything  # noqa: E402
from rankcourse.serving import ModelBundle, RequestScorer, load_bundle, save_bundle  # noqa: E402
from rankcourse.serving.export import OnnxEngine, export_onnx, onnx_available  # noqa: E402
from rankcourse.serving.latency import latency_grid, percentiles, time_batches, torch_threads  # noqa: E402
from rankcourse.serving.shop import SHOP_USER_FIELDS, draw_requests, encode_split, shop_encoder  # noqa: E402
from rankcourse.training import fit  # noqa: E402

ARGS = {"DeepFM": (DeepFM, dict(embed_dim=8, hidden=(128, 64))), "DIN": (DIN, dict(embed_dim=8, hidden=(64, 32)))}
AIM_MS = 10.0


def trained_scorers(folder: Path, users: int) -> tuple[dict[str, RequestScorer], object]:
    data = make_behaviour_data(users, 20, max_len=20, seed=0)
    encoder = shop_encoder(data)
    train = encode_split(data.train, encoder)
    scorers = {}
    for name, (cls, args) in ARGS.items():
        seed_everything(0)
        model = cls(encoder.schema, **args)
        fit(model, train, epochs=1, batch_size=512, lr=1e-2, progress=False)
        path = save_bundle(ModelBundle(model.eval(), args, encoder, SHOP_USER_FIELDS), folder / f"{name}.pt")
        scorers[name] = RequestScorer(load_bundle(path), max_candidates=5_000)
    return scorers, data


def engines(name: str, scorer: RequestScorer, data, folder: Path) -> dict:
    naive = RequestScorer(scorer.bundle, "naive").engine
    out = {"eager": lambda t: naive, "shared": lambda t: scorer.engine}
    if onnx_available():
        example = scorer.encode(draw_requests(data, 8, 1, seed=0)[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            path = export_onnx(scorer.engine, example, folder / f"{name}.onnx", 5_000)
        out["onnxruntime"] = lambda t: OnnxEngine(path, threads=t)
    else:
        print("onnxruntime not installed: its rows are skipped (pip install 'rankcourse[serving]')")
    return out


def batch_rows(name: str, scorer: RequestScorer, data, n: int, batch_sizes: tuple[int, ...],
               batches: int) -> list[dict]:
    """Requests per second and p50/p99 per batch of ``B`` requests in one forward pass, CPU and CUDA."""
    requests = [scorer.encode(r) for r in draw_requests(data, n, max(batch_sizes), seed=n)]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        on_device = scorer
        if device != "cpu":
            bundle = copy.deepcopy(scorer.bundle)
            bundle.model.to(device)
            on_device = RequestScorer(bundle, max_candidates=scorer.max_candidates)
            on_device.engine.to(device)
        with torch_threads(1):
            for b in batch_sizes:
                seconds = time_batches(on_device.batch_logits, requests, b, batches)
                rows.append({"model": name, "device": device, "B": b, "N": n,
                             "requests/s": b * batches / seconds.sum(), **percentiles(seconds, (50, 99))})
    return rows


def profile_deepfm(scorer: RequestScorer, data, n: int = 500, count: int = 50) -> None:
    """The operators that take the time of DeepFM's engines at N = ``n`` on one thread."""
    requests = [scorer.encode(r) for r in draw_requests(data, n, count, seed=n)]
    for label, engine in [("eager", RequestScorer(scorer.bundle, "naive").engine), ("shared", scorer.engine)]:
        with torch_threads(1), torch.inference_mode():
            for inputs in requests[:5]:
                engine(*inputs)
            with torch.profiler.profile() as prof:
                for inputs in requests:
                    engine(*inputs)
        print(f"DeepFM {label}, N = {n}, one thread, {count} requests: self CPU time by operator")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=1_000)
    parser.add_argument("--sizes", default="50,200,500,1000,2000")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--models", default="DeepFM,DIN")
    parser.add_argument("--users", type=int, default=1_500)
    parser.add_argument("--pool", type=int, default=100, help="distinct encoded requests per N")
    parser.add_argument("--batch-sizes", default="1,8,32,128")
    parser.add_argument("--batches", type=int, default=100, help="timed batches per batch size")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--csv", default=None)
    opts = parser.parse_args()
    sizes = tuple(int(v) for v in opts.sizes.split(","))
    threads = tuple(int(v) for v in opts.threads.split(","))
    load_before = os.getloadavg()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average before {load_before[0]:.2f}")
    folder = Path(tempfile.mkdtemp(prefix="bench-serving-"))
    scorers, data = trained_scorers(folder, opts.users)
    rows = []
    for name in opts.models.split(","):
        scorer = scorers[name]

        def make(n: int, count: int, scorer: RequestScorer = scorer) -> list:
            return [scorer.encode(r) for r in draw_requests(data, n, count, seed=n)]

        start = time.perf_counter()
        grid = latency_grid(engines(name, scorer, data, folder), make, sizes, threads, opts.requests,
                            pool=opts.pool)
        rows.append(grid.assign(model=name))
        print(f"{name}: {time.perf_counter() - start:.0f} s")
    table = pd.concat(rows)[["model", "engine", "N", "threads", "p50", "p95", "p99", "mean"]]
    pd.set_option("display.width", 120)
    print(table.round(3).to_string(index=False))
    one = table[(table.threads == 1) & (table.N == 500)]
    for name, g in one.groupby("model"):
        p50 = g.set_index("engine").p50
        ratios = ", ".join(f"eager/{e} = {p50['eager'] / p50[e]:.2f}" for e in p50.index if e != "eager")
        print(f"{name} at N = 500, 1 thread, median: {ratios}")
    deepfm = one[one.model == "DeepFM"].set_index("engine").p99
    for engine, p99 in deepfm.items():
        verdict = "meets" if p99 <= AIM_MS else "misses"
        print(f"DeepFM N = 500, 1 thread, {engine}: p99 {p99:.2f} ms ({verdict} the {AIM_MS:g} ms aim)")
    if opts.profile and "DeepFM" in scorers:
        profile_deepfm(scorers["DeepFM"], data)
    batch_sizes = tuple(int(v) for v in opts.batch_sizes.split(","))
    if batch_sizes and opts.batches > 0:
        batches = pd.DataFrame([row for name in opts.models.split(",")
                                for row in batch_rows(name, scorers[name], data, 500, batch_sizes, opts.batches)])
        print(f"\nBatches of B requests, N = 500 each, one forward pass (shared engine, one CPU thread"
              f"{'; CUDA' if torch.cuda.is_available() else '; no CUDA device here'}):")
        print(batches.round(2).to_string(index=False))
    print(f"load average after {os.getloadavg()[0]:.2f} (before {load_before[0]:.2f})")
    if opts.csv:
        table.to_csv(opts.csv, index=False)


if __name__ == "__main__":
    main()
