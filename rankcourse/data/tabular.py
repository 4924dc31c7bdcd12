"""A dataset held as whole tensors, so training batches are index slices, not collated samples."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import numpy as np
import torch

from ..schema import FeatureSchema

__all__ = ["TabularData", "TASK_TYPES", "same_device", "integer_ids"]

TASK_TYPES = ("binary", "regression")


def _as_tensor(x, dtype: torch.dtype | None, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x if dtype is None else x.to(dtype)
    try:
        return torch.as_tensor(np.asarray(x), dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: cannot convert to a {dtype} tensor ({err})") from None


def integer_ids(x, field_names: Sequence[str]) -> torch.Tensor:
    """``x`` as an ``int64`` tensor of ids, refusing values that are not whole numbers.

    A cast alone would turn id 3.5 into 3 and NaN into a huge negative number without a word;
    here a fractional or non-finite value raises a ``ValueError`` naming its field, row and value.
    """
    t = x if isinstance(x, torch.Tensor) else _as_tensor(x, None, "sparse")
    if t.is_floating_point() and t.numel():
        bad = ~torch.isfinite(t) | (t != torch.round(t))
        if bool(bad.any()):
            where = bad.nonzero()[0].tolist()
            row, col = (where[0], where[1]) if t.dim() == 2 else (where[0], 0)
            raise ValueError(
                f"categorical field {field_names[col] if col < len(field_names) else col!r} has a non-integer id "
                f"{t[tuple(where)].item()} at row {row}; ids must be whole numbers"
            )
    return t.to(torch.int64)


def _row_index(index, n: int, device: torch.device) -> torch.Tensor | slice:
    """Rows to take: a slice as it is; a boolean mask of length ``n`` becomes the positions of its
    ``True`` entries; integer positions become an ``int64`` tensor. Anything else is refused."""
    if isinstance(index, slice):
        return index
    t = index if isinstance(index, torch.Tensor) else torch.as_tensor(np.asarray(index))
    if t.numel() == 0:
        return t.to(device=device, dtype=torch.long).reshape(0)
    if t.dtype == torch.bool:
        if t.dim() != 1 or t.shape[0] != n:
            raise ValueError(f"a boolean mask has {t.numel()} entries but the data has {n} rows; "
                             f"they must be equal (mask shape {tuple(t.shape)})")
        return t.to(device).nonzero().squeeze(1)
    if t.is_floating_point() or t.is_complex():
        raise TypeError(f"row indices must be integers or a boolean mask, got dtype {t.dtype}")
    return t.to(device=device, dtype=torch.long)


def _versions(*tensors: torch.Tensor | None) -> tuple[int, ...]:
    """Each tensor's in-place write counter (``Tensor._version``; -1 for ``None``)."""
    return tuple(-1 if t is None else t._version for t in tensors)


def same_device(a: torch.device | str, b: torch.device | str) -> bool:
    """Whether two device specs name the same device (``"cuda"`` is the current CUDA device,
    ``"cpu:0"`` the CPU)."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.type == "cpu":
        return True
    current = torch.cuda.current_device() if a.type == "cuda" and torch.cuda.is_available() else 0
    return (current if a.index is None else a.index) == (current if b.index is None else b.index)


@dataclass(frozen=True)
class TabularData:
    """Features, labels and (for synthetic data) the true probabilities of one split.

    Frozen: its fields cannot be reassigned, and an in-place write into one of its tensors is
    noticed (torch counts them), so :meth:`check` validates again before a trusting consumer
    such as :func:`rankcourse.training.fit` reads the data.

    Attributes:
        schema: the fields of ``dense`` and ``sparse``.
        dense: ``float32 (n, n_dense)``.
        sparse: ``int64 (n, n_fields)``, local ids per field.
        labels: ``float32 (n, n_tasks)``; 0/1 for binary tasks, real values for regression tasks.
        true_prob: ``float32 (n, n_tasks)`` or ``None``: the click probability that generated each
            binary label (for regression tasks: the noise-free target), known for synthetic data.
        task_names: one name per label column.
        task_types: ``"binary"`` or ``"regression"`` per task.
    """

    schema: FeatureSchema
    dense: torch.Tensor
    sparse: torch.Tensor
    labels: torch.Tensor
    true_prob: torch.Tensor | None = None
    task_names: tuple[str, ...] = ("click",)
    task_types: tuple[str, ...] = ("binary",)

    def __post_init__(self) -> None:
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("dense", _as_tensor(self.dense, torch.float32, "dense"))
        set_("sparse", integer_ids(self.sparse, [f.name for f in self.schema.sparse]))
        labels = _as_tensor(self.labels, torch.float32, "labels")
        set_("labels", labels[:, None] if labels.dim() == 1 else labels)
        if self.true_prob is not None:
            true_prob = _as_tensor(self.true_prob, torch.float32, "true_prob")
            set_("true_prob", true_prob[:, None] if true_prob.dim() == 1 else true_prob)
        set_("task_names", tuple(self.task_names))
        set_("task_types", tuple(self.task_types))
        self.validate()

    def _tensors(self) -> tuple[torch.Tensor | None, ...]:
        return self.dense, self.sparse, self.labels, self.true_prob

    def check(self) -> None:
        """Validate again only if a tensor was written in place since the last validation."""
        if getattr(self, "_validated_versions", None) != _versions(*self._tensors()):
            self.validate()

    # ---------------------------------------------------------------- checks
    def validate(self) -> None:
        """Raise a ``ValueError`` naming the field, shape or value that is wrong."""
        n = self.dense.shape[0] if self.dense.dim() == 2 else -1
        if n == 0:
            raise ValueError("the data is empty: 0 rows")
        self.schema.validate(self.dense, self.sparse)
        if self.labels.dim() != 2 or self.labels.shape[0] != n:
            raise ValueError(
                f"labels must have shape ({n}, n_tasks) to match the features, got {tuple(self.labels.shape)}"
            )
        n_tasks = self.labels.shape[1]
        if len(self.task_names) != n_tasks or len(self.task_types) != n_tasks:
            raise ValueError(
                f"labels have {n_tasks} task column(s) but task_names={self.task_names} and "
                f"task_types={self.task_types}"
            )
        for name, kind, col in zip(self.task_names, self.task_types, self.labels.T):
            if kind not in TASK_TYPES:
                raise ValueError(f"task {name!r}: task type must be one of {TASK_TYPES}, got {kind!r}")
            if not bool(torch.isfinite(col).all()):
                raise ValueError(f"task {name!r}: labels contain NaN or inf")
            if kind == "binary":
                bad = (col != 0) & (col != 1)
                if bool(bad.any()):
                    i = int(bad.nonzero()[0])
                    raise ValueError(f"task {name!r}: binary labels must be 0 or 1, got {col[i].item()} at row {i}")
        if self.true_prob is not None and tuple(self.true_prob.shape) != tuple(self.labels.shape):
            raise ValueError(
                f"true_prob must have the labels' shape {tuple(self.labels.shape)}, got {tuple(self.true_prob.shape)}"
            )
        object.__setattr__(self, "_validated_versions", _versions(*self._tensors()))

    # ------------------------------------------------------------ properties
    def __len__(self) -> int:
        return self.dense.shape[0]

    @property
    def n_tasks(self) -> int:
        return self.labels.shape[1]

    @property
    def device(self) -> torch.device:
        return self.dense.device

    @property
    def positive_rate(self) -> torch.Tensor:
        """Mean label per task, ``(n_tasks,)``."""
        return self.labels.mean(0)

    # ------------------------------------------------------------ operations
    def to(self, device: torch.device | str) -> "TabularData":
        """A copy on ``device`` (the same object if it is already there).

        The copy is not validated again: it holds the same values. Host-to-GPU copies are
        asynchronous (the GPU orders them before any use); copies to the host are synchronous, so
        the values are there when the host reads them.
        """
        self.check()
        device = torch.device(device)
        if same_device(self.dense.device, device):
            return self
        non_blocking = device.type == "cuda"
        move = lambda t: None if t is None else t.to(device, non_blocking=non_blocking)  # noqa: E731
        copy = object.__new__(TabularData)
        for name, value in (("dense", move(self.dense)), ("sparse", move(self.sparse)),
                            ("labels", move(self.labels)), ("true_prob", move(self.true_prob)),
                            ("schema", self.schema), ("task_names", self.task_names),
                            ("task_types", self.task_types)):
            object.__setattr__(copy, name, value)
        object.__setattr__(copy, "_validated_versions", _versions(*copy._tensors()))
        return copy

    def subset(self, index: torch.Tensor | slice | Sequence[int]) -> "TabularData":
        """Rows ``index`` as a new ``TabularData``.

        ``index`` is a slice, integer row positions, or a boolean mask with one entry per row
        (the rows where it is ``True``). Float indices and a mask of another length are refused.
        """
        index = _row_index(index, len(self), self.dense.device)
        take = lambda t: None if t is None else t[index]  # noqa: E731
        return replace(self, dense=take(self.dense), sparse=take(self.sparse),
                       labels=take(self.labels), true_prob=take(self.true_prob))

    def task(self, name: str) -> "TabularData":
        """The single-task view of task ``name``."""
        if name not in self.task_names:
            raise KeyError(f"unknown task {name!r}; this data has tasks {list(self.task_names)}")
        k = self.task_names.index(name)
        return replace(self, labels=self.labels[:, k:k + 1],
                       true_prob=None if self.true_prob is None else self.true_prob[:, k:k + 1],
                       task_names=(name,), task_types=(self.task_types[k],))

    def split(self, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> tuple["TabularData", ...]:
        """Seeded random split into len(fractions) parts (e.g. train, valid, test)."""
        if any(f <= 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
            raise ValueError(f"fractions must be positive and sum to 1, got {tuple(fractions)}")
        n = len(self)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        bounds = np.round(np.cumsum([0.0, *fractions]) * n).astype(int)
        parts = tuple(self.subset(perm[a:b]) for a, b in zip(bounds[:-1], bounds[1:]))
        for i, p in enumerate(parts):
            if len(p) == 0:
                raise ValueError(f"split part {i} is empty: {n} rows are too few for fractions {tuple(fractions)}")
        return parts

    @classmethod
    def from_columns(
        cls,
        columns: Mapping[str, Sequence] ,
        schema: FeatureSchema,
        label_columns: Sequence[str] = ("click",),
        task_types: Sequence[str] | None = None,
    ) -> "TabularData":
        """Build from named columns (a dict or a pandas DataFrame).

        Raises a ``KeyError`` naming any schema field or label column that is missing.
        Extra columns are ignored only if they are not feature-like: an unknown column is an error
        so that a misspelt field name is not silently dropped.
        """
        keys = list(columns.keys())
        wanted = list(schema.dense) + [f.name for f in schema.sparse] + list(label_columns)
        missing = [k for k in wanted if k not in keys]
        if missing:
            raise KeyError(f"missing column(s) {missing}; got columns {keys}")
        unknown = [k for k in keys if k not in wanted]
        if unknown:
            raise KeyError(f"unknown column(s) {unknown}: not in the schema nor among label columns {list(label_columns)}")
        n = len(columns[wanted[0]])
        lengths = {k: len(columns[k]) for k in wanted}
        if any(v != n for v in lengths.values()):
            raise ValueError(f"columns have mismatched lengths: {lengths}")
        dense = np.stack([np.asarray(columns[k], dtype=np.float32) for k in schema.dense], 1) if schema.n_dense else np.zeros((n, 0), np.float32)
        sparse = (torch.stack([integer_ids(np.asarray(columns[f.name]), [f.name])
                               for f in schema.sparse], 1)
                  if schema.n_fields else np.zeros((n, 0), np.int64))
        labels = np.stack([np.asarray(columns[k], dtype=np.float32) for k in label_columns], 1)
        types = tuple(task_types) if task_types is not None else ("binary",) * len(label_columns)
        return cls(schema, dense, sparse, labels, None, tuple(label_columns), types)
