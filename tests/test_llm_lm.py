"""effdl.precompute.lm (chapter 18): the loss it reports, and the shipped language models against their record."""
import math

import pytest
import torch
import torch.nn.functional as F

from effdl.precompute import load_record
from effdl.precompute import lm as lm_stage
from effdl.transformer import LM_SPEC, TinyGPT, TransformerSpec, count_params

SPEC = TransformerSpec("t", n_layer=1, d_model=16, n_head=2, n_kv_head=2, d_ff=32, vocab=128, context=8)


def test_loss_per_byte_is_the_mean_cross_entropy_over_windows():
    torch.manual_seed(0)
    model = TinyGPT(SPEC).eval()
    ids = torch.randint(0, 128, (8 * 5 + 3,))
    windows = torch.stack([ids[i * 8:i * 8 + 9] for i in range(5)])          # 5 full windows of 8 + 1
    with torch.no_grad():
        logits, _ = model(windows[:, :-1])
        want = F.cross_entropy(logits.reshape(-1, 128), windows[:, 1:].reshape(-1)).item()
    assert lm_stage.loss_per_byte(model, ids, batch_size=2) == pytest.approx(want, rel=1e-6)
    assert lm_stage.loss_per_byte(model, ids, max_windows=1) != pytest.approx(want, rel=1e-6)


def test_shipped_models_match_their_record():
    record = load_record("lm")
    for name in ("lm", "lm_draft"):
        model = lm_stage.load_lm(name)
        r = record["models"][name]
        assert count_params(model) == r["params"] == model.spec.params()
        assert r["test_bits_per_byte"] == pytest.approx(r["test_loss"] / math.log(2), abs=1e-3)
        assert r["curve"][-1]["step"] == r["steps"]
    assert lm_stage.load_lm("lm").spec == LM_SPEC
    assert record["models"]["lm_draft"]["params"] * 5 < record["models"]["lm"]["params"]
    assert record["lr"] in [g["lr"] for g in record["lr_grid"]]
    assert record["lr"] == min(record["lr_grid"], key=lambda g: g["val_loss"])["lr"]
