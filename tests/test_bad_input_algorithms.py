"""Regressions for bad input reported against the quantization, ternary, sharing, low-rank and Winograd modules.

Each case is a reported example: a valid input that was refused, a bad one
that was accepted silently, or one that escaped as a torch / LAPACK / Python
internal error. Every refusal must be a ``TypeError`` or ``ValueError`` whose
message names the function and the parameter (``"function: param must be …"``).
The systematic sweep over every declared constraint is ``tests/test_bad_input.py``.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from effdl import lowrank, sharing, ternary, winograd
from effdl import quantization as Q
from effdl.data import Split
from effdl.models import LeNet300


def _split(n: int = 8, name: str = "s") -> Split:
    g = torch.Generator().manual_seed(0)
    return Split(name, "synthetic", torch.randn(n, 1, 28, 28, generator=g), torch.arange(n) % 10)


def _nan_linear(out_f: int = 4, in_f: int = 6) -> nn.Linear:
    layer = nn.Linear(in_f, out_f)
    with torch.no_grad():
        layer.weight[1, 2] = float("nan")
    return layer


# ------------------------------------------------------------------ requantize
@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.int64])
def test_requantize_accepts_every_integer_accumulator_dtype(dtype):
    # acc / 4 rounded half to even: the range check used to overflow on int8 / int16 / int32 tensors
    acc = torch.tensor([5, 6, 7, -9], dtype=dtype)
    assert Q.requantize(acc, 2 ** 30, 32, 0, 8, signed=True).tolist() == [1, 2, 2, -2]


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.int32, torch.int64])
def test_requantize_range_check_sees_the_extremes_of_each_dtype(dtype):
    info = torch.iinfo(dtype if dtype != torch.int64 else torch.int32)
    acc = torch.tensor([info.min + 1, info.max], dtype=dtype)          # |acc| < 2^31 for every dtype
    out = Q.requantize(acc, 2 ** 30, 31, 0, 32, signed=True)              # acc / 2 fits a 32-bit output
    expected = [round(v / 2) for v in acc.tolist()]                       # Python rounds half to even too
    assert out.tolist() == expected
    if dtype == torch.int64:
        with pytest.raises(ValueError, match=r"^requantize: acc must be within int32; got 2147483648\."):
            Q.requantize(torch.tensor([-2 ** 31]), 2 ** 30, 31, 0, 32, signed=True)


@pytest.mark.parametrize("multiplier", [2.5, 2.0, torch.tensor([2.5]), [2 ** 30, 1.5]])
def test_requantize_refuses_a_fractional_multiplier(multiplier):
    # 2.5 used to be truncated to 2 silently
    with pytest.raises(TypeError, match=r"^requantize: multiplier must be an integer in \[1, 2147483647\] or a "):
        Q.requantize(torch.tensor([5, 6]), multiplier, 32, 0, 8)


def test_requantize_refuses_out_of_range_multiplier_and_shift_tensors():
    with pytest.raises(ValueError, match=r"^requantize: multiplier must be integers in \[1, 2147483647\]"):
        Q.requantize(torch.tensor([5, 6]), torch.tensor([2 ** 30, 2 ** 31]), 31, 0, 8)
    with pytest.raises(ValueError, match=r"^requantize: shift must be integers in \[1, 62\]"):
        Q.requantize(torch.tensor([5, 6]), 2 ** 30, torch.tensor([31, 0]), 0, 8)
    with pytest.raises(ValueError, match=r"^requantize: zero_point must be an integer in \[-128, 127\]"):
        Q.requantize(torch.tensor([5, 6]), 2 ** 30, 31, 200, 8, signed=True)


# ------------------------------------------------------------------ batch sizes and other counts
_BAD_COUNTS = [(0, ValueError), (2.5, TypeError), ("3", TypeError), (None, TypeError), (True, TypeError)]


@pytest.mark.parametrize("value,exc", _BAD_COUNTS)
def test_batch_size_is_declared_everywhere(value, exc):
    model, data = LeNet300(), torch.zeros(4, 1, 28, 28)
    qmodel = Q.quantize_model(model, 8, 8, data, n_batches=1)
    split = _split()
    calls = {
        "quantize_model": lambda: Q.quantize_model(model, 8, 8, data, batch_size=value),
        "collect_activation_stats": lambda: Q.collect_activation_stats(model, data, batch_size=value),
        "compare_integer": lambda: Q.compare_integer(qmodel, split, batch_size=value),
        "torch_ao_int8": lambda: Q.torch_ao_int8(model, data, batch_size=value),
        "finetune_quantized": lambda: Q.finetune_quantized(qmodel, split, split, batch_size=value),
        "layer_counts": lambda: winograd.layer_counts(1, 1, 1, 1, 2, batch_size=value),
        "time_conv3x3": lambda: winograd.time_conv3x3(1, 1, 4, 4, batch_size=value),
        "train": lambda: ternary.train(ternary.ternarized_copy(model), split, batch_size=value),
    }
    for name, call in calls.items():
        with pytest.raises(exc, match=rf"^{name}: batch_size must be an integer in \[1, inf\]; got "):
            call()


@pytest.mark.parametrize("value,exc", _BAD_COUNTS)
def test_finetune_centroids_declares_batch_size(value, exc):
    shared = sharing.share_weights(LeNet300(), 2)
    with pytest.raises(exc, match=r"^finetune_centroids: batch_size must be"):
        sharing.finetune_centroids(shared, _split(), batch_size=value)


@pytest.mark.parametrize("value,exc", [(0, ValueError), (2.5, TypeError), (True, TypeError)])
def test_n_batches_is_declared(value, exc):
    with pytest.raises(exc, match=r"^quantize_model: n_batches must be"):
        Q.quantize_model(LeNet300(), 8, 8, torch.zeros(4, 1, 28, 28), n_batches=value)


# ------------------------------------------------------------------ low rank: NaN weights
def test_factorize_linear_refuses_nan_weights():
    # used to escape as torch.linalg.LinAlgError from the SVD
    with pytest.raises(ValueError, match=r"^factorize_linear: linear\.weight must be finite \(no NaN or inf\); "
                                         r"got nan at index \(1, 2\)"):
        lowrank.factorize_linear(_nan_linear(), 2)
    with pytest.raises(ValueError, match=r"^replace_linear: linear\.weight must be finite"):
        lowrank.replace_linear(nn.Sequential(_nan_linear()), "0", 2)


def test_svd_rank_sweep_refuses_nan_weights_and_bad_splits():
    model = nn.Sequential(nn.Flatten(), _nan_linear(10, 784))
    with pytest.raises(ValueError, match=r"^svd_rank_sweep: 1\.weight must be finite"):
        lowrank.svd_rank_sweep(model, "1", [2], _split())
    x = torch.zeros(2, 1, 28, 28)
    x[1, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="is not"):          # the Split refuses NaN images when it is made
        Split("bad", "synthetic", x, torch.tensor([0, 1]))


def test_conv_decompositions_refuse_nan_weights():
    conv = nn.Conv2d(2, 4, 3)
    with torch.no_grad():
        conv.weight[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"^factorize_conv: conv\.weight must be finite"):
        lowrank.factorize_conv(conv, 2)
    with pytest.raises(ValueError, match=r"^select_ranks: convs\[0\]\.weight must be finite"):
        lowrank.select_ranks([conv], 0.5, [4])


def test_layer_inputs_of_a_layer_the_forward_never_calls():
    # used to escape as IndexError
    model = nn.Sequential(nn.Linear(3, 2), nn.Linear(5, 5))
    model.forward = lambda x: model[0](x)
    with pytest.raises(ValueError, match=r"^layer_inputs: name must be a submodule that model's forward calls"):
        lowrank.layer_inputs(model, "1", torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"^layer_inputs: x must hold inputs that Sequential accepts"):
        lowrank.layer_inputs(nn.Sequential(nn.Linear(3, 2)), "0", torch.zeros(1, 4))


# ------------------------------------------------------------------ sharing
def test_finetune_centroids_cannot_get_an_empty_split():
    # used to end in ZeroDivisionError inside fit; an empty Split cannot be made any more
    with pytest.raises(ValueError, match="at least one example"):
        Split("empty", "synthetic", torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.int64))
    shared = sharing.share_weights(LeNet300(), 2)
    with pytest.raises(TypeError, match=r"^finetune_centroids: train must be an effdl\.data\.Split"):
        sharing.finetune_centroids(shared, (torch.zeros(0, 1, 28, 28), torch.zeros(0)))


def test_a_bit_width_is_n_bits():
    model = LeNet300()
    assert sharing.share_weights(model, n_bits=2).layers["fc1.weight"].n_bits == 2
    with pytest.raises(TypeError, match="^share_weights: missing a required argument: 'n_bits'"):
        sharing.share_weights(model, bits=2)
    assert Q.fixed_point_multiplier(0.1, n_bits=31) == (1717986918, 34)
    with pytest.raises(TypeError, match="^fixed_point_multiplier: got an unexpected keyword argument 'bits'"):
        Q.fixed_point_multiplier(0.1, bits=31)
    with pytest.raises(ValueError, match=r"^share_weights: n_bits\['fc2\.weight'\] must be an integer in \[1, 16\]"):
        sharing.share_weights(model, {"fc1.weight": 2, "fc2.weight": 0, "fc3.weight": 2})


# ------------------------------------------------------------------ more escapes
def test_bits_table_of_a_dict_without_rows():
    # used to escape as KeyError
    with pytest.raises(TypeError, match=r"^bits_table: sweep\['rows'\] must be a list"):
        Q.bits_table({})
    with pytest.raises(ValueError, match=r"^bits_table: sweep\['rows'\]\[0\] must have the keys"):
        Q.bits_table({"rows": [{"bits": 8, "mode": "w"}]}, "ft_test_acc")


def test_winograd_refuses_non_finite_inputs():
    x, w = torch.zeros(1, 2, 5, 5), torch.zeros(3, 2, 3, 3)
    x[0, 1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match=r"^winograd_conv2d: x must be finite \(no NaN or inf\); got nan at index "
                                         r"\(0, 1, 2, 3\)"):
        winograd.winograd_conv2d(x, w)
    w[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"^direct_conv2d: w must be finite"):
        winograd.direct_conv2d(torch.zeros(1, 2, 5, 5), w)


def test_ternary_train_declares_the_keywords_of_fit():
    model = ternary.ternarized_copy(LeNet300(), "twn")
    with pytest.raises(TypeError, match="^train: got an unexpected keyword argument 'after_step'"):
        ternary.train(model, _split(), after_step=print)
    with pytest.raises(ValueError, match=r"^train: optimizer must be one of \['sgd', 'adam'\]"):
        ternary.train(model, _split(), optimizer="rmsprop")
    with pytest.raises(ValueError, match=r"^train: device must be a device name torch knows"):
        ternary.train(model, _split(), device="toaster", epochs=0)


def test_quantize_model_names_a_percentile_missing_from_precomputed_statistics():
    model, data = LeNet300(), torch.randn(8, 1, 28, 28)
    stats = Q.collect_activation_stats(model, data, percentiles=())
    with pytest.raises(ValueError, match=r"^quantize_model: percentile must be one of the percentiles computed"):
        Q.quantize_model(model, 8, 8, stats, percentile=99.9)
