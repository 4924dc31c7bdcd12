"""DeepFM with TorchRec-sharded tables (optional extra ``rankcourse[torchrec]``; skipped without it)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

try:  # an fbgemm-gpu built for another torch fails with OSError ("undefined symbol"), not ImportError
    import torchrec  # noqa: F401
except (ImportError, OSError) as exc:
    pytest.skip(f"TorchRec is not usable here (optional extra rankcourse[torchrec]): {exc}",
                allow_module_level=True)

from rankcourse import distributed as D  # noqa: E402
from rankcourse.data import make_ctr_data  # noqa: E402
from rankcourse.models import DeepFM  # noqa: E402
from rankcourse.sharded_tables import TorchRecDeepFM, train_sharded_deepfm  # noqa: E402
from rankcourse.training import fit  # noqa: E402

BATCH, LR = 64, 0.05


def _data():
    ds = make_ctr_data(1400, vocab_sizes=[30, 40, 50, 60], n_dense=3, seed=5)
    return ds.train, ds.valid


def _deepfm(schema) -> DeepFM:
    torch.manual_seed(0)
    model = DeepFM(schema, embed_dim=8, hidden=(16,))
    # Larger than the default 0.01, so that the tables' updates move the logits visibly.
    torch.nn.init.normal_(model.embedding.weight, std=0.3)
    return model


def _sharded_worker(out_dir: str) -> None:
    train, valid = _data()
    model = TorchRecDeepFM(_deepfm(train.schema))
    dmp = train_sharded_deepfm(model, train.dense, train.sparse, train.labels[:, 0], batch_size=BATCH,
                               lr=LR, row_wise=("C1", "C3"))
    dmp.eval()
    with torch.no_grad():  # every rank scores the same validation rows (DMP lookups are collective)
        logits = dmp(valid.dense, valid.sparse)
    torch.save(logits, Path(out_dir) / f"logits_rank{D.rank()}.pt")


def test_torchrec_deepfm_copies_the_course_deepfm_logits():
    train, _ = _data()
    deepfm = _deepfm(train.schema)
    twin = TorchRecDeepFM(deepfm)
    with torch.no_grad():
        torch.testing.assert_close(twin(train.dense, train.sparse), deepfm(train.dense, train.sparse))


@pytest.mark.slow
def test_sharded_tables_over_two_ranks_train_like_one_unsharded_process(tmp_path):
    D.launch(_sharded_worker, world=2, args=(str(tmp_path),), timeout_s=180)
    train, valid = _data()
    reference = _deepfm(train.schema)
    fit(reference, train, epochs=1, batch_size=2 * BATCH, optimizer=lambda m: torch.optim.SGD(m.parameters(), lr=LR),
        progress=False, device="cpu", seed=0)
    with torch.no_grad():
        want = reference(valid.dense, valid.sparse)
    for r in range(2):
        got = torch.load(tmp_path / f"logits_rank{r}.pt")
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
