"""Regression tests for bad input reported against the base modules (train, architectures, data).

Each test is a reported example: what used to escape as a wrong number, a
torch error or an AttributeError, and the clear error it gives now.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from effdl import data, train
from effdl.architectures import count_macs, get_architecture
from effdl.models import LeNet5
from test_models import TinyNet  # a linear classifier of the 8×8 digits


class NanGradient(TinyNet):
    """Finite loss, NaN gradient: d/dw sqrt(0·w) = 0 · ∞."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.fc(x.flatten(1)) + 0 * torch.sqrt(0 * self.w)


@pytest.fixture(scope="module")
def val():
    return data.load_digits("val")


def _with_nan_weight() -> TinyNet:
    torch.manual_seed(0)
    model = TinyNet()
    with torch.no_grad():
        model.fc.weight[3, 5] = float("nan")
    return model


# -------------------------------------------------- NaN images / non-finite models
def test_nan_images_are_refused_by_split(val):
    x = val.x.clone()
    x[7] = float("nan")
    with pytest.raises(ValueError, match="example 7 of 'val' is not"):
        data.Split("val", "digits", x, val.y)


@pytest.mark.parametrize("func", [train.evaluate, train.predict, train.mean_loss])
def test_a_model_with_non_finite_outputs_is_refused(val, func):
    # evaluate used to return 10.5 % here: argmax of NaN logits is label 0
    with pytest.raises(ValueError, match=rf"^{func.__name__}: model must give finite outputs \(no NaN or inf\); "
                                         r"got nan for example 0 of 'val' \(the weight fc\.weight holds nan at "
                                         r"index \(3, 5\)\)\.$"):
        func(_with_nan_weight(), val, device="cpu")


def test_fit_refuses_a_model_with_non_finite_weights(val):
    with pytest.raises(ValueError, match=r"^fit: model must have finite weights \(no NaN or inf\); got nan in "
                                         r"fc\.weight at index \(3, 5\)\.$"):
        train.fit(_with_nan_weight(), val, epochs=1, device="cpu")


def test_fit_names_a_non_finite_gradient(val):
    # the NaN gradient of batch 1 makes w NaN in the step, and batch 2's loss NaN
    with pytest.raises(FloatingPointError, match=r"^fit: the loss became nan at epoch 1, batch 2 — the gradient of w "
                                                 r"holds nan at index \(0,\) \(from the last optimizer step\); the "
                                                 r"weight w holds nan at index \(0,\)\. Hint: "):
        train.fit(NanGradient(), val, epochs=1, device="cpu")


def _poison(model):
    with torch.no_grad():
        model.fc.bias[2] = float("inf")


def test_fit_names_a_weight_that_becomes_non_finite(val):
    with pytest.raises(FloatingPointError, match=r"^fit: the loss became nan at epoch 1, batch 2 — the weight "
                                                 r"fc\.bias holds inf at index \(2,\)\. Hint: .*lr=0\.05"):
        train.fit(TinyNet(), val, epochs=1, after_step=_poison, device="cpu")


def test_fit_checks_the_weights_after_the_last_step_of_an_epoch(val):
    with pytest.raises(FloatingPointError, match=r"^fit: a weight became non-finite at epoch 1, batch 1 — the weight "
                                                 r"fc\.bias holds inf at index \(2,\)\."):
        train.fit(TinyNet(), val, epochs=1, batch_size=len(val), after_step=_poison, device="cpu")


def test_fit_names_the_loss_when_the_forward_pass_overflows(val):
    class Overflow(TinyNet):
        def forward(self, x):
            return self.fc(x.flatten(1)) * 1e38 * 1e38

    with pytest.raises(FloatingPointError, match=r"^fit: the loss became nan at epoch 1, batch 1 — the weights and "
                                                 r"gradients are all finite, so the forward pass made the outputs "
                                                 r"non-finite\. "
                                                 r"Hint: a learning rate too large"):
        train.fit(Overflow(), val, epochs=1, device="cpu")


def test_fit_with_a_huge_learning_rate_says_what_diverged(val):
    torch.manual_seed(0)
    # used to say only "training diverged … lower lr"; now it says what became non-finite, and where
    with pytest.raises(FloatingPointError, match=r"^fit: (the loss|a weight) became .* at epoch \d+, "
                                                 r"batch \d+ — .*\. Hint: a learning rate too large .*lr=1e\+38"):
        train.fit(TinyNet(), val, epochs=3, lr=1e38, momentum=0.0, device="cpu")


def test_fit_epochs_zero_divides_nothing(val):
    history = train.fit(TinyNet(), val, epochs=0, val=val, device="cpu")
    assert history.train_loss == [] and history.best_epoch == 0


# -------------------------------------------------- batch sizes
BAD_BATCH_SIZES = [(0, ValueError), (2.5, TypeError), ("3", TypeError), (None, TypeError), (True, TypeError)]


@pytest.mark.parametrize("func", [train.predict, train.evaluate, train.mean_loss, train.fit])
@pytest.mark.parametrize("batch_size, exc", BAD_BATCH_SIZES)
def test_bad_batch_size(val, func, batch_size, exc):
    with pytest.raises(exc, match=rf"^{func.__name__}: batch_size must be an integer in \[1, inf\]; got "):
        func(TinyNet(), val, batch_size=batch_size)


@pytest.mark.parametrize("batch_size, exc", BAD_BATCH_SIZES)
def test_bad_loader_batch_size(val, batch_size, exc):
    with pytest.raises(exc, match=r"^Split\.loader: batch_size must be an integer in \[1, inf\]"):
        val.loader(batch_size)


def test_bad_device(val):
    with pytest.raises(ValueError, match=r"^evaluate: device must be a torch\.device or a device name"):
        train.evaluate(TinyNet(), val, device="no-such-device")
    with pytest.raises(TypeError, match=r"^fit: device must be"):
        train.fit(TinyNet(), val, device=3)


# -------------------------------------------------- mean_std
def test_mean_std_refuses_nan_and_empty():
    with pytest.raises(ValueError, match=r"^mean_std: values\[0\] must be finite, a real number .*; got nan\.$"):
        train.mean_std([math.nan, 1.0])
    with pytest.raises(ValueError, match=r"^mean_std: values must be a list of .*\(non-empty\); got \[\]\.$"):
        train.mean_std([])
    with pytest.raises(TypeError, match=r"^mean_std: values\[1\] must be a real number"):
        train.mean_std([1.0, "2"])
    assert train.mean_std((94, 95.0, 96)) == {"mean": 95.0, "std": 1.0}


# -------------------------------------------------- architectures.count_macs
def test_count_macs_of_a_torch_module_points_to_the_module_accounting():
    with pytest.raises(TypeError, match=r"^count_macs: spec must be a layer spec .*effdl\.pruning\.count_macs.*; "
                                        r"got a LeNet5 torch\.nn\.Module\.$"):
        count_macs(LeNet5(), input_shape=(1, 3, 28, 28))


def test_count_macs_input_shape_is_per_image():
    lenet5 = get_architecture("lenet5")
    with pytest.raises(ValueError, match=r"^count_macs: input_shape must be .*without the batch axis; "
                                         r"got \(1, 3, 28, 28\)\.$"):
        count_macs(lenet5, input_shape=(1, 3, 28, 28))
    with pytest.raises(ValueError, match=r"^count_macs: input_shape must fit the spec \(Conv2d 'conv1' needs 1 "
                                         r"input channels"):
        count_macs(lenet5, input_shape=(3, 28, 28))
    assert count_macs(lenet5, input_shape=[1, 28, 28]) == count_macs(lenet5) == 2_293_000


# -------------------------------------------------- data.read_manifest
def test_read_manifest_accepts_str_and_path(monkeypatch):
    by_path = data.read_manifest(data.MANIFEST)
    assert data.read_manifest(str(data.MANIFEST)) == by_path
    monkeypatch.chdir(Path(data.DATA_DIR).parent)
    assert data.read_manifest("data/MANIFEST") == by_path


@pytest.mark.parametrize("path", [3, None, b"data/MANIFEST"])
def test_read_manifest_refuses_other_types(path):
    with pytest.raises(TypeError, match=r"^read_manifest: path must be a path \(str or pathlib\.Path\); got "):
        data.read_manifest(path)


def test_sha256_of_a_missing_file(tmp_path):
    with pytest.raises(data.DataError, match=r"^sha256: path must be an existing file"):
        data.sha256(tmp_path / "nothing")
