"""A whole training step on a CUDA GPU in four precisions: how much of the matmul speed-up survives.

The methods follow Micikevicius et al., *Mixed Precision Training* (ICLR
2018): ``torch.autocast`` for the forward pass, ``torch.amp.GradScaler`` for
fp16's loss scaling. :func:`small_cnn` is the network timed; its name and
parameter count go into the result, so figures of different networks are
never read as one series.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from ...train import seeded
from ...validation import Interval, ListOf, Module, Options, PositiveInt, Seed, Tensor, validate_params
from . import device as dev
from .device import _event_ms, _require_cuda, _tf32


STEP_MODES = ("fp32", "tf32", "amp_bf16", "amp_fp16")
SMALL_CNN_WIDTHS = (64, 128, 256)


@validate_params(n_classes=Interval(int, 2, None))
def small_cnn(n_classes: int = 10) -> nn.Module:
    """A small CIFAR-sized CNN (3×32×32 input): three conv-BN-ReLU-pool stages and a linear layer.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    layers, c_in = [], 3
    for c_out in SMALL_CNN_WIDTHS:
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                   nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
                   nn.MaxPool2d(2)]
        c_in = c_out
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, n_classes))


@validate_params(model=Module(), x=Tensor(convert=False), y=Tensor(dtype=None, convert=False),
                 mode=Options(STEP_MODES))
def make_train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, mode: str = "fp32"):
    """A closure doing one SGD step (lr 0.01, momentum 0.9) of ``model`` on ``(x, y)`` in precision ``mode``.

    ``amp_bf16`` / ``amp_fp16`` run the forward pass under ``torch.autocast``
    on ``x``'s device type; ``amp_fp16`` scales the loss with
    ``torch.amp.GradScaler`` (skipping the step on inf/NaN gradients, as
    Micikevicius et al. prescribe). ``tf32`` differs from ``fp32`` only by
    the TF32 switch the caller sets. The closure returns the loss.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    device = x.device.type
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    amp_dtype = {"amp_bf16": torch.bfloat16, "amp_fp16": torch.float16}.get(mode)
    scaler = torch.amp.GradScaler(device, enabled=mode == "amp_fp16")

    def step():
        autocast = contextlib.nullcontext() if amp_dtype is None else torch.autocast(device, dtype=amp_dtype)
        with autocast:
            loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        return loss.detach()

    step.scaler = scaler
    return step


@validate_params(batch_size=PositiveInt(), image_size=Interval(int, 8, None), steps=PositiveInt(),
                 repeats=PositiveInt(), warmup=Interval(int, 0, None), modes=ListOf(Options(STEP_MODES)), seed=Seed())
def training_step_times(*, batch_size: int = 256, image_size: int = 32, steps: int = 10, repeats: int = 3,
                        warmup: int = 5, modes=STEP_MODES, seed: int = 0) -> dict:
    """Milliseconds per SGD training step of :func:`small_cnn` on random images, per precision mode.

    ``fp32`` (TF32 forbidden), ``tf32`` (fp32 with TF32 Tensor Cores),
    ``amp_bf16`` (``torch.autocast`` bf16, TF32 forbidden for what stays
    fp32) and ``amp_fp16`` (the same in fp16, with ``torch.amp.GradScaler``,
    whose inf check waits for the GPU once a step). Every mode starts from
    the same weights and data; ``steps`` steps run back to back per timing.
    Returns ``{"model": {"name", "n_params", "input"}, "step_ms": {mode: ms},
    "speedup": {mode: fp32 ms ÷ mode ms}, ...}``.

    Behind chapter 16, "Appendix: measured on a GPU".
    """
    _require_cuda("training_step_times")
    g = torch.Generator(device=dev.DEVICE).manual_seed(seed)
    x = torch.randn(batch_size, 3, image_size, image_size, generator=g, device=dev.DEVICE)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch_size,), generator=g, device=dev.DEVICE)
    with seeded(seed):                                   # the same initial weights for every mode
        initial = small_cnn().state_dict()
    n_params = sum(v.numel() for k, v in initial.items() if not k.endswith(("running_mean", "running_var",
                                                                            "num_batches_tracked")))
    out = {"model": {"name": "small_cnn", "n_params": n_params, "input": f"3×{image_size}×{image_size}"},
           "batch_size": batch_size, "image_size": image_size, "steps": steps, "step_ms": {}}
    for mode in modes:
        model = small_cnn().to(dev.DEVICE)
        model.load_state_dict(initial)
        step = make_train_step(model.to(memory_format=torch.channels_last), x, y, mode)
        with _tf32(mode == "tf32"):
            out["step_ms"][mode] = _event_ms(step, calls=steps, repeats=repeats, warmup=warmup)
    if "fp32" in out["step_ms"]:
        out["speedup"] = {m: out["step_ms"]["fp32"] / t for m, t in out["step_ms"].items()}
    return out
