"""effdl.precompute.quantization: reading the sweep record and rebuilding its models (no long training)."""
import doctest

import pytest
import torch

import effdl.precompute.quantization as pq
from effdl import precompute
from effdl import quantization as Q
from effdl import zoo
from effdl.data import load_mnist
from effdl.train import fit


@pytest.fixture(scope="module")
def splits():
    return tuple(load_mnist(s, source="embedded") for s in ("train", "val", "test"))


def _record(ft_epoch=1):
    rows = [{"bits": 4, "mode": "wa", "percentile": 99.99, "w_clip": "mse", "val_acc": 90.0, "test_acc": 89.0,
             "ft_lr": 0.003, "ft_epoch": ft_epoch, "ft_val_acc": 93.0, "ft_test_acc": 92.0},
            {"bits": 2, "mode": "a", "percentile": None, "w_clip": None, "val_acc": 60.0, "test_acc": 58.0,
             "ft_lr": 0.001, "ft_epoch": 0, "ft_val_acc": 60.0, "ft_test_acc": 58.0},
            {"bits": 16, "mode": "wa", "percentile": None, "w_clip": "minmax", "val_acc": 94.8, "test_acc": 94.1}]
    return {"seed": 0, "settings": dict(pq.SETTINGS), "models": {"lenet300": {"rows": rows}}}


def test_docstring_examples():
    assert doctest.testmod(pq).failed == 0


def test_registered_as_a_precompute_stage():
    assert precompute.STAGES["quantization"] == "effdl.precompute.quantization"


def test_curves_sort_by_bits_and_keep_fine_tuned_points_apart():
    sweep = _record()["models"]["lenet300"]
    c = pq.curves(sweep)
    assert c["wa"] == {"bits": [4, 16], "ptq": [89.0, 94.1], "ft_bits": [4], "ft": [92.0]}
    assert c["a"] == {"bits": [2], "ptq": [58.0], "ft_bits": [2], "ft": [58.0]}
    assert pq.curves(sweep, split="val")["wa"]["ft"] == [93.0]
    with pytest.raises(ValueError, match="split must be one of"):
        pq.curves(sweep, split="train")
    with pytest.raises(TypeError, match="sweep must be"):
        pq.curves([])


def test_find_row():
    sweep = _record()["models"]["lenet300"]
    assert pq.find_row(sweep, 2, "a")["ft_lr"] == 0.001
    with pytest.raises(ValueError, match="bits and mode must name a row"):
        pq.find_row(sweep, 3, "a")


def test_rebuild_repeats_the_recorded_quantization_and_fine_tuning(splits):
    train, _, test = splits
    record = _record(ft_epoch=1)
    x = test.x[:64]
    ptq = pq.rebuild("lenet300", 4, "wa", record=record, finetuned=False, splits=splits)
    calib = train.x[:4 * 256]
    ref = Q.quantize_model(zoo.load("lenet300"), 4, 4, calib, percentile=99.99, w_clip="mse", n_batches=None)
    with torch.no_grad():
        assert torch.equal(ptq(x), ref(x))
    tuned = pq.rebuild("lenet300", 4, "wa", record=record, splits=splits)
    fit(ref, train, epochs=1, lr=0.003, batch_size=64, seed=0, keep_best=False, show_progress=False)  # QAT, 1 epoch
    ref.eval()
    with torch.no_grad():
        assert torch.equal(tuned(x), ref(x))
        assert not torch.equal(tuned(x), ptq(x))
    # epoch 0 means "not fine-tuned": the PTQ model
    a_only = pq.rebuild("lenet300", 2, "a", record=record, splits=splits)
    assert a_only.config.mode == "a" and a_only.config.n_bits_weight is None


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(arch="resnet", n_bits=4, mode="wa"), ValueError, "arch must be one of"),
    (dict(arch="lenet300", n_bits=4, mode="both"), ValueError, "mode must be one of"),
    (dict(arch="lenet300", n_bits=5, mode="wa"), ValueError, "n_bits and mode must name a row"),
])
def test_rebuild_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pq.rebuild(**kwargs, record=_record())
