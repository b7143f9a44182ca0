"""effdl.quantization: round trips, oracles (torch, numerics, torch.ao), integer-only inference, bad input."""
import copy
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from effdl import quantization as Q
from effdl import zoo
from effdl.data import Split, load_mnist
from effdl.models import LeNet5, LeNet300, RowLSTM
from effdl.numerics import round_to_format
from effdl.train import evaluate
from bounds import rounding_bound


@pytest.fixture(scope="module")
def splits():
    return {s: load_mnist(s, source="embedded") for s in ("train", "val", "test")}


@pytest.fixture(scope="module")
def lenet5():
    return zoo.load("lenet5")


@pytest.fixture(scope="module")
def lenet300():
    return zoo.load("lenet300")


@pytest.fixture(scope="module")
def q_lenet5(lenet5, splits):
    return Q.quantize_model(lenet5, 8, 8, splits["train"])


# ------------------------------------------------------------------ primitives
@pytest.mark.parametrize("n_bits", [2, 4, 8, 16])
@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("power_of_two", [True, False])
def test_round_trip_error_at_most_half_a_step_inside_the_range(n_bits, symmetric, power_of_two):
    g = torch.Generator().manual_seed(n_bits)
    x = torch.rand(10_000, generator=g, dtype=torch.float64) * 3.0 - 0.7        # in [-0.7, 2.3)
    scale, zp = Q.choose_scale(float(x.min()), float(x.max()), n_bits, symmetric=symmetric,
                               power_of_two=power_of_two)
    qmin, qmax = Q.qrange(n_bits, symmetric)
    q = Q.quantize(x, scale, zp, n_bits, signed=symmetric)
    assert int(q.min()) >= qmin and int(q.max()) <= qmax
    back = Q.dequantize(q, scale, zp, dtype=torch.float64)
    assert float((back - x).abs().max()) <= scale / 2 + 1e-12     # every value of [min, max]
    # beyond the range, values saturate at the extreme levels
    far = torch.tensor([-1e6, 1e6], dtype=torch.float64)
    q_far = Q.quantize(far, scale, zp, n_bits, signed=symmetric)
    assert q_far.tolist() == [qmin, qmax]


def test_symmetric_has_zero_point_zero_and_asymmetric_represents_zero_exactly():
    for lo, hi in [(-0.3, 1.7), (0.2, 5.0), (-4.0, -1.0), (0.0, 0.0)]:
        scale, zp = Q.choose_scale(lo, hi, 8, symmetric=True)
        assert zp == 0 and scale > 0
        scale, zp = Q.choose_scale(lo, hi, 8, symmetric=False)
        assert 0 <= zp <= 255
        assert float(Q.dequantize(Q.quantize(torch.zeros(1), scale, zp, 8, signed=False), scale, zp)) == 0.0
    # post-ReLU data: the unsigned zero point is 0 and all 256 levels are non-negative
    assert Q.choose_scale(0.0, 6.0, 8, symmetric=False)[1] == 0
    # asymmetric spends its levels on [min, max]; symmetric wastes the negative half on it
    assert Q.choose_scale(0.0, 6.0, 8, symmetric=False)[0] < Q.choose_scale(0.0, 6.0, 8, symmetric=True)[0]


def test_qrange():
    assert Q.qrange(8, True) == (-128, 127) and Q.qrange(8, False) == (0, 255)
    assert Q.qrange(2, True) == (-2, 1) and Q.qrange(16, False) == (0, 65535)


def test_quantize_dtype_is_the_smallest_that_holds_the_range():
    x = torch.linspace(-1, 1, 11)
    assert Q.quantize(x, 0.1, 0, 8, signed=True).dtype == torch.int8
    assert Q.quantize(x, 0.1, 128, 8, signed=False).dtype == torch.uint8
    assert Q.quantize(x, 0.1, 0, 12, signed=True).dtype == torch.int16
    assert Q.quantize(x, 0.1, 0, 32, signed=True).dtype == torch.int32


def test_per_channel_scales_follow_each_output_channel():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(6, 3, 5, 5, generator=g) * torch.tensor([0.01, 0.1, 1.0, 2.0, 0.5, 0.03]).view(6, 1, 1, 1)
    scale, zp = Q.weight_qparams(w, 8, per_channel=True)
    assert scale.shape == (6,) and torch.equal(zp, torch.zeros(6, dtype=torch.int64))
    for c in range(6):
        s_c, _ = Q.choose_scale(float(w[c].min()), float(w[c].max()), 8)
        assert float(scale[c]) == pytest.approx(s_c, rel=1e-12)
    q = Q.quantize(w, scale, zp, 8, axis=0)
    for c in range(6):                                          # = quantizing each channel on its own
        assert torch.equal(q[c], Q.quantize(w[c], float(scale[c]), 0, 8))
    per_tensor, _ = Q.weight_qparams(w, 8, per_channel=False)
    err_c = (Q.dequantize(q, scale, axis=0) - w).abs().mean()
    err_t = (Q.dequantize(Q.quantize(w, per_tensor, 0, 8), per_tensor) - w).abs().mean()
    assert err_c < err_t / 2                                    # small channels keep their precision


@pytest.mark.parametrize("n_bits,symmetric", [(8, True), (8, False), (4, False), (3, True)])
def test_fake_quantize_matches_torch_per_tensor_forward_and_gradient(n_bits, symmetric):
    g = torch.Generator().manual_seed(n_bits)
    x = (torch.randn(4000, generator=g) * 2).requires_grad_()
    scale, zp = Q.choose_scale(-1.5, 2.0, n_bits, symmetric=symmetric, power_of_two=True)
    qmin, qmax = Q.qrange(n_bits, symmetric)
    ours = Q.fake_quantize(x, scale, zp, n_bits, signed=symmetric)
    ours.backward(torch.arange(4000.0))
    x_ref = x.detach().clone().requires_grad_()
    ref = torch.fake_quantize_per_tensor_affine(x_ref, scale, zp, qmin, qmax)
    ref.backward(torch.arange(4000.0))
    assert torch.equal(ours, ref)
    assert torch.equal(x.grad, x_ref.grad)


def test_fake_quantize_matches_torch_per_channel():
    g = torch.Generator().manual_seed(3)
    w = (torch.randn(5, 40, generator=g) * torch.linspace(0.1, 2, 5).view(5, 1)).requires_grad_()
    scale, zp = Q.weight_qparams(w, 6, power_of_two=True)
    ours = Q.fake_quantize(w, scale, zp, 6, axis=0)
    ours.sum().backward()
    w_ref = w.detach().clone().requires_grad_()
    ref = torch.fake_quantize_per_channel_affine(w_ref, scale.float(), zp.int(), 0, -32, 31)
    ref.sum().backward()
    assert torch.equal(ours, ref) and torch.equal(w.grad, w_ref.grad)


def test_straight_through_gradient_is_one_inside_and_zero_outside():
    x = torch.tensor([-3.0, -1.0, -0.26, 0.0, 0.4, 0.9, 0.99, 1.2, 50.0], requires_grad=True)
    y = Q.fake_quantize(x, 0.125, 0, 4, signed=True)             # representable: [-1.0, 0.875]
    y.sum().backward()
    assert x.grad.tolist() == [0, 1, 1, 1, 1, 1, 0, 0, 0]         # 0.9 and 0.99 round to 7, 8 → 8 clips
    assert y.detach().tolist() == [-1.0, -1.0, -0.25, 0.0, 0.375, 0.875, 0.875, 0.875, 0.875]


@pytest.mark.parametrize("n_bits", [4, 8, 12])
def test_fixed_point_agrees_with_chapter_1_rounding(n_bits):
    g = torch.Generator().manual_seed(n_bits)
    x = torch.randn(2000, generator=g, dtype=torch.float64) * 0.8             # about ±3: 2 integer bits
    fp = Q.choose_fixed_point(x, n_bits)
    assert fp.int_bits == 2
    assert fp.signed and fp.min <= float(x.min()) and float(x.max()) <= fp.max + fp.scale / 2
    finer = Q.FixedPoint(n_bits, fp.frac_bits + 1, True)        # one more fraction bit no longer covers it
    assert finer.min > float(x.min()) or finer.max < float(x.max())
    ours = Q.dequantize(Q.quantize(x, fp.scale, 0, n_bits), fp.scale, dtype=torch.float64)
    ref = round_to_format(x, fp.to_format())
    assert torch.equal(ours, torch.as_tensor(ref))


def test_choose_fixed_point_percentile_clips_outliers():
    x = torch.cat([torch.linspace(0, 0.9, 100_000), torch.tensor([100.0])])
    full = Q.choose_fixed_point(x, 8)
    clipped = Q.choose_fixed_point(Q.tensor_stats(x, (0.01, 99.99)), 8, percentile=99.99)
    assert not full.signed and full.name == "uq7.1" and clipped.name == "uq0.8"
    assert Q.FixedPoint(8, 9, True).name == "q-2.9"               # the radix point left of the word


def test_fixed_point_multiplier_and_requantize():
    for m in [0.25, 2.0 ** -20, 0.1, 0.0123456789, 0.9999999999]:
        m0, shift = Q.fixed_point_multiplier(m)
        assert 2 ** 30 <= m0 < 2 ** 31
        assert abs(m0 * 2.0 ** -shift - m) <= m * 2.0 ** -30
    assert Q.fixed_point_multiplier(2.0 ** -9) == (2 ** 30, 39)
    g = torch.Generator().manual_seed(0)
    acc = torch.randint(-2 ** 20, 2 ** 20, (50_000,), generator=g)
    acc[:8] = torch.tensor([8, 24, 40, -8, -24, 4, 12, -4]) * 2 ** 3   # exact ties at m = 2^-4
    for k in (1, 4, 9):
        m0, shift = Q.fixed_point_multiplier(2.0 ** -k)
        ours = Q.requantize(acc, m0, shift, 0, 16, signed=True)
        ref = torch.round(acc.double() * 2.0 ** -k).clamp(-2 ** 15, 2 ** 15 - 1).long()  # half to even
        assert torch.equal(ours, ref)
    relu = Q.requantize(acc, 2 ** 30, 34, 3, 8, relu=True)
    assert int(relu.min()) == 3 and int(relu.max()) == 255


def test_mse_weight_clipping_never_increases_the_error_and_helps_at_2_bits():
    g = torch.Generator().manual_seed(5)
    w = torch.randn(8, 200, generator=g, dtype=torch.float64)
    errors = {}
    for clip in Q.WEIGHT_CLIPS:
        s, z = Q.weight_qparams(w, 2, clip=clip, power_of_two=True)
        errors[clip] = (Q.fake_quantize(w, s, z, 2, axis=0) - w).square().sum(1)
    assert bool((errors["mse"] <= errors["minmax"]).all())
    assert float(errors["mse"].sum()) < 0.6 * float(errors["minmax"].sum())


# ------------------------------------------------------------------ statistics
def test_activation_stats_see_each_layers_input_and_output(lenet5, splits):
    x = splits["train"].x[:300]
    stats = Q.collect_activation_stats(lenet5, x, batch_size=128, percentiles=(1, 99))
    assert list(stats) == ["conv1", "conv2", "fc1", "fc2"]
    ref = Q.tensor_stats(x, (1, 99))
    got = stats["conv1"]["input"]
    assert (got.numel, got.min, got.max) == (ref.numel, ref.min, ref.max)
    assert got.mean == pytest.approx(ref.mean, abs=1e-9) and got.std == pytest.approx(ref.std, rel=1e-9)
    assert got.percentiles == pytest.approx(ref.percentiles)
    # The stats ran the net in batches of 128, the reference runs all 300 at once: the two float32 forwards may
    # sum in different orders, and Higham's bound through the net exceeds the logits in float32. In float64
    # each max is within that bound (~1e-9 here) of the exact one, so the two differ by at most twice it.
    model64, x64 = copy.deepcopy(lenet5).double(), x.double()
    stats64 = Q.collect_activation_stats(model64, x64, batch_size=128, percentiles=(1, 99))
    with torch.no_grad():
        logits = model64(x64)
    assert abs(stats64["fc2"]["output"].max - float(logits.max())) <= 2 * float(rounding_bound(model64, x64).max())
    assert stats["conv2"]["input"].min == 0.0                     # after ReLU
    assert not lenet5.training


# ------------------------------------------------------------------ quantized models
def test_quantize_model_modes_and_original_untouched(lenet300, splits):
    before = copy.deepcopy(lenet300.state_dict())
    x = splits["test"].x[:64]
    w_only = Q.quantize_model(lenet300, 4, None)
    a_only = Q.quantize_model(lenet300, None, 4, splits["train"])
    both = Q.quantize_model(lenet300, 4, 4, splits["train"])
    assert all(torch.equal(before[k], v) for k, v in lenet300.state_dict().items())
    assert (w_only.config.mode, a_only.config.mode, both.config.mode) == ("w", "a", "wa")
    with torch.no_grad():
        # weights only = the float model with rounded weights
        manual = copy.deepcopy(lenet300).double()
        for layer in (manual.fc1, manual.fc2, manual.fc3):
            s, z = Q.weight_qparams(layer.weight, 4, power_of_two=True)
            layer.weight.copy_(Q.fake_quantize(layer.weight, s, z, 4, axis=0))
        assert torch.equal(w_only(x), manual(x.double()))
        # activations only: the weights stay float, the first layer's input is on a grid
        assert torch.equal(a_only.model.fc1.weight, lenet300.fc1.weight)
        assert not torch.equal(a_only(x), lenet300(x).double())


@pytest.mark.parametrize("calibration", ["sequential", "float"])
def test_calibrated_ranges_are_what_each_layer_sees(calibration, lenet5, splits):
    calib = splits["train"].x[:512]
    qm = Q.quantize_model(lenet5, 4, 4, calib, calibration=calibration, n_batches=None)
    # sequential: the inputs of the quantized model itself; float: those of the float model
    probe = qm.model if calibration == "sequential" else lenet5
    stats = Q.collect_activation_stats(probe, calib, percentiles=())
    for name, layer in qm.quant_layers().items():
        lo, hi = stats[name]["input"].range()
        s, z = Q.choose_scale(lo, hi, 4, symmetric=False, power_of_two=True)
        assert (float(layer.act_scale), int(layer.act_zero_point)) == (s, z), name
    rows = qm.summary()
    assert [r["layer"] for r in rows] == ["conv1", "conv2", "fc1", "fc2"]
    assert rows[1]["a_format"].startswith("uq") and rows[1]["a_min"] == 0.0


def test_quantization_aware_finetuning_uses_the_straight_through_gradient(lenet300, splits):
    train = splits["train"]
    small = Split("train", train.source, train.x[:1000], train.y[:1000])   # keeps the test quick
    qm = Q.quantize_model(lenet300, 3, 3, small)
    start = evaluate(qm, splits["val"])
    w0 = qm.model.fc1.weight.detach().clone()
    history = Q.finetune_quantized(qm, small, splits["val"], epochs=1, lr=0.003, show_progress=False)
    assert history.best_val_acc >= start
    assert history.train_loss and math.isfinite(history.train_loss[0])
    if history.best_epoch:                                        # kept the fine-tuned weights
        assert not torch.equal(qm.model.fc1.weight, w0)


# ------------------------------------------------------------------ integer-only inference
@pytest.mark.parametrize("name,backend", [("lenet300", "int8"), ("lenet300", "int64"), ("lenet5", "int8")])
def test_integer_inference_equals_fake_quantization_on_the_test_set(name, backend, splits, lenet300, q_lenet5):
    qm = Q.quantize_model(lenet300, 8, 8, splits["train"]) if name == "lenet300" else q_lenet5
    if backend == "int8" and not Q.int8_gemm_exact():        # e.g. oneDNN without VNNI: refused, clearly
        with pytest.raises(ValueError, match="torch._int_mm is exact on this CPU"):
            Q.compare_integer(qm, splits["test"], backend=backend)
        backend = "int64"                                     # and the exact path gives the same integers
    result = Q.compare_integer(qm, splits["test"], backend=backend)      # all 1,000 test images
    assert result["backend"] == backend and result["accumulator_bits"] == 32
    assert result["predictions_equal"] and result["n_prediction_mismatches"] == 0
    assert result["logits_equal"] and result["max_abs_logit_diff"] == 0.0
    assert result["int_acc"] == result["fake_quant_acc"]


def test_int8_gemm_probe_agrees_with_a_real_layer_product():
    # the probe's verdict must hold for a LeNet-sized product too (the shapes of conv2 and fc1)
    g = torch.Generator().manual_seed(3)
    a = torch.randint(-128, 128, (400, 500), dtype=torch.int8, generator=g)
    b = torch.randint(-128, 128, (500, 64), dtype=torch.int8, generator=g)
    exact = torch.equal(torch._int_mm(a, b).to(torch.int64), a.to(torch.int64) @ b.to(torch.int64))
    assert Q.int8_gemm_exact() == exact


def test_integer_lenet_uses_int8_weights_int32_bias_and_integer_activations(q_lenet5, splits):
    int_model = Q.IntegerLeNet(q_lenet5)
    trace = int_model.trace(splits["test"].x[:16])
    assert trace["input"].dtype == torch.uint8
    for layer in int_model.layers:
        assert layer.weight.dtype == torch.int8
        assert int(layer.bias.abs().max()) < 2 ** 31 and layer.acc_bound < 2 ** 31
        assert int(trace[f"{layer.name}.acc"].abs().max()) <= layer.acc_bound
    assert trace["conv2.out"].dtype == torch.int64 and int(trace["conv2.out"].min()) >= 0
    assert int(trace["fc1.out"].max()) <= 255


def test_integer_inference_with_16_bit_weights_uses_the_int64_path(lenet300, splits):
    qm = Q.quantize_model(lenet300, 16, 16, splits["train"])
    result = Q.compare_integer(qm, splits["test"])
    assert result["backend"] == "int64" and result["accumulator_bits"] == 64
    assert result["logits_equal"]


def test_arbitrary_scales_use_jacob_multipliers_and_agree_on_predictions(lenet300, splits):
    qm = Q.quantize_model(lenet300, 8, 8, splits["train"], power_of_two=False)
    result = Q.compare_integer(qm, splits["test"])
    assert result["n_prediction_mismatches"] <= 2                  # rounding of y/s vs m0·2^-shift differs rarely
    assert result["max_abs_logit_diff"] < 0.1


def test_8_bit_weights_and_activations_within_0_3_points_of_float(lenet5, q_lenet5, splits):
    fp = evaluate(lenet5, splits["test"])
    q8 = evaluate(q_lenet5, splits["test"])
    assert abs(fp - q8) <= 0.3, (fp, q8)


def test_torch_ao_int8_oracle_within_0_3_points_of_ours(lenet5, q_lenet5, splits):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ao = Q.torch_ao_int8(lenet5, splits["train"])
    ao_acc = evaluate(ao, splits["test"], device="cpu")
    ours = Q.compare_integer(q_lenet5, splits["test"])["int_acc"]
    assert abs(ao_acc - ours) <= 0.3, (ao_acc, ours)


# ------------------------------------------------------------------ bad input
X = torch.linspace(-1, 1, 10)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: Q.quantize(X, 0.1, 0, 1), ValueError, "n_bits must be an integer in \\[2, 32\\]"),
    (lambda: Q.quantize(X, 0.1, 0, 33), ValueError, "n_bits"),
    (lambda: Q.quantize(X, 0.1, 0, 8.0), TypeError, "n_bits must be an integer"),
    (lambda: Q.quantize(X, 0.1, 0, True), TypeError, "n_bits"),
    (lambda: Q.quantize(X, 0.0, 0, 8), ValueError, "scale must be positive and finite"),
    (lambda: Q.quantize(X, -0.1, 0, 8), ValueError, "scale"),
    (lambda: Q.quantize(X, float("nan"), 0, 8), ValueError, "scale"),
    (lambda: Q.quantize(X, True, 0, 8), TypeError, "scale"),
    (lambda: Q.quantize(X, 0.1, 300, 8, signed=False), ValueError, "zero_point must be in the integer range"),
    (lambda: Q.quantize(X, 0.1, 0.5, 8), TypeError, "zero_point"),
    (lambda: Q.quantize(torch.tensor([1.0, float("nan")]), 0.1, 0, 8), ValueError, "x must be free of NaN"),
    (lambda: Q.quantize("abc", 0.1, 0, 8), TypeError, "x must be"),
    (lambda: Q.quantize(torch.ones(3, 4), torch.ones(5), 0, 8, axis=0), ValueError, "scale must be of length 3"),
    (lambda: Q.quantize(torch.ones(3, 4), torch.ones(3), 0, 8), ValueError, "pass axis="),
    (lambda: Q.quantize(torch.ones(3, 4), torch.ones(3), 0, 8, axis=2), ValueError, "axis"),
    (lambda: Q.dequantize(X, 0.1), TypeError, "q must be a torch.Tensor of integers"),
    (lambda: Q.fake_quantize(torch.arange(3), 0.1), TypeError, "x must be a torch.Tensor of floating-point"),
    (lambda: Q.fake_quantize(X, torch.tensor([0.1, -0.2]), 0, 8, axis=0), ValueError, "scale"),
    (lambda: Q.choose_scale(1.0, -1.0, 8), ValueError, "min_val must be ≤ max_val"),
    (lambda: Q.choose_scale(torch.zeros(3), torch.ones(4), 8), ValueError, "max_val must be the same shape as min_val"),
    (lambda: Q.choose_scale(0.0, float("inf"), 8), ValueError, "max_val must be finite"),
    (lambda: Q.choose_scale(0.0, 1.0, 1), ValueError, "n_bits"),
    (lambda: Q.choose_fixed_point(X, 8, percentile=40), ValueError, "percentile"),
    (lambda: Q.choose_fixed_point(Q.tensor_stats(X, ()), 8, percentile=99.9), ValueError, "percentile must be one of"),
    (lambda: Q.tensor_stats(torch.tensor([0.0, float("inf")])), ValueError, "x must be finite"),
    (lambda: Q.tensor_stats(torch.tensor([])), ValueError, "x must be non-empty"),
    (lambda: Q.tensor_stats(X, percentiles=(50, 101)), ValueError, "percentiles"),
    (lambda: Q.FixedPoint(1, 0), ValueError, "n_bits"),
    (lambda: Q.fixed_point_multiplier(0.0), ValueError, "m must be"),
    (lambda: Q.requantize(torch.ones(3), 2 ** 30, 31, 0, 8), TypeError, "acc must be a torch.Tensor of integers"),
    (lambda: Q.requantize(torch.ones(3, dtype=torch.int64), 2 ** 30, 0, 0, 8), ValueError, "shift"),
    (lambda: Q.QuantConfig(n_bits_weight=1), ValueError, "n_bits_weight must be an integer in \\[2, 16\\]"),
    (lambda: Q.QuantConfig(n_bits_act=17), ValueError, "n_bits_act"),
    (lambda: Q.QuantConfig(n_bits_act=True), TypeError, "n_bits_act"),
    (lambda: Q.QuantConfig(per_channel=1), TypeError, "per_channel must be True or False"),
    (lambda: Q.quantize_model(LeNet300(), 8, 8), ValueError, "calib must be calibration data"),
    (lambda: Q.quantize_model("lenet", 8, 8), TypeError, "model must be a torch.nn.Module"),
    (lambda: Q.quantize_model(nn.ReLU(), 8, None), ValueError, "Linear or Conv2d"),
    (lambda: Q.quantize_model(LeNet300(), 8, 8, torch.full((4, 1, 28, 28), float("nan"))), ValueError,
     "calib must be finite"),
    (lambda: Q.quantize_model(LeNet300(), 8, 8, 5), TypeError, "calib must be"),
    (lambda: Q.quantize_model(LeNet300(), 8, 8, torch.zeros(2, 1, 28, 28), calibration="exact"), ValueError,
     "calibration must be one of"),
    (lambda: Q.quantize_model(LeNet300(), 4, None, w_clip="max"), ValueError, "w_clip must be one of"),
    (lambda: Q.collect_activation_stats(LeNet5(), []), ValueError, "data must be at least one batch"),
    (lambda: Q.IntegerLeNet(LeNet5()), TypeError, "qmodel must be a QuantizedModel"),
    (lambda: Q.IntegerLeNet(Q.quantize_model(LeNet300(), 8, None)), ValueError, "weights and activations"),
    (lambda: Q.IntegerLeNet(Q.quantize_model(RowLSTM(), 8, None)), ValueError, "LeNet300 or LeNet5"),
    (lambda: Q.IntegerLeNet(Q.quantize_model(LeNet300(), 16, 16, torch.zeros(2, 1, 28, 28)), backend="int8"),
     ValueError, "backend"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------ every scheme, bit for bit
@pytest.mark.parametrize("n_bits_weight,n_bits_act,per_channel,w_symmetric,a_symmetric", [
    (2, 2, True, True, False), (3, 5, False, False, False), (4, 4, True, False, True),
    (6, 3, False, True, True), (8, 8, False, False, False), (5, 7, True, True, False), (16, 12, False, True, False),
])
def test_integer_inference_is_bit_exact_for_every_scheme(n_bits_weight, n_bits_act, per_channel, w_symmetric, a_symmetric,
                                                         lenet300, splits):
    """Per-tensor and per-channel, symmetric and asymmetric weights and activations, 2 to 16 bits."""
    test = splits["test"]
    sub = Split("test", test.source, test.x[:200], test.y[:200])
    qm = Q.quantize_model(lenet300, n_bits_weight, n_bits_act, splits["train"], per_channel=per_channel,
                          w_symmetric=w_symmetric, a_symmetric=a_symmetric, n_batches=1)
    layer = qm.model.fc1
    s_w, z_w = layer.weight_qparams()
    assert s_w.shape == ((300,) if per_channel else ())
    assert bool((z_w == 0).all()) == w_symmetric                  # asymmetric weights get zero points
    assert (int(layer.act_zero_point) == 0) if a_symmetric else True
    result = Q.compare_integer(qm, sub)
    assert result["logits_equal"] and result["predictions_equal"], result
    expected = "int8" if (n_bits_weight <= 8 and n_bits_act <= 8 and w_symmetric and Q.int8_gemm_exact()) else "int64"
    assert result["backend"] == expected


def test_lenet5_per_tensor_asymmetric_is_bit_exact(lenet5, splits):
    test = splits["test"]
    sub = Split("test", test.source, test.x[:100], test.y[:100])
    qm = Q.quantize_model(lenet5, 4, 6, splits["train"], per_channel=False, w_symmetric=False, n_batches=1)
    result = Q.compare_integer(qm, sub)
    assert result["logits_equal"] and result["backend"] == "int64"


def test_calibration_caches_weights_only_while_calibrating(lenet300, splits):
    qm = Q.quantize_model(lenet300, 4, 4, splits["train"], w_clip="mse", n_batches=1)
    assert all(layer._frozen is None for layer in qm.quant_layers().values())   # released afterwards
    x = splits["test"].x[:32]
    before = qm(x)
    with torch.no_grad():
        qm.model.fc3.weight.mul_(-1.0)             # the next forward must see the new weights
    assert not torch.equal(qm(x), before)


# ------------------------------------------------------------------ more bad input
def _nonfinite_model(value):
    m = LeNet300()
    with torch.no_grad():
        m.fc2.weight[3, 4] = value
    return m


@pytest.mark.parametrize("call,exc,match", [
    (lambda: Q.quantize(X, 0.1, 0, 0), ValueError, "n_bits must be an integer in \\[2, 32\\]; got 0"),
    (lambda: Q.quantize(X, 0.1, 0, -8), ValueError, "n_bits"),
    (lambda: Q.fake_quantize(X, 0.1, 0, 40), ValueError, "n_bits"),
    (lambda: Q.choose_fixed_point(X, 33), ValueError, "n_bits"),
    (lambda: Q.weight_qparams(torch.ones(2, 2), 0), ValueError, "n_bits"),
    (lambda: Q.quantize_model(LeNet300(), 0, None), ValueError, "n_bits_weight"),
    (lambda: Q.dequantize(torch.ones(3, dtype=torch.int8), 0.0), ValueError, "scale must be positive"),
    (lambda: Q.dequantize(torch.ones(3, dtype=torch.int8), -1e-3), ValueError, "scale must be positive"),
    (lambda: Q.quantize(torch.ones(3, 2), torch.tensor([1.0, 0.0, 1.0]), 0, 8, axis=0), ValueError, "scale"),
    (lambda: Q.fake_quantize(torch.ones(3), float("inf"), 0, 8), ValueError, "scale must be finite"),
    (lambda: Q.dequantize(torch.ones(3, 2, dtype=torch.int8), torch.ones(2), axis=0), ValueError,
     "scale must be of length 3"),
    (lambda: Q.quantize(torch.ones(3, 2), torch.ones(3), torch.zeros(2, dtype=torch.int64), 8, axis=0),
     ValueError, "zero_point must be of length 3"),
    (lambda: Q.requantize(torch.ones(3, 4, dtype=torch.int64), torch.full((5,), 2 ** 30), 31, 0, 8), ValueError,
     "multiplier must be broadcastable"),
    (lambda: Q.requantize(torch.ones(3, dtype=torch.int64), 0, 31, 0, 8), ValueError, r"multiplier must be integers in \[1, 2147483647\]; got 0"),
    (lambda: Q.requantize(torch.tensor([2 ** 40]), 2 ** 30, 31, 0, 8), ValueError, "acc must be within int32"),
    (lambda: Q.collect_activation_stats(LeNet5(), torch.full((2, 1, 28, 28), float("inf"))), ValueError,
     "data must be finite"),
    (lambda: Q.torch_ao_int8(LeNet5(), torch.full((2, 1, 28, 28), float("nan"))), ValueError, "calib must be finite"),
    (lambda: Q.choose_fixed_point(torch.tensor([1.0, float("nan")]), 8), ValueError, "data must be finite"),
    (lambda: Q.quantize_model(_nonfinite_model(float("inf")), 8, None), ValueError, "fc2.weight has NaN or inf"),
    (lambda: Q.quantize_model(_nonfinite_model(float("nan")), 8, 8, torch.zeros(2, 1, 28, 28)), ValueError,
     "finite parameters"),
    (lambda: Q.quantize_model(LeNet5(), 8, 8, torch.zeros(0, 1, 28, 28)), ValueError, "non-empty batches"),
    (lambda: Q.quantize_model(LeNet5(), 8, 8, torch.zeros(4, 784)), ValueError,
     "calib must hold inputs that LeNet5 accepts"),
    (lambda: Q.collect_activation_stats(LeNet5(), torch.zeros(4, 1, 32, 32)), ValueError, "data must hold inputs"),
])
def test_bad_input_widths_scales_nonfinite_and_shapes(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("x,exc,match", [
    (torch.zeros(4, 784), ValueError, "x must be a non-empty batch of images of shape \\(N, 1, 28, 28\\)"),
    (torch.zeros(4, 1, 32, 32), ValueError, "x must be a non-empty batch"),
    (torch.zeros(0, 1, 28, 28), ValueError, "non-empty"),
    (torch.full((2, 1, 28, 28), float("nan")), ValueError, "x must be finite"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.int64), TypeError, "x must be a floating-point"),
    (np.zeros((2, 1, 28, 28)), TypeError, "x must be a torch.Tensor"),
])
def test_integer_lenet_rejects_bad_images(x, exc, match, q_lenet5):
    int_model = Q.IntegerLeNet(q_lenet5)
    with pytest.raises(exc, match=match):
        int_model(x)
    with pytest.raises(exc, match=match):
        int_model.trace(x)


def test_integer_lenet300_takes_flat_or_image_batches(lenet300, splits):
    qm = Q.quantize_model(lenet300, 8, 8, splits["train"], n_batches=1)
    int_model = Q.IntegerLeNet(qm)
    x = splits["test"].x[:8]
    assert torch.equal(int_model(x), int_model(x.flatten(1)))
    with pytest.raises(ValueError, match="\\(N, 1, 28, 28\\) or \\(N, 784\\)"):
        int_model(torch.zeros(2, 1, 20, 20))


# ------------------------------------------------------------------ chapter 5's exercise checks
def _good_frac_bits(x, n_bits):
    qmin, qmax = -2 ** (n_bits - 1), 2 ** (n_bits - 1) - 1
    return -math.ceil(math.log2(max(x.max().item() / qmax, x.min().item() / qmin)))


def _good_fake_quantize(x, scale, zero_point, qmin, qmax):
    lo, hi = (qmin - zero_point) * scale, (qmax - zero_point) * scale
    x_c = x.clamp(lo, hi)
    q = (torch.round(x / scale) + zero_point).clamp(qmin, qmax)
    return x_c + ((q - zero_point) * scale - x_c).detach()


def _good_rounding_shift(v, shift):
    floor = v >> shift
    rem = v - (floor << shift)
    half = 1 << (shift - 1)
    return floor + ((rem > half) | ((rem == half) & ((floor & 1) == 1))).long()


def test_exercise_checks_accept_right_answers():
    from effdl import exercises as E
    assert "passed" in E.check_fixed_point_frac_bits(_good_frac_bits)
    assert "passed" in E.check_fake_quantize_ste(_good_fake_quantize)
    assert "passed" in E.check_rounding_shift(_good_rounding_shift)
    # the library's own pieces pass too
    assert "passed" in E.check_fake_quantize_ste(
        lambda x, s, z, lo, hi: Q.scales._FakeQuantizeSTE.apply(x, torch.tensor(s), torch.tensor(float(z)), lo, hi))
    assert "passed" in E.check_rounding_shift(lambda v, s: Q.integer._rounding_right_shift(v, torch.tensor(s)))


@pytest.mark.parametrize("check,wrong,hint", [
    ("check_fixed_point_frac_bits", lambda x, n: _good_frac_bits(x, n) - 1, "would still cover"),
    ("check_fixed_point_frac_bits", lambda x, n: _good_frac_bits(x, n) + 1, "does not cover"),
    ("check_fake_quantize_ste",                                     # STE without the clipping mask
     lambda x, s, z, lo, hi: x + (((torch.round(x / s) + z).clamp(lo, hi) - z) * s - x).detach(), "saturate"),
    ("check_fake_quantize_ste", lambda x, s, z, lo, hi: ((torch.round(x / s) + z).clamp(lo, hi) - z) * s,
     "straight through"),
    ("check_fake_quantize_ste", lambda x, s, z, lo, hi: x.clamp((lo - z) * s, (hi - z) * s), "forward values"),
    ("check_rounding_shift", lambda v, s: (v + (1 << (s - 1))) >> s, "even neighbour"),
    ("check_rounding_shift", lambda v, s: torch.round(v.double() / 2 ** s).long(), "beyond 2\\^53"),
])
def test_exercise_checks_reject_wrong_answers(check, wrong, hint):
    from effdl import exercises as E
    with pytest.raises(AssertionError, match=hint):
        getattr(E, check)(wrong)
