"""Save a trained model with everything needed to score raw requests, and load it back safely.

A bundle file holds the model's class name and constructor arguments, its weights, the schema, the
:class:`~rankcourse.serving.features.FeatureEncoder` (vocabularies and dense statistics), which raw
fields a request gives once for the user (the rest come with each candidate), the negative
sampling rate to undo at serving time, and the versions it was written with. :func:`load_bundle`
reads it with ``torch.load(weights_only=True)`` (no code in the file is run) and refuses, with a
named error, a file of another format or course version, or one whose schema, encoder and weights
disagree. :func:`save_bundle` writes a temporary file beside the target and renames it, so a crash
half-way never replaces a good file.
"""

from __future__ import annotations

import inspect
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .. import models as _models
from ..schema import FeatureSchema, SequenceField, SparseField
from .features import FeatureEncoder

__all__ = ["ModelBundle", "save_bundle", "load_bundle", "BundleError", "BundleVersionError",
           "BundleSchemaError", "BundleFormatError", "FORMAT_VERSION", "MODEL_CLASSES", "schema_to_dict",
           "schema_from_dict"]

#: Bumped whenever the layout of the file changes; a file of another format is refused.
FORMAT_VERSION = 1

#: The classes a bundle can rebuild, by name (every model of :mod:`rankcourse.models`).
MODEL_CLASSES: dict[str, type[nn.Module]] = {
    name: getattr(_models, name) for name in _models.__all__
    if inspect.isclass(getattr(_models, name)) and name != "CTRModel"
}


class BundleError(ValueError):
    """A bundle file cannot be used; subclasses say why."""


class BundleFormatError(BundleError):
    """The file is not a bundle, or is damaged or truncated."""


class BundleVersionError(BundleError):
    """The file was written by an incompatible format or course version."""


class BundleSchemaError(BundleError):
    """The file's schema does not match the expected one, its encoder, or its weights."""


def _course_version() -> str:
    from .. import __version__  # read at call time: the version may change after import
    return __version__


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


# --------------------------------------------------------------------------- schema as plain data
def schema_to_dict(schema: FeatureSchema) -> dict[str, Any]:
    seq_columns = {c for s in schema.sequences for c in s.column_names}
    return {"dense": list(schema.dense),
            "sparse": [[f.name, f.vocab_size] for f in schema.sparse if f.name not in seq_columns],
            "sequences": [[s.name, s.vocab_size, s.max_len, s.target] for s in schema.sequences]}


def schema_from_dict(blob: Mapping[str, Any]) -> FeatureSchema:
    return FeatureSchema(dense=tuple(blob["dense"]), sparse=tuple(SparseField(n, int(v)) for n, v in blob["sparse"]),
                         sequences=tuple(SequenceField(n, int(v), int(m), t) for n, v, m, t in blob["sequences"]))


# --------------------------------------------------------------------------- the bundle
@dataclass
class ModelBundle:
    """A trained model and what serving it needs.

    Args:
        model: a model of :mod:`rankcourse.models` built on ``encoder.schema``.
        model_args: the constructor arguments after the schema (e.g. ``{"embed_dim": 8}``); checked
            to rebuild a model with the same parameter names and shapes.
        encoder: vocabularies and dense statistics of the training split.
        user_fields: raw fields a request gives once (user and context, histories); the others are
            given per candidate.
        negative_rate: the fraction of negatives kept when the training rows were down-sampled
            (1.0: none dropped); served probabilities undo it.
        task: which output of a multi-task model is served.
        notes: free text (data set, date, metrics).
    """

    model: nn.Module
    model_args: dict[str, Any]
    encoder: FeatureEncoder
    user_fields: tuple[str, ...] = ()
    negative_rate: float = 1.0
    task: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.user_fields = tuple(self.user_fields)
        names = self.encoder.field_names()
        unknown = [f for f in self.user_fields if f not in names]
        if unknown:
            raise ValueError(f"user_fields {unknown} are not fields of the encoder; it has {names}")
        if not 0.0 < float(self.negative_rate) <= 1.0:
            raise ValueError(f"negative_rate must lie in (0, 1], got {self.negative_rate!r}")
        if type(self.model).__name__ not in MODEL_CLASSES:
            raise TypeError(f"cannot bundle a {type(self.model).__name__}; known classes: {sorted(MODEL_CLASSES)}")
        if model_schema(self.model) != self.encoder.schema:
            raise BundleSchemaError("the model's schema differs from the encoder's: build the model on encoder.schema")

    @property
    def item_fields(self) -> tuple[str, ...]:
        return tuple(f for f in self.encoder.field_names() if f not in self.user_fields)

    def rebuild_model(self) -> nn.Module:
        """A fresh model of the same class and arguments (untrained weights)."""
        return _build(type(self.model).__name__, self.encoder.schema, self.model_args)


def model_schema(model: nn.Module) -> FeatureSchema | None:
    """The schema a model was built on (``DeepTower`` keeps it in its embedding)."""
    schema = getattr(model, "schema", None)
    if schema is None and hasattr(model, "embedding"):
        schema = getattr(model.embedding, "schema", None)
    return schema


def _build(class_name: str, schema: FeatureSchema, model_args: Mapping[str, Any]) -> nn.Module:
    try:
        cls = MODEL_CLASSES[class_name]
    except KeyError:
        raise BundleFormatError(f"unknown model class {class_name!r}; known: {sorted(MODEL_CLASSES)}") from None
    try:
        return cls(schema, **dict(model_args))
    except (TypeError, ValueError) as err:
        raise BundleSchemaError(f"{class_name}(schema, **{dict(model_args)}) failed: {err}") from err


def _check_state_matches(model: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.items()}
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    wrong = [(k, got[k], expected[k]) for k in expected if k in got and got[k] != expected[k]]
    if missing or extra or wrong:
        raise BundleSchemaError(f"{what}: weights do not fit the model (missing {missing[:3]}, unexpected "
                                f"{extra[:3]}, shape mismatches (name, file, model) {wrong[:3]})")


# --------------------------------------------------------------------------- save / load
def save_bundle(bundle: ModelBundle, path: str | os.PathLike) -> Path:
    """Write ``bundle`` to ``path`` atomically (temporary file + fsync + rename); returns the path."""
    name = type(bundle.model).__name__
    _check_state_matches(bundle.rebuild_model(), bundle.model.state_dict(), f"model_args {bundle.model_args}")
    blob = {
        "format_version": FORMAT_VERSION,
        "course_version": _course_version(),
        "torch_version": str(torch.__version__),
        "model_class": name,
        "model_args": {k: list(v) if isinstance(v, tuple) else v for k, v in bundle.model_args.items()},
        "schema": schema_to_dict(bundle.encoder.schema),
        "encoder": bundle.encoder.to_dict(),
        "user_fields": list(bundle.user_fields),
        "negative_rate": float(bundle.negative_rate),
        "task": int(bundle.task),
        "notes": dict(bundle.notes),
        "state_dict": {k: v.detach().cpu().clone() for k, v in bundle.model.state_dict().items()},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(blob, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def load_bundle(path: str | os.PathLike, expected_schema: FeatureSchema | None = None) -> ModelBundle:
    """Read a bundle written by :func:`save_bundle`; the model comes back in eval mode on the CPU.

    Raises:
        BundleFormatError: not a bundle file, or truncated.
        BundleVersionError: another file format, or a course version with another major.minor.
        BundleSchemaError: the schema differs from ``expected_schema`` (when given), from the
            encoder's, or does not fit the weights.
    """
    blob = _read(Path(path))
    _check_versions(blob, path)
    schema = schema_from_dict(blob["schema"])
    encoder = FeatureEncoder.from_dict(blob["encoder"])
    if encoder.schema != schema:
        raise BundleSchemaError(f"{path}: the stored schema differs from the stored vocabularies' schema")
    if expected_schema is not None and schema != expected_schema:
        raise BundleSchemaError(f"{path}: schema mismatch: {_schema_difference(schema, expected_schema)}")
    model = _build(blob["model_class"], schema, blob["model_args"])
    _check_state_matches(model, blob["state_dict"], str(path))
    model.load_state_dict(blob["state_dict"])
    model.eval()
    return ModelBundle(model, dict(blob["model_args"]), encoder, tuple(blob["user_fields"]),
                       float(blob["negative_rate"]), int(blob["task"]), dict(blob["notes"]))


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such bundle file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a damaged or foreign file
        raise BundleFormatError(f"{path}: not a readable bundle file ({type(err).__name__}: {err})") from None
    required = ("format_version", "course_version", "model_class", "model_args", "schema", "encoder",
                "user_fields", "negative_rate", "task", "notes", "state_dict")
    if not isinstance(blob, dict) or any(k not in blob for k in required):
        missing = [k for k in required if not isinstance(blob, dict) or k not in blob]
        raise BundleFormatError(f"{path}: not a bundle file (missing entries {missing})")
    return blob


def _check_versions(blob: Mapping[str, Any], path: str | os.PathLike) -> None:
    if blob["format_version"] != FORMAT_VERSION:
        raise BundleVersionError(f"{path}: bundle format {blob['format_version']!r}, this code reads format "
                                 f"{FORMAT_VERSION}")
    saved, current = str(blob["course_version"]), _course_version()
    if _major_minor(saved) != _major_minor(current):
        raise BundleVersionError(f"{path}: written by rankcourse {saved}, incompatible with {current} "
                                 f"(major.minor must match); retrain or load it with rankcourse {saved}")


def _schema_difference(got: FeatureSchema, want: FeatureSchema) -> str:
    parts: list[str] = []
    if got.dense != want.dense:
        parts.append(f"dense fields {list(got.dense)} in the file, {list(want.dense)} expected")
    g, w = dict((f.name, f.vocab_size) for f in got.sparse), dict((f.name, f.vocab_size) for f in want.sparse)
    for name in sorted(set(g) | set(w)):
        if g.get(name) != w.get(name):
            parts.append(f"field {name!r} has vocab_size {g.get(name)} in the file, {w.get(name)} expected")
    if list(g) != list(w) and set(g) == set(w):
        parts.append("the categorical fields are in another order")
    return "; ".join(parts[:4]) or "the sequence fields differ"


def bundle_summary(bundle: ModelBundle) -> dict[str, Any]:
    """Short description for printing."""
    n_params = sum(p.numel() for p in bundle.model.parameters())
    return {"model": type(bundle.model).__name__, "parameters": n_params, **bundle.encoder.summary(),
            "user_fields": len(bundle.user_fields), "item_fields": len(bundle.item_fields)}
