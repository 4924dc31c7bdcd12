"""The course's DeepFM with its embedding tables sharded across processes by TorchRec (optional).

Needs the optional extra ``pip install "rankcourse[torchrec]"`` (TorchRec and the fbgemm-gpu CPU
kernels, pinned to the pair that loads with the course's torch; see ``pyproject.toml``). Nothing here
is imported by the rest of the package.

TorchRec (Ivchenko et al. 2022) keeps each embedding table as one entry of an
``EmbeddingBagCollection`` (EBC); ``DistributedModelParallel`` (DMP) then places every table by a
*sharding plan*: table-wise (the whole table on one rank), row-wise (rows split across ranks),
column-wise (embedding columns split). The dense part (first-order weights, FM, MLP) stays
data-parallel under DDP. A lookup becomes an all-to-all: each rank sends the ids of its batch to
the ranks that own them and gets the pooled vectors back.

Gradient scale: DDP *averages* the dense gradients over the ``W`` ranks, and the gradients that flow
back to the sharded tables through the all-to-all are scaled the same way, so with every rank
minimising ``W * n_r / n`` times the mean loss of its own ``n_r`` rows, one epoch on ``W`` ranks takes
the same SGD steps as one process with the global batch, tables included (checked in
``tests/test_sharded_tables.py`` against the unsharded course DeepFM; we first guessed the table
gradients were summed and divided their learning rate by ``W``: that run missed by 0.02 in a logit).

Two traps met on the way, both handled here: DMP allocates the sharded tables afresh with its own
random initialisation (:func:`load_table_shards` copies the unsharded weights in), and the sharded
collection returns its pooled embeddings ordered by sharding type, not by field (look them up by
name).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor, nn

from ..models import DeepFM
from ..models.base import deep_input

__all__ = ["TorchRecDeepFM", "sharding_plan", "load_table_shards", "train_sharded_deepfm", "sharded_deepfm_job"]


def _torchrec():
    try:
        import torchrec
    except (ImportError, OSError) as exc:  # OSError: fbgemm-gpu built for another torch
        raise ImportError(
            "rankcourse.scale.sharded_tables needs TorchRec: pip install 'rankcourse[torchrec]' "
            f"(torch {torch.__version__}); import failed with: {exc}"
        ) from exc
    return torchrec


class TorchRecDeepFM(nn.Module):
    """DeepFM whose field embeddings are one TorchRec table per field, in an EmbeddingBagCollection.

    Built from a course :class:`~rankcourse.models.DeepFM` (same weights, so the same logits): table
    ``t_<field>`` holds rows ``offsets[f] : offsets[f] + vocab[f]`` of ``deepfm.embedding.weight``.

    Shapes:
        ``dense (batch, n_dense)``, ``sparse int64 (batch, n_fields)`` -> logits ``(batch,)``.
    """

    def __init__(self, deepfm: DeepFM, device: torch.device | str = "cpu") -> None:
        super().__init__()
        if not isinstance(deepfm, DeepFM) or deepfm.dnn_embedding is not None:
            raise TypeError("TorchRecDeepFM copies a DeepFM with one shared embedding table "
                            f"(separate_embeddings=False), got {type(deepfm).__name__}")
        trc = _torchrec()
        schema = deepfm.schema
        self.schema, self.n_tasks = schema, 1
        self.fields = [f.name for f in schema.sparse]
        self.dim = deepfm.embedding.dim
        weight = deepfm.embedding.weight.detach()
        configs = [trc.EmbeddingBagConfig(name=f"t_{name}", embedding_dim=self.dim, num_embeddings=vocab,
                                          feature_names=[name], pooling=trc.PoolingType.SUM)
                   for name, vocab in zip(self.fields, schema.vocab_sizes)]
        self.ebc = trc.EmbeddingBagCollection(tables=configs, device=torch.device(device))
        with torch.no_grad():
            for name, off, vocab in zip(self.fields, schema.offsets, schema.vocab_sizes):
                self.ebc.embedding_bags[f"t_{name}"].weight.copy_(weight[off:off + vocab])
        self.linear = copy.deepcopy(deepfm.linear)
        self.fm = copy.deepcopy(deepfm.fm)
        self.dnn = copy.deepcopy(deepfm.dnn)

    def field_embeddings(self, sparse: Tensor) -> Tensor:
        """``(batch, n_fields)`` ids -> ``(batch, n_fields, dim)`` through the EBC (one id per bag)."""
        trc = _torchrec()
        batch = sparse.shape[0]
        # KeyedJaggedTensor: values grouped by key (field), then by row; every bag holds one id.
        kjt = trc.KeyedJaggedTensor.from_lengths_sync(
            keys=self.fields, values=sparse.t().reshape(-1),
            lengths=torch.ones(batch * len(self.fields), dtype=torch.int32, device=sparse.device))
        pooled = self.ebc(kjt)  # KeyedTensor: one (batch, dim) block per field
        # Look the fields up by name: a sharded EBC orders its output keys by sharding type, not
        # in the order of the fields, so reshaping pooled.values() would permute the fields.
        return torch.stack([pooled[name] for name in self.fields], dim=1)

    def forward(self, dense: Tensor, sparse: Tensor) -> Tensor:
        self.schema.validate(dense, sparse, check_values=False)
        v = self.field_embeddings(sparse)
        return self.linear(dense, sparse) + self.fm(v) + self.dnn(deep_input(v, dense)).squeeze(-1)


def sharding_plan(model: TorchRecDeepFM, world: int, row_wise: tuple[str, ...] = ()) -> Any:
    """A plan for ``model.ebc``: tables of the fields in ``row_wise`` split by rows over all ranks,
    the others table-wise, dealt round-robin to the ranks."""
    from torchrec.distributed.sharding_plan import construct_module_sharding_plan, row_wise as rw, table_wise
    from torchrec.distributed.types import ShardingPlan

    unknown = sorted(set(row_wise) - set(model.fields))
    if unknown:
        raise KeyError(f"row_wise names unknown field(s) {unknown}; fields are {model.fields}")
    per_table = {f"t_{name}": rw() if name in row_wise else table_wise(rank=k % world)
                 for k, name in enumerate(model.fields)}
    plan = construct_module_sharding_plan(model.ebc, per_table, local_size=world, world_size=world,
                                          device_type="cpu")
    return ShardingPlan({"ebc": plan})


def load_table_shards(dmp: nn.Module, tables: dict[str, Tensor]) -> None:
    """Copy full tables ``{table name: (rows, dim)}`` into this rank's shards of them.

    DMP allocates the sharded tables afresh (its own random initialisation); without this copy the
    sharded model would not start from the unsharded model's weights. The shards in ``state_dict()``
    are views of the kernel's weights, so writing into them writes the tables.
    """
    from torch.distributed._shard.sharded_tensor import ShardedTensor

    copied = set()
    for key, value in dmp.state_dict().items():
        name = key.split(".")[-2]
        if not isinstance(value, ShardedTensor) or name not in tables:
            continue
        full = tables[name]
        if tuple(value.size()) != tuple(full.shape):
            raise ValueError(f"table {name!r}: sharded size {tuple(value.size())}, given {tuple(full.shape)}")
        with torch.no_grad():
            for shard in value.local_shards():
                (r0, c0), (nr, nc) = shard.metadata.shard_offsets, shard.metadata.shard_sizes
                shard.tensor.copy_(full[r0:r0 + nr, c0:c0 + nc])
        copied.add(name)
    if is_missing := sorted(set(tables) - copied):
        raise KeyError(f"no sharded table named {is_missing} in the model's state_dict")


def train_sharded_deepfm(model: TorchRecDeepFM, dense: Tensor, sparse: Tensor, labels: Tensor, *,
                         batch_size: int, lr: float, seed: int = 0,
                         row_wise: tuple[str, ...] = ()) -> nn.Module:
    """One epoch of SGD on this rank's slices of a seeded permutation, tables sharded by DMP.

    Call on every rank of an initialised (gloo) process group with the same full training arrays;
    returns the DMP-wrapped model (its forward needs every rank to take part).
    """
    from torchrec.distributed import DistributedModelParallel
    from torchrec.distributed.types import ShardingEnv
    from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward
    from torchrec.optim.keyed import KeyedOptimizerWrapper
    from torchrec.optim.optimizers import in_backward_optimizer_filter

    import torch.distributed as dist

    from .distributed import shard_batch

    world, rank_ = dist.get_world_size(), dist.get_rank()
    # Tables: SGD fused into the backward pass (fbgemm kernels); dense part: plain SGD on
    # DDP-averaged gradients. Both see the gradient of the global mean loss (module doc).
    tables = {name: bag.weight.detach().clone() for name, bag in model.ebc.embedding_bags.items()}
    apply_optimizer_in_backward(torch.optim.SGD, model.ebc.parameters(), {"lr": lr})
    dmp = DistributedModelParallel(model, env=ShardingEnv.from_process_group(dist.group.WORLD),
                                   device=torch.device("cpu"), plan=sharding_plan(model, world, row_wise))
    load_table_shards(dmp, tables)
    dense_opt = KeyedOptimizerWrapper(dict(in_backward_optimizer_filter(dmp.named_parameters())),
                                      lambda params: torch.optim.SGD(params, lr=lr))
    perm = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    global_batch = batch_size * world
    for start in range(0, len(labels), global_batch):
        glob = perm[start:start + global_batch]
        idx = shard_batch(glob, rank_, world)
        loss = nn.functional.binary_cross_entropy_with_logits(dmp(dense[idx], sparse[idx]), labels[idx])
        dense_opt.zero_grad()
        (loss * world * len(idx) / len(glob)).backward()
        dense_opt.step()
    return dmp


def sharded_deepfm_job(out_dir: str, rows: int = 20_000, batch_size: int = 256, lr: float = 0.05) -> None:
    """A demonstration for :func:`rankcourse.scale.distributed.launch`: on every rank, one epoch of a
    DeepFM with tables sharded (C1, C3 row-wise, the rest table-wise); rank 0 also trains the
    unsharded DeepFM with the global batch and writes ``summary.txt`` comparing their logits."""
    import os

    import torch.distributed as dist

    from ..data import make_ctr_data
    from ..training import fit

    ds = make_ctr_data(rows, vocab_sizes=[1000, 500, 200, 100, 50, 20], n_dense=4, seed=0)
    torch.manual_seed(0)
    deepfm = DeepFM(ds.schema, embed_dim=8, hidden=(32,))
    nn.init.normal_(deepfm.embedding.weight, std=0.1)
    reference = copy.deepcopy(deepfm)
    dmp = train_sharded_deepfm(TorchRecDeepFM(deepfm), ds.train.dense, ds.train.sparse, ds.train.labels[:, 0],
                               batch_size=batch_size, lr=lr, row_wise=("C1", "C3"))
    dmp.eval()
    with torch.no_grad():
        sharded = dmp(ds.valid.dense, ds.valid.sparse)
    if dist.get_rank() != 0:
        return
    world = dist.get_world_size()
    fit(reference, ds.train, epochs=1, batch_size=batch_size * world, progress=False, device="cpu",
        optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=lr))
    with torch.no_grad():
        unsharded = reference(ds.valid.dense, ds.valid.sparse)
    gap = (sharded - unsharded).abs().max().item()
    with open(os.path.join(out_dir, "summary.txt"), "w") as f:
        f.write(f"{world} ranks, tables C1 and C3 row-wise, the rest table-wise; one epoch of SGD.\n"
                f"largest |logit difference| to the unsharded DeepFM on {len(ds.valid)} validation rows: {gap:.2e}\n")
