"""A data-parallel training job to start with ``torchrun`` (the appendix runs it)::

    torchrun --nproc-per-node 2 -m rankcourse.scale.ddp_job --rows 200000 --batch-size 512 --out run.json

Every rank generates the same seeded synthetic data, trains a DeepFM with
:func:`~rankcourse.scale.distributed.fit_distributed` and rank 0 writes a JSON summary: ranks, rows,
training seconds (wall clock), CPU seconds of each rank's process, global rows per second and the
validation AUC. On a machine with GPUs add ``--device cuda``: each rank takes GPU ``LOCAL_RANK``.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Sequence

import torch
import torch.distributed as dist

from ..data import make_ctr_data
from ..models import DeepFM
from .distributed import fit_distributed, init_process_group, is_main_process, world_size


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=200_000, help="synthetic rows (train is 80%%)")
    p.add_argument("--batch-size", type=int, default=512, help="rows per rank per step")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--embed-dim", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3, help="for the global batch (scale it yourself)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per rank")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON summary written by rank 0")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict:
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    device = init_process_group(args.device)
    ds = make_ctr_data(args.rows, seed=args.seed)
    torch.manual_seed(args.seed)
    model = DeepFM(ds.schema, embed_dim=args.embed_dim)
    cpu0, t0 = time.process_time(), time.perf_counter()
    history = fit_distributed(model, ds.train, ds.valid, epochs=args.epochs, batch_size=args.batch_size,
                              lr=args.lr, device=device, seed=args.seed, progress=False)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    cpus = [None] * world_size()
    dist.all_gather_object(cpus, cpu)
    summary = {
        "ranks": world_size(), "train_rows": len(ds.train), "batch_per_rank": args.batch_size,
        "parameters": sum(p.numel() for p in model.parameters()),
        "steps": int(history["step"].iloc[-1]),
        "train_seconds": seconds, "cpu_seconds_per_rank": cpus,
        "rows_per_second": args.epochs * len(ds.train) / seconds,
        "valid_auc": float(history["valid_auc_click"].iloc[-1]),
    }
    if is_main_process():
        print(json.dumps(summary))
        if args.out:
            with open(args.out, "w") as f:
                json.dump(summary, f)
    dist.destroy_process_group()
    return summary


if __name__ == "__main__":
    main()
