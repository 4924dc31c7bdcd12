"""Export a scoring engine with a dynamic number of candidates: ``torch.export`` and ONNX for onnxruntime.

Both exports trace an engine of :mod:`.engines` (its four inputs: the user part ``(1, ·)`` and the
candidates ``(N, ·)``) with ``N`` marked dynamic, so one file serves any request size. ONNX uses
torch's dynamo exporter (``torch.onnx.export(..., dynamo=True)``, which needs ``onnxscript``), and
:class:`OnnxEngine` runs the file in onnxruntime on the CPU with the engines' signature. onnxruntime
and onnxscript are the optional extra ``rankcourse[serving]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["INPUT_NAMES", "export_program", "export_onnx", "OnnxEngine", "onnx_available"]

INPUT_NAMES = ("user_dense", "user_sparse", "item_dense", "item_sparse")


def onnx_available() -> bool:
    """True when onnxruntime and onnxscript import (the ``serving`` extra is installed)."""
    try:
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        return False
    return True


def _dynamic_shapes(max_candidates: int) -> dict[str, Any]:
    n = torch.export.Dim("n_candidates", min=1, max=max_candidates)
    return {"user_dense": None, "user_sparse": None, "item_dense": {0: n}, "item_sparse": {0: n}}


def _example(inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """At least two candidates: a traced size of 1 would be taken for a constant."""
    ud, us, idn, isp = inputs
    if isp.shape[0] >= 2:
        return inputs
    return ud, us, idn.repeat(2, 1) if idn.shape[0] else idn.new_zeros((2, idn.shape[1])), isp.repeat(2, 1)


class _Named(nn.Module):
    """The engine with named inputs (the exporters match dynamic shapes by name)."""

    def __init__(self, engine: nn.Module) -> None:
        super().__init__()
        self.engine = engine

    def forward(self, user_dense: Tensor, user_sparse: Tensor, item_dense: Tensor, item_sparse: Tensor) -> Tensor:
        return self.engine(user_dense, user_sparse, item_dense, item_sparse)


def export_program(engine: nn.Module, inputs: tuple[Tensor, ...], max_candidates: int = 4096
                   ) -> torch.export.ExportedProgram:
    """``torch.export`` of ``engine`` (in eval mode) with the number of candidates dynamic in ``[1, max]``."""
    engine.eval()
    return torch.export.export(_Named(engine).eval(), _example(inputs), dynamic_shapes=_dynamic_shapes(max_candidates))


def export_onnx(engine: nn.Module, inputs: tuple[Tensor, ...], path: str | os.PathLike,
                max_candidates: int = 4096) -> Path:
    """Write ``engine`` as an ONNX file (dynamo exporter, dynamic number of candidates); returns the path."""
    if not onnx_available():
        raise ImportError("ONNX export needs onnxruntime and onnxscript: pip install 'rankcourse[serving]'")
    engine.eval()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    program = torch.onnx.export(_Named(engine).eval(), _example(inputs), dynamo=True, input_names=list(INPUT_NAMES),
                                output_names=["logits"], dynamic_shapes=_dynamic_shapes(max_candidates),
                                verbose=False)
    program.save(str(path))
    return path


class OnnxEngine:
    """An ONNX file run by onnxruntime on the CPU, called like an engine: four tensors -> logits ``(N,)``.

    Args:
        path: the file from :func:`export_onnx`.
        threads: onnxruntime's intra-op threads (1 or 2 on a small CPU).
    """

    def __init__(self, path: str | os.PathLike, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.path, self.threads = Path(path), threads

    def __call__(self, user_dense: Tensor, user_sparse: Tensor, item_dense: Tensor, item_sparse: Tensor) -> Tensor:
        arrays = [t.detach().cpu().numpy() for t in (user_dense, user_sparse, item_dense, item_sparse)]
        # The exporter drops inputs the graph never reads (an empty user_dense), so feed by name.
        feed = {name: np.ascontiguousarray(arrays[INPUT_NAMES.index(name)]) for name in self.input_names}
        return torch.from_numpy(self.session.run(None, feed)[0])
