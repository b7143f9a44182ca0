"""Chapter 6's precomputed binary and ternary networks (``effdl precompute ternary``).

For LeNet-5 and LeNet-300-100, starting from the zoo's full-precision
checkpoints, every Linear/Conv2d layer is quantised (``effdl.ternary``) by

- **binary** — α · sign(w), α = mean |w|, straight-through to latent weights;
- **twn** — ternary weight networks, Δ = 0.7 · E|w|, one scale;
- **ttq** — trained ternary quantization, Δ = 0.05 · max|w̃|, learned Wp, Wn,

and fine-tuned on the training split for up to :data:`EPOCHS` epochs with
Adam at each learning rate of :data:`LR_GRID`; the epoch and the learning
rate are chosen on the **validation** split and the chosen model is then
evaluated once on the **test** split. Its weights are frozen (plain weights
holding the two or three values) and saved as ``data/zoo/{arch}_{method}.pt``;
the record keeps the grid, per-layer Wp / Wn / fractions, the size accounting
and the weight history of the chosen run (Wp, Wn and the fractions of
positive, zero and negative weights every :data:`RECORD_EVERY` steps).

Two controls, recorded but not saved as checkpoints:

- **fp_finetuned** — the full-precision model fine-tuned by the same recipe,
  so that a ternary model's gain over the zoo model is not mistaken for a
  gain from quantisation when it is the extra training;
- **ttq_paper_layers** (LeNet-5) — TTQ with the paper's layer policy, the
  first conv and the last fc kept in full precision.

Why Adam: the gradient of a TTQ scale is a sum over every weight of its side
of the layer (Σ over ~200,000 weights in LeNet-5's fc1), while each latent
weight gets one term; no single SGD learning rate suits both (the record's
``sgd_probe``: one epoch of SGD from the same start, at the rates given).
Adam scales each parameter's step by its own gradient history.
"""
from __future__ import annotations

import os
import copy

from .. import ternary, zoo
from ..data import load_mnist
from ..train import evaluate, fit
from . import load_record
from ..validation import Instance, validate_params


SEED = 0
ARCHS = ("lenet5", "lenet300")
METHODS = ternary.METHODS
EPOCHS = 6
LR_GRID = [1e-4, 3e-4, 1e-3]    # Adam
OPTIMIZER = "adam"
BATCH_SIZE = 64
RECORD_EVERY = 10               # optimizer steps between two points of the weight history
SGD_PROBE_LRS = [1e-3, 1e-2]    # one epoch of SGD (momentum 0.9) on LeNet-5 TTQ


def _splits():
    return tuple(load_mnist(s, source="embedded") for s in ("train", "val", "test"))


def _run(model, train, val, lr, *, record: bool):
    """Fine-tune ``model`` in place at ``lr``; return (run dict, weight history or None)."""
    kwargs = dict(epochs=EPOCHS, lr=lr, optimizer=OPTIMIZER, batch_size=BATCH_SIZE, val=val, keep_best=True,
                  seed=SEED, show_progress=False)
    if record:
        fit_history, weights = ternary.train(model, train, record_every=RECORD_EVERY, **kwargs)
    else:
        fit_history, weights = fit(model, train, **kwargs), None
    return {"lr": lr, "val": fit_history.best_val_acc, "best_epoch": fit_history.best_epoch,
            "val_per_epoch": fit_history.val_acc}, weights


def _grid(make, train, val, *, record: bool):
    """Every lr of the grid on a fresh ``make()``; the best on validation (first on a tie)."""
    runs, best = [], None
    for lr in LR_GRID:
        model = make()
        run, weights = _run(model, train, val, lr, record=record)
        runs.append(run)
        if best is None or run["val"] > best[1]["val"]:
            best = (model, run, weights)
    return best, runs


def _rounded(stats: dict, digits: int = 6) -> dict:
    return {name: {k: round(v, digits) for k, v in s.items()} for name, s in stats.items()}


def _method(arch, method, splits, out_dir, layers=None, save=True) -> dict:
    train, val, test = splits
    base = zoo.load(arch)
    (model, run, weights), runs = _grid(lambda: ternary.ternarized_copy(base, method, layers=layers),
                                        train, val, record=True)
    chosen_layers = ternary.layer_names(base) if layers is None else list(layers)
    ternary.freeze(model)
    if save:
        zoo.save_checkpoint(model, f"{arch}_{method}", arch, out_dir)
    size = ternary.model_size(model, method, layers=chosen_layers)
    out = {"layers_quantized": chosen_layers, "lr": run["lr"], "best_epoch": run["best_epoch"],
           "val": run["val"], "test": evaluate(model, test), "grid": runs,
           "layer_stats": _rounded(ternary.layer_stats(model)),
           "size": {"bytes": size["bytes"], "fp32_bytes": size["fp32_bytes"], "ratio": round(size["ratio"], 3),
                    "layers": size["layers"]},
           "history": weights.as_dict(digits=6)}
    print(f"{arch} {method}{'' if layers is None else ' (paper layers)'}: lr {run['lr']:g}, epoch "
          f"{run['best_epoch']}, val {run['val']}, test {out['test']}, {out['size']['ratio']:.1f}× smaller")
    return out


def _fp_finetuned(arch, splits) -> dict:
    train, val, test = splits
    base = zoo.load(arch)
    (model, run, _), runs = _grid(lambda: copy.deepcopy(base), train, val, record=False)
    return {"lr": run["lr"], "best_epoch": run["best_epoch"], "val": run["val"], "test": evaluate(model, test),
            "grid": runs}


def _sgd_probe(splits) -> list[dict]:
    train, val, _ = splits
    base = zoo.load("lenet5")
    rows = []
    for lr in SGD_PROBE_LRS:
        model = ternary.ternarized_copy(base, "ttq")
        start = evaluate(model, val)
        try:
            h = fit(model, train, epochs=1, lr=lr, optimizer="sgd", momentum=0.9, batch_size=BATCH_SIZE,
                    val=val, keep_best=False, seed=SEED, show_progress=False)
        except FloatingPointError:       # the loss itself overflowed
            rows.append({"lr": lr, "val_start": start, "val_after_1_epoch": None, "diverged": True})
            continue
        scales = {n: [round(s["wp"], 6), round(s["wn"], 6)] for n, s in ternary.layer_stats(model).items()}
        rows.append({"lr": lr, "val_start": start, "val_after_1_epoch": h.val_acc[-1], "diverged": False,
                     "wp_wn_after": scales})
    return rows


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Train and save the binary / TWN / TTQ models of both LeNets; return the record.

    Taught in chapter 06, "Binary and ternary nets".
    """
    splits = _splits()
    _, val, test = splits
    record = {"seed": SEED, "data": "embedded MNIST subset: train 3,500 · val 500 · test 1,000",
              "optimizer": OPTIMIZER, "batch_size": BATCH_SIZE, "epochs_max": EPOCHS, "lr_grid": LR_GRID,
              "record_every": RECORD_EVERY, "ttq_t": ternary.TTQ_T, "twn_factor": ternary.TWN_FACTOR,
              "selection": "learning rate and epoch chosen on the validation split; test evaluated once",
              "layer_policy": "every Linear and Conv2d layer quantised; biases and scales in fp32 "
                              "(ttq_paper_layers: the TTQ paper's policy, first and last layer in fp32)"}
    for arch in ARCHS:
        dense = zoo.load(arch)
        rec = {"fp": {"val": evaluate(dense, val), "test": evaluate(dense, test),
                      "bytes": ternary.model_size(dense, "ttq")["fp32_bytes"]},
               "fp_finetuned": _fp_finetuned(arch, splits)}
        print(f"{arch} fp: test {rec['fp']['test']}, fine-tuned {rec['fp_finetuned']['test']}")
        rec["methods"] = {m: _method(arch, m, splits, out_dir) for m in METHODS}
        if arch == "lenet5":
            rec["ttq_paper_layers"] = _method(arch, "ttq", splits, out_dir, layers=ternary.paper_layers(dense),
                                              save=False)
        record[arch] = rec
    record["sgd_probe"] = _sgd_probe(splits)
    return record


# ------------------------------------------------------------------ reproduce
@validate_params(record=Instance(dict, "a record dict (load_record(...))", optional=True))
def ternary_report(record: dict | None = None) -> dict:
    """The chapter's headline numbers (``effdl reproduce ternary --json``).

    Evaluates the shipped checkpoints — the zoo's full-precision model and
    the frozen binary, TWN and TTQ models — once on the test split, reads
    TTQ's learned scales back from the checkpoint's weight values, and counts
    the bytes of the TTQ model (2-bit weights, fp32 biases and scales). The
    record (default ``load_record("ternary")``) adds how each was chosen and
    the paper-policy control.

    Behind chapter 06, "Binary and ternary nets".
    """
    if record is None:
        record = load_record("ternary")
    test = load_mnist("test", source="embedded")
    out = {}
    for arch in ARCHS:
        dense = zoo.load(arch)
        row = {"fp_acc": evaluate(dense, test)}
        models = {m: zoo.load(f"{arch}_{m}") for m in METHODS}
        for m, model in models.items():
            row[f"{m}_acc"] = evaluate(model, test)
        stats = ternary.layer_stats(models["ttq"])
        row["ttq_wp_wn"] = {n: [round(s["wp"], 5), round(s["wn"], 5)] for n, s in stats.items()}
        row["ttq_zero_fraction"] = {n: round(s["zero"], 4) for n, s in stats.items()}
        row["size_ratio"] = round(ternary.model_size(models["ttq"], "ttq")["ratio"], 2)
        row["binary_size_ratio"] = round(ternary.model_size(models["binary"], "binary")["ratio"], 2)
        row["fp_finetuned_acc"] = record[arch]["fp_finetuned"]["test"]
        row["chosen_lr"] = {m: record[arch]["methods"][m]["lr"] for m in METHODS}
        if "ttq_paper_layers" in record[arch]:
            paper = record[arch]["ttq_paper_layers"]
            row["ttq_paper_layers"] = {"acc": paper["test"], "size_ratio": round(paper["size"]["ratio"], 2)}
        out[arch] = row
    return out
