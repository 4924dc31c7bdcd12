"""Small encoders and trained-looking models for the serving tests (no downloads, a few seconds)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from rankcourse.datasets import load_census
from rankcourse.datasets.census import SHIPPED_CENSUS_FILE
from rankcourse.serving import DenseStatistic, FeatureEncoder
from rankcourse.serving.features import census_encoder

USER_FIELDS = ("user", "city", "age", "hist_item")


def small_census(tmp: Path, n_lines: int = 3000):
    """The first ``n_lines`` records of the shipped Census file, loaded as splits, and their encoder."""
    path = tmp / "census-small.gz"
    with gzip.open(SHIPPED_CENSUS_FILE, "rt", encoding="latin-1") as src, gzip.open(path, "wt",
                                                                                  encoding="latin-1") as dst:
        for i, line in enumerate(src):
            if i >= n_lines:
                break
            dst.write(line)
    splits = load_census(path, cache_dir=tmp / "cache", min_count=2)
    return splits, census_encoder(splits, path)


def shop_encoder(max_len: int = 6) -> FeatureEncoder:
    """A shop: user side (user, city, age, a history of items), item side (item, shop, price)."""
    return FeatureEncoder(
        dense={"age": DenseStatistic(35.0, 12.0), "price": DenseStatistic(2.0, 1.5, "log1p")},
        categorical={"user": [f"u{i}" for i in range(30)], "city": ["Beijing", "Shanghai", "Lyon"],
                     "item": [f"i{i}" for i in range(40)], "shop": ["s0", "s1", "s2", "s3"]},
        sequences={"hist_item": ("item", max_len)},
    )


def shop_request(n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    user = {"user": f"u{rng.integers(35)}", "city": "Lyon", "age": 41.0,
            "hist_item": [f"i{j}" for j in rng.integers(0, 45, size=4)]}
    cands = [{"item": f"i{rng.integers(45)}", "shop": f"s{rng.integers(5)}", "price": float(rng.uniform(0, 50))}
             for _ in range(n)]
    return {"user": user, "candidates": cands}


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter random values (trained weights are not near the initial zeros)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.3)
    return model.eval()
