"""Chapter 5's precomputed sweeps (``effdl precompute quantization``): accuracy against bit width.

The analogue, on LeNet-5 (and LeNet-300-100), of the lecture's figure of
GoogLeNet and VGG-16 accuracy against the number of bits of the weights, of
the activations and of both. For each model, each bit width of :data:`BITS`
and each mode — weights only (``"w"``), activations only (``"a"``), both
(``"wa"``) — :func:`effdl.quantization.sweep_bits` measures

1. **post-training quantization** (PTQ): per-channel symmetric power-of-two
   weights, unsigned power-of-two activations at every layer input,
   calibrated sequentially on 1,024 training images; the activation
   clipping (min/max or a percentile) and the weight clipping (min/max or
   least squared error) chosen on the validation split. These are the same
   procedure and the same numbers as ``effdl reproduce quantization``;
2. **quantization-aware fine-tuning** (QAT) of that model with fake
   quantization and the straight-through estimator, for up to
   :data:`EPOCHS` epochs at each learning rate of :data:`LR_GRID`; the
   learning rate and the epoch (0 = no fine-tuning) are chosen on the
   validation split.

The float model is fine-tuned the same way (``fp_ft_*``): the fair baseline
for the fine-tuned rows. At :data:`PTQ_ONLY_BITS` (16 bits) only PTQ is run:
it already matches the float model, and fine-tuning would only repeat the
float baseline. Test accuracy is computed once per chosen configuration and
never used to choose.

No checkpoints: :func:`rebuild` re-creates any row's model from the record
(seeded, deterministic: training for the recorded best epoch ends at the
recorded weights).
"""
from __future__ import annotations

import os
import time

from torch import nn

from .. import quantization as Q, zoo
from ..data import load_mnist
from ..train import evaluate, fit, threads
from . import load_record
from ..validation import Bool, Instance, Interval, Options, Unchecked, validate_params


SEED = 0
THREADS = 1
MODELS = ("lenet5", "lenet300")
BITS = (2, 3, 4, 5, 6, 8)        # PTQ and fine-tuned
PTQ_ONLY_BITS = (16,)            # PTQ only: already at the float accuracy
MODES = ("w", "a", "wa")
EPOCHS = 3
LR_GRID = (0.003, 0.001)         # 1/10 and 1/30 of the zoo models' learning rate (0.03); first wins ties
FT_BATCH_SIZE = 64              # finetune_quantized's default, which sweep_bits uses
SETTINGS = {"per_channel": True, "power_of_two": True, "calibration": "sequential", "n_batches": 4}


def _splits():
    return tuple(load_mnist(s, source="embedded") for s in ("train", "val", "test"))


def _sweep(arch: str, splits) -> dict:
    train, val, test = splits
    model = zoo.load(arch)
    start = time.perf_counter()
    out = Q.sweep_bits(model, train, val, test, bit_widths=BITS, modes=MODES, finetune=True, epochs=EPOCHS,
                       lr_grid=LR_GRID, seed=SEED, show_progress=False, **SETTINGS)
    ptq = Q.sweep_bits(model, train, val, test, bit_widths=PTQ_ONLY_BITS, modes=MODES, finetune=False, seed=SEED,
                       **SETTINGS)
    out["rows"] += ptq["rows"]
    out["seconds"] = round(time.perf_counter() - start)
    for row in out["rows"]:
        print(f"{arch} {row['bits']:2d} bits {row['mode']:2s}: PTQ test {row['test_acc']:.1f}"
              + (f", fine-tuned {row['ft_test_acc']:.1f} (lr {row['ft_lr']:g}, epoch {row['ft_epoch']})"
                 if "ft_test_acc" in row else ""), flush=True)
    return out


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Both models' sweeps; ``out_dir`` is unused (no checkpoints), kept for the common interface.

    Runs with one torch thread (restored afterwards): LeNet's operations are
    too small to gain from a second one, and on a machine shared with other
    jobs a two-thread kernel waits for its slower thread at every operation —
    measured here, one fine-tuning epoch took 25× longer with two threads
    than with one while other jobs ran.

    Behind chapter 05, "Quantization".
    """
    splits = _splits()
    with threads(THREADS):
        models = {arch: _sweep(arch, splits) for arch in MODELS}
    return {"seed": SEED, "threads": THREADS, "data": "embedded MNIST subset: train 3,500 · val 500 · test 1,000",
            "selection": "clipping, learning rate and epoch chosen on the validation split; test evaluated "
                         "once per chosen configuration",
            "bits": list(BITS), "ptq_only_bits": list(PTQ_ONLY_BITS), "modes": list(MODES), "epochs": EPOCHS,
            "lr_grid": list(LR_GRID), "settings": dict(SETTINGS),
            "models": models}


# ------------------------------------------------------------------ reading the record
@validate_params(sweep=Instance(dict, "one model's sweep from the quantization record"),
                 split=Options(("test", "val")))
def curves(sweep: dict, *, split: str = "test") -> dict:
    """Accuracy against bits per mode, from one model's sweep (``record["models"][arch]``).

    Returns ``{mode: {"bits": [...], "ptq": [...], "ft_bits": [...], "ft": [...]}}``
    sorted by bits; ``split`` is ``"test"`` or ``"val"``. Rows without a
    fine-tuned result (16 bits) appear only in the PTQ curve.

    >>> sweep = {"rows": [{"bits": 4, "mode": "w", "test_acc": 90.0, "val_acc": 91.0, "ft_test_acc": 95.0,
    ...                    "ft_val_acc": 96.0}, {"bits": 16, "mode": "w", "test_acc": 97.0, "val_acc": 97.5}]}
    >>> curves(sweep)["w"]
    {'bits': [4, 16], 'ptq': [90.0, 97.0], 'ft_bits': [4], 'ft': [95.0]}

    Taught in chapter 05, "Quantization".
    """
    out: dict = {}
    for row in sorted(sweep["rows"], key=lambda r: r["bits"]):
        c = out.setdefault(row["mode"], {"bits": [], "ptq": [], "ft_bits": [], "ft": []})
        c["bits"].append(row["bits"])
        c["ptq"].append(row[f"{split}_acc"])
        if f"ft_{split}_acc" in row:
            c["ft_bits"].append(row["bits"])
            c["ft"].append(row[f"ft_{split}_acc"])
    return out


@validate_params(sweep=Instance(dict, "one model's sweep from the quantization record"),
                 n_bits=Interval(int, 1, 32), mode=Options(MODES))
def find_row(sweep: dict, n_bits: int, mode: str) -> dict:
    """The row of ``sweep`` for ``n_bits`` and ``mode`` (ValueError if the sweep has none).

    Taught in chapter 05, "Quantization".
    """
    for row in sweep["rows"]:
        if row["bits"] == n_bits and row["mode"] == mode:
            return row
    raise ValueError(f"find_row: n_bits and mode must name a row of the sweep; got {n_bits!r}, {mode!r}.")


@validate_params(arch=Options(MODELS), n_bits=Interval(int, 1, 32), mode=Options(MODES),
                 record=Instance(dict, "a record dict (load_record(...))", optional=True), finetuned=Bool(),
                 splits=Unchecked("(train, val, test) Splits or None; passed to quantize_model and fit"))
def rebuild(arch: str, n_bits: int, mode: str, *, record: dict | None = None, finetuned: bool = True,
            splits=None) -> Q.QuantizedModel:
    """Re-create the model of one row of the record: PTQ as chosen, then (``finetuned``) its fine-tuning.

    Uses the row's chosen clipping, learning rate and best epoch: the
    fine-tuning runs that many epochs of the sweep's seeded SGD
    (:func:`effdl.quantization.finetune_quantized`, batch 64), so the result
    has the weights whose validation accuracy the record chose.
    ``splits`` (train, val, test) default to the embedded MNIST subset;
    ``record`` to ``load_record("quantization")``.

    Taught in chapter 05, "Quantization".
    """
    if record is None:
        record = load_record("quantization")
    row = find_row(record["models"][arch], n_bits, mode)
    train = (splits if splits is not None else _splits())[0]
    settings = record["settings"]
    model: nn.Module = zoo.load(arch)
    calib = list(Q.iter_batches(train, settings["n_batches"], 256, "train"))   # as sweep_bits calibrates
    qm = Q.quantize_model(model, n_bits if "w" in mode else None, n_bits if "a" in mode else None, calib,
                          per_channel=settings["per_channel"], power_of_two=settings["power_of_two"],
                          calibration=settings["calibration"], percentile=row["percentile"],
                          w_clip=row["w_clip"] or Q.WEIGHT_CLIPS[0])
    if finetuned and row.get("ft_epoch"):
        # the first ft_epoch epochs of the sweep's seeded run: same batches, same steps, same weights
        fit(qm, train, epochs=row["ft_epoch"], lr=row["ft_lr"], batch_size=FT_BATCH_SIZE, seed=record["seed"],
            keep_best=False, show_progress=False)
        qm.eval()
    return qm


@validate_params()
def quantization_report() -> dict:
    """Chapter 5's headline numbers (``effdl reproduce quantization``), LeNet-5 on the embedded MNIST subset.

    - ``fp_acc``: the zoo LeNet-5 on the test split.
    - ``bits``: **post-training** quantization (no fine-tuning), per-channel
      symmetric power-of-two weights, unsigned power-of-two activations at
      every layer input, calibrated sequentially on 1,024 training images; the
      activation clipping (min/max, 99.99th or 99.9th percentile) and the
      weight clipping (min/max or least squared error) chosen on validation.
      Test accuracy in percent.
    - ``int_inference_acc`` / ``int_matches_fake_quant``: :class:`effdl.quantization.IntegerLeNet`
      built from the 8-bit weights-and-activations model of ``bits``; the
      flag is True when its predictions *and* float64 logits equal the
      fake-quantized model's on every test image.
    - ``torch_ao_int8_acc``: :func:`effdl.quantization.torch_ao_int8` (x86 backend defaults),
      calibrated on the same images.

    Deterministic: no training and no randomness.

    Behind chapter 05, "Quantization".
    """
    train, val, test = (load_mnist(s, source="embedded") for s in ("train", "val", "test"))
    model = zoo.load("lenet5")
    sweep = Q.sweep_bits(model, train, val, test, finetune=False)
    row8 = next(r for r in sweep["rows"] if r["bits"] == 8 and r["mode"] == "wa")
    qm = Q.quantize_model(model, 8, 8, train, percentile=row8["percentile"], w_clip=row8["w_clip"])
    cmp = Q.compare_integer(qm, test)
    ao = Q.torch_ao_int8(model, train)
    return {"lenet5": {
        "fp_acc": sweep["fp_test_acc"],
        "bits": Q.bits_table(sweep),
        "int_inference_acc": cmp["int_acc"],
        "int_matches_fake_quant": cmp["predictions_equal"] and cmp["logits_equal"],
        "torch_ao_int8_acc": evaluate(ao, test, device="cpu"),
    }}
