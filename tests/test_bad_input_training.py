"""Regression tests for the bad input reported against effdl.training.* and effdl.hardware.{energy, specs,
roofline, trends, gpu_bench}: each is now a TypeError/ValueError naming the function, the parameter and the
value (the generated cases for every declared constraint are in tests/test_bad_input.py)."""
import math

import pytest
import torch
from torch import nn

from effdl.data import Split
from effdl.hardware import energy, roofline
from effdl.training import distillation, dsd, mixed_precision
from effdl.training import parallel as P


def _split(n: int = 4) -> Split:
    return Split("s", "t", torch.zeros(n, 1, 28, 28), torch.arange(n) % 10)


# ---------------------------------------------------------------------------- dsd
def test_verdict_refuses_nan_accuracy():
    with pytest.raises(ValueError, match=r"^verdict: baseline\[0\] must be finite, a real number in \[0, 100\]; "
                                         r"got nan\.$"):
        dsd.verdict([math.nan, 1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"^verdict: dsd\[1\] must be finite"):
        dsd.verdict([1.0, 2.0], [1.0, math.inf])
    with pytest.raises(TypeError, match=r"^verdict: baseline must be a list"):
        dsd.verdict(97.0, [97.0])
    assert dsd.verdict([97.0, 97.2], [97.6, 97.8])["verdict"] == "helped"


def test_dsd_train_cannot_get_an_empty_split():
    with pytest.raises(ValueError, match="at least one example"):
        Split("s", "t", torch.zeros(0, 1, 28, 28), torch.zeros(0, dtype=torch.long))
    with pytest.raises(TypeError, match=r"^dsd_train: train must be an effdl.data.Split"):
        dsd.dsd_train("lenet300", (torch.zeros(0, 1, 28, 28), torch.zeros(0)), _split(), sparsity=0.3,
                      dense_epochs=1, sparse_epochs=1, redense_epochs=1, lr=0.1)


# ----------------------------------------------------------------- mixed precision
def test_max_safe_scale_of_no_gradients_is_a_clear_error():
    with pytest.raises(ValueError, match=r"^max_safe_scale: grads must be .*\(non-empty\); got \[\]\.$"):
        mixed_precision.max_safe_scale([])
    with pytest.raises(ValueError, match=r"^max_safe_scale: grads\[0\] must be non-empty"):
        mixed_precision.max_safe_scale([torch.empty(0)])
    with pytest.raises(ValueError, match=r"^max_safe_scale: grads must name at least one"):
        mixed_precision.max_safe_scale({})


@pytest.mark.parametrize("grads, where", [([torch.tensor([math.nan, math.nan])], r"grads\[0\]"),
                                          (torch.tensor([1.0, math.inf]), "grads"),
                                          ({"fc1.weight": torch.tensor([0.5, math.nan])}, r"grads\['fc1.weight'\]")])
def test_non_finite_gradients_are_refused(grads, where):
    for func in (mixed_precision.underflow_fraction, mixed_precision.overflow_fraction,
                 mixed_precision.max_safe_scale):
        with pytest.raises(ValueError, match=rf"^{func.__name__}: {where} must be finite"):
            func(grads)
    step = r"grads\[0\]" + where[len("grads"):]                  # the first (and only) step's gradients
    with pytest.raises(ValueError, match=rf"^scaled_underflow: {step} must be finite"):
        mixed_precision.scaled_underflow([grads], mixed_precision.LossScaler())


def test_scaled_underflow_of_zero_gradients_is_not_a_division_by_zero():
    scaler = mixed_precision.LossScaler()
    with pytest.raises(ValueError, match="^scaled_underflow: grads must hold at least one non-zero value"):
        mixed_precision.scaled_underflow([torch.zeros(3)], scaler)
    assert scaler.history == []                                      # refused before any step was taken


def test_lost_updates_refuses_non_finite_updates():
    w = torch.ones(3)
    with pytest.raises(ValueError, match=r"^lost_updates: updates must be finite \(no NaN or inf\); got nan"):
        mixed_precision.lost_updates(w, torch.full((3,), math.nan))
    with pytest.raises(TypeError, match="^lost_updates: updates must be a torch.Tensor"):
        mixed_precision.lost_updates(w, math.nan)
    with pytest.raises(ValueError, match="^lost_updates: weights must be finite"):
        mixed_precision.lost_updates(torch.tensor([1.0, math.inf, 1.0]), torch.ones(3))
    assert mixed_precision.lost_updates(w, torch.full((3,), 1e-4)) == 1.0


# ----------------------------------------------------------------------- parallel
def test_launch_refuses_a_lambda_clearly():
    with pytest.raises(TypeError, match=r"^launch: fn must be a module-level function \(importable by its module "
                                        r"path.*not a lambda"):
        P.launch(lambda r, w: 1, 2)

    def nested(rank, world_size):
        return rank

    with pytest.raises(TypeError, match="^launch: fn must be a module-level function"):
        P.launch(nested, 2)
    with pytest.raises(TypeError, match=r"^launch: args must be a tuple"):
        P.launch(P.hello, 2, "x")


def test_global_batches_checks_when_called_not_when_drawn():
    with pytest.raises(ValueError, match=r"^global_batches: global_batch must be an integer in \[1, 10\]; got 11\."):
        P.global_batches(10, 11, 1)


def test_max_abs_diff_refuses_shapes_and_values_it_cannot_compare():
    with pytest.raises(ValueError, match=r"^max_abs_diff: b\['w'\] must have the shape of a\['w'\]"):
        P.max_abs_diff({"w": torch.zeros(2)}, {"w": torch.zeros(3)})
    with pytest.raises(TypeError, match=r"^max_abs_diff: a\['w'\] must be a torch.Tensor"):
        P.max_abs_diff({"w": 1.0}, {"w": torch.zeros(1)})
    with pytest.raises(ValueError, match=r"^max_abs_diff: b\['w'\] must be finite"):
        P.max_abs_diff({"w": torch.zeros(1)}, {"w": torch.tensor([math.nan])})


# ------------------------------------------------------------------- distillation
@pytest.mark.parametrize("batch_size, exc", [(0, ValueError), (2.5, TypeError), ("3", TypeError), (None, TypeError),
                                             (True, TypeError)])
def test_teacher_logits_refuses_a_bad_batch_size(batch_size, exc):
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    with pytest.raises(exc, match=r"^teacher_logits: batch_size must be an integer in \[1, inf\]; got "):
        distillation.teacher_logits(teacher, _split(), batch_size=batch_size)
    assert distillation.teacher_logits(teacher, _split(), batch_size=3).shape == (4, 10)


# ---------------------------------------------------- n_bits: one name for a bit width
def test_bit_widths_are_n_bits():
    assert roofline.fc_work(10, 10, n_bits_weight=32, n_bits_act=16).weight_bytes == 400
    assert roofline.lstm_cell_work(4, 4, n_bits_weight=16).weight_bytes == 2 * 4 * 4 * 8
    assert len(roofline.network_work("lenet300", n_bits_weight=4, n_bits_act=4)) == 3
    assert energy.inference_energy(1, 1, n_bits_weight=8)["n_bits_weight"] == 8
    with pytest.raises(TypeError, match="^fc_work: got an unexpected keyword argument 'weight_bits'"):
        roofline.fc_work(10, 10, weight_bits=8)
    with pytest.raises(ValueError, match=r"^conv_work: n_bits_act must be an integer in \[1, 64\]; got 0\."):
        roofline.conv_work(3, 4, 3, 8, n_bits_act=0)
