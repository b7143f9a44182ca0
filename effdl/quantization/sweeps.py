"""Accuracy against bit width: post-training and fine-tuned sweeps over layers and clipping.

Taught in chapter 5, "Quantization".
"""
from __future__ import annotations

import copy
from typing import Iterable

from torch import nn

from ..data import Split
from ..train import evaluate, fit
from ..validation import (Bool, Instance, Interval, ListOf, Module, Options, PositiveInt, Seed, check_part,
                          validate_params)
from .common import MODEL_BITS, PERCENTILE, SPLIT
from .stats import _iter_batches, collect_activation_stats
from .scales import WEIGHT_CLIPS
from .fake import finetune_quantized, quantize_model

# ---------------------------------------------------------------------------
# 7. The chapter's sweep and the reproduce report
# ---------------------------------------------------------------------------

MODES = ("w", "a", "wa")


@validate_params(model=Module(), train=SPLIT, val=SPLIT, test=SPLIT, bit_widths=ListOf(Interval(int, *MODEL_BITS)),
                 modes=ListOf(Options(MODES)), finetune=Bool(), epochs=Interval(int, 0, None),
                 lr_grid=ListOf(Interval(float, 0, None, closed="neither"), nonempty=False),
                 percentiles=ListOf(PERCENTILE), w_clips=ListOf(Options(WEIGHT_CLIPS)), per_channel=Bool(),
                 power_of_two=Bool(), calibration=Options(("sequential", "float")), n_batches=PositiveInt(),
                 seed=Seed(), show_progress=Bool(optional=True))
def sweep_bits(model: nn.Module, train: Split, val: Split, test: Split, *, bit_widths: Iterable[int] = (8, 6, 4, 2),
               modes: Iterable[str] = ("w", "a", "wa"), finetune: bool = False, epochs: int = 3,
               lr_grid: Iterable[float] = (0.003, 0.001), percentiles: Iterable[float | None] = (None, 99.99, 99.9),
               w_clips: Iterable[str] = WEIGHT_CLIPS, per_channel: bool = True, power_of_two: bool = True,
               calibration: str = "sequential", n_batches: int = 4, seed: int = 0,
               show_progress: bool | None = None) -> dict:
    """Accuracy vs bit width for weights only (``"w"``), activations only (``"a"``) and both (``"wa"``).

    For each bit width and mode: post-training quantization calibrated
    (``calibration``, see :func:`quantize_model`) on the first
    ``n_batches`` × 256 ``train`` images, with the activation
    clipping (min/max or a percentile of ``percentiles``) and the weight
    clipping (of ``w_clips``) chosen on ``val``; then, if
    ``finetune``, quantization-aware fine-tuning for ``epochs`` epochs at
    each learning rate of ``lr_grid``, keeping the best on ``val``. Test
    accuracy is computed only for the chosen models.

    With ``finetune`` the float model is also trained on in the same way
    (same epochs, lr grid, selection on ``val``), reported as ``fp_ft_*``:
    the fair baseline for the fine-tuned rows.

    Returns
    -------
    dict
        ``{"fp_val_acc", "fp_test_acc"[, "fp_ft_lr", "fp_ft_val_acc",
        "fp_ft_test_acc"], "rows": [{"bits", "mode", "percentile",
        "w_clip", "val_acc", "test_acc"[, "ft_lr", "ft_epoch", "ft_val_acc",
        "ft_test_acc"]}, …]}``; :func:`bits_table` turns it into the
        ``{"8": {"w": …, "a": …, "wa": …}, …}`` table.

    Behind chapter 05, "Quantization".
    """
    if finetune and not lr_grid:
        raise ValueError("sweep_bits: lr_grid must hold at least one learning rate when finetune is set; got [].")
    calib = list(_iter_batches(train, n_batches, 256, "train", "sweep_bits"))
    if calibration == "float":   # one pass on the float model serves every configuration
        wanted = sorted({q for p in percentiles if p is not None for q in (100.0 - p, p)})
        calib = collect_activation_stats(model, calib, percentiles=wanted)
    out = {"fp_val_acc": evaluate(model, val), "fp_test_acc": evaluate(model, test), "rows": []}
    if finetune:   # the float model trained on the same way: does fine-tuning help beyond undoing quantization?
        best = None
        for lr in lr_grid:
            cand = copy.deepcopy(model)
            hist = fit(cand, train, epochs=epochs, lr=lr, val=val, keep_best=True, seed=seed,
                       show_progress=show_progress)
            if best is None or hist.best_val_acc > best[1].best_val_acc:
                best = (cand, hist, lr)
        out.update(fp_ft_lr=best[2], fp_ft_val_acc=best[1].best_val_acc, fp_ft_test_acc=evaluate(best[0], test))
    for b in bit_widths:
        for mode in modes:
            n_bits_weight, n_bits_act = (b if "w" in mode else None), (b if "a" in mode else None)
            best = None                           # first best on val wins: min/max before clipping
            for clip in (w_clips if n_bits_weight else [w_clips[0]]):
                for p in (percentiles if n_bits_act else [None]):
                    qm = quantize_model(model, n_bits_weight, n_bits_act, calib, per_channel=per_channel,
                                        power_of_two=power_of_two, percentile=p, w_clip=clip)
                    acc = evaluate(qm, val)
                    if best is None or acc > best[1]:
                        best = (qm, acc, p, clip)
            qm, val_acc, p, clip = best
            row = {"bits": b, "mode": mode, "percentile": p, "w_clip": clip if n_bits_weight else None,
                   "val_acc": val_acc, "test_acc": evaluate(qm, test)}
            if finetune:
                ft = None
                for lr in lr_grid:
                    cand = copy.deepcopy(qm)
                    hist = finetune_quantized(cand, train, val, epochs=epochs, lr=lr, seed=seed,
                                              show_progress=show_progress)
                    if ft is None or hist.best_val_acc > ft[1].best_val_acc:
                        ft = (cand, hist, lr)
                cand, hist, lr = ft
                row.update(ft_lr=lr, ft_epoch=hist.best_epoch, ft_val_acc=hist.best_val_acc,
                           ft_test_acc=evaluate(cand, test))
            out["rows"].append(row)
    return out


@validate_params(sweep=Instance(dict, "a sweep_bits result"),
                 key=Options(("test_acc", "val_acc", "ft_test_acc", "ft_val_acc")))
def bits_table(sweep: dict, key: str = "test_acc") -> dict:
    """``{"8": {"w": acc, "a": acc, "wa": acc}, …}`` from a :func:`sweep_bits` result (``key``: which accuracy).

    Behind chapter 05, "Quantization".
    """
    rows = check_part("bits_table", ListOf(Instance(dict, "a row (dict)"), nonempty=False), "sweep['rows']",
                      sweep.get("rows"))
    for i, row in enumerate(rows):
        missing = [k for k in ("bits", "mode", key) if k not in row]
        if missing:
            raise ValueError(f"bits_table: sweep['rows'][{i}] must have the keys 'bits', 'mode' and {key!r} "
                             f"(a sweep_bits row{' with finetune' if key.startswith('ft_') else ''}); "
                             f"got one without {missing}.")
    table: dict = {}
    for row in rows:
        table.setdefault(str(row["bits"]), {})[row["mode"]] = row[key]
    return table
