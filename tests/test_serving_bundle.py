"""Saving and loading a model with its vocabularies: round trips, refusals, the atomic write."""

from __future__ import annotations

import pytest
import torch

import rankcourse
from rankcourse import models
from rankcourse.serving import (BundleFormatError, BundleSchemaError, BundleVersionError, ModelBundle,
                                load_bundle, save_bundle)
from rankcourse.serving.bundle import MODEL_CLASSES
from serving_fixtures import USER_FIELDS, randomise, shop_encoder, small_census

# Constructor arguments after the schema, small enough to build fast.
TABULAR_ARGS = {
    "LogisticRegression": {},
    "FactorizationMachine": {"embed_dim": 4},
    "WideDeep": {"embed_dim": 4, "hidden": (8,)},
    "DeepTower": {"embed_dim": 4, "hidden": (8,)},
    "DeepFM": {"embed_dim": 4, "hidden": (8, 4)},
    "DCN": {"embed_dim": 4, "n_cross": 2, "hidden": (8,)},
    "DCNv2": {"embed_dim": 4, "n_cross": 2, "hidden": (8,)},
    "XDeepFM": {"embed_dim": 4, "cin_layers": (4,), "hidden": (8,)},
    "SharedBottom": {"n_tasks": 2, "bottom": (8,), "tower": (4,), "embed_dim": 4},
    "OMoE": {"n_tasks": 2, "n_experts": 2, "expert": (4,), "tower": (4,), "embed_dim": 4},
    "MMoE": {"n_tasks": 2, "n_experts": 2, "expert": (4,), "tower": (4,), "embed_dim": 4},
}
SEQUENCE_ARGS = {"BehaviourRanker": {"pooling": "mean", "embed_dim": 4, "hidden": (8,)},
                 "DIN": {"embed_dim": 4, "hidden": (8,)}, "BST": {"embed_dim": 4, "hidden": (8,)}}


@pytest.fixture(scope="module")
def census(tmp_path_factory):
    return small_census(tmp_path_factory.mktemp("census"))


def test_every_model_class_of_the_course_has_arguments_here():
    assert set(MODEL_CLASSES) == set(TABULAR_ARGS) | set(SEQUENCE_ARGS)


@pytest.mark.parametrize("name", sorted(TABULAR_ARGS))
def test_round_trip_on_census_restores_outputs_encoder_and_fields(name, census, tmp_path):
    splits, encoder = census
    model = randomise(MODEL_CLASSES[name](encoder.schema, **TABULAR_ARGS[name]))
    bundle = ModelBundle(model, TABULAR_ARGS[name], encoder, user_fields=("age", "education"),
                         negative_rate=0.25, notes={"data": "census"})
    path = save_bundle(bundle, tmp_path / "m.pt")
    back = load_bundle(path, expected_schema=splits.schema)
    batch = splits.test.dense[:16], splits.test.sparse[:16]
    with torch.no_grad():
        assert torch.equal(model(*batch), back.model(*batch))
    assert type(back.model) is type(model) and not back.model.training
    assert back.encoder == encoder and back.user_fields == ("age", "education")
    assert back.negative_rate == 0.25 and back.notes == {"data": "census"}


@pytest.mark.parametrize("name", sorted(SEQUENCE_ARGS))
def test_round_trip_of_history_models_keeps_the_history_field(name, tmp_path):
    encoder = shop_encoder()
    model = randomise(MODEL_CLASSES[name](encoder.schema, **SEQUENCE_ARGS[name]))
    path = save_bundle(ModelBundle(model, SEQUENCE_ARGS[name], encoder, USER_FIELDS), tmp_path / "m.pt")
    back = load_bundle(path)
    dense = torch.randn(5, 2)
    sparse = torch.stack([torch.randint(0, f.vocab_size - 1, (5,)) for f in encoder.schema.sparse], 1)
    with torch.no_grad():
        assert torch.equal(model(dense, sparse), back.model(dense, sparse))
    assert back.encoder.sequences == {"hist_item": ("item", 6)}


def test_census_encoder_reproduces_the_loaded_training_rows(census):
    splits, encoder = census
    assert encoder.schema == splits.schema
    assert set(encoder.dense) == set(splits.schema.dense)
    assert encoder.dense["capital_gains"].transform == "log1p" and encoder.dense["age"].transform == "identity"


def test_load_refuses_a_schema_that_does_not_match(census, tmp_path):
    splits, encoder = census
    model = models.LogisticRegression(encoder.schema)
    path = save_bundle(ModelBundle(model, {}, encoder), tmp_path / "m.pt")
    other = splits.schema.subset(dense_names=list(splits.schema.dense)[:-1])
    with pytest.raises(BundleSchemaError, match="dense fields"):
        load_bundle(path, expected_schema=other)


def test_load_refuses_weights_that_do_not_fit_the_stored_arguments(tmp_path):
    encoder = shop_encoder()
    model = models.DeepFM(encoder.schema, embed_dim=4, hidden=(8,))
    path = save_bundle(ModelBundle(model, {"embed_dim": 4, "hidden": (8,)}, encoder), tmp_path / "m.pt")
    blob = torch.load(path, weights_only=True)
    blob["model_args"]["embed_dim"] = 6
    torch.save(blob, path)
    with pytest.raises(BundleSchemaError, match="shape mismatches"):
        load_bundle(path)


def test_save_refuses_constructor_arguments_that_do_not_rebuild_the_model(tmp_path):
    encoder = shop_encoder()
    model = models.DeepFM(encoder.schema, embed_dim=4, hidden=(8,))
    with pytest.raises(BundleSchemaError, match="weights do not fit"):
        save_bundle(ModelBundle(model, {"embed_dim": 8, "hidden": (8,)}, encoder), tmp_path / "m.pt")
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("saved, message", [("0.9.0", "incompatible"), ("9.1.0", "incompatible")])
def test_load_refuses_a_file_from_an_incompatible_course_version(saved, message, tmp_path, monkeypatch):
    encoder = shop_encoder()
    model = models.LogisticRegression(encoder.schema)
    monkeypatch.setattr(rankcourse, "__version__", saved)
    path = save_bundle(ModelBundle(model, {}, encoder), tmp_path / "m.pt")
    monkeypatch.undo()
    with pytest.raises(BundleVersionError, match=message):
        load_bundle(path)


def test_load_refuses_another_file_format(tmp_path):
    encoder = shop_encoder()
    path = save_bundle(ModelBundle(models.LogisticRegression(encoder.schema), {}, encoder), tmp_path / "m.pt")
    blob = torch.load(path, weights_only=True)
    blob["format_version"] = 99
    torch.save(blob, path)
    with pytest.raises(BundleVersionError, match="format 99"):
        load_bundle(path)


@pytest.mark.parametrize("content", [b"", b"not a bundle at all", None])
def test_load_refuses_damaged_or_foreign_files(content, tmp_path):
    path = tmp_path / "m.pt"
    if content is None:  # a real bundle cut in half
        encoder = shop_encoder()
        save_bundle(ModelBundle(models.LogisticRegression(encoder.schema), {}, encoder), path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(content)
    with pytest.raises(BundleFormatError, match="m.pt"):
        load_bundle(path)


def test_a_crash_while_writing_leaves_the_old_file_intact(tmp_path, monkeypatch):
    encoder = shop_encoder()
    model = models.LogisticRegression(encoder.schema)
    path = save_bundle(ModelBundle(model, {}, encoder, notes={"v": 1}), tmp_path / "m.pt")
    before = path.read_bytes()

    def crash(obj, handle):
        handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        save_bundle(ModelBundle(model, {}, encoder, notes={"v": 2}), path)
    monkeypatch.undo()
    assert path.read_bytes() == before and load_bundle(path).notes == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind


def test_bundle_rejects_unknown_user_fields_and_bad_negative_rates():
    encoder = shop_encoder()
    model = models.LogisticRegression(encoder.schema)
    with pytest.raises(ValueError, match="'userid'"):
        ModelBundle(model, {}, encoder, user_fields=("userid",))
    with pytest.raises(ValueError, match="negative_rate"):
        ModelBundle(model, {}, encoder, negative_rate=0.0)
