"""Chapter 4's precomputed Deep Compression runs (``effdl precompute compression``).

For LeNet-300-100 and LeNet-5, starting from chapter 2's pruned checkpoints:

1. **Paper settings** — the weight-index widths of Han, Mao and Dally
   (ICLR 2016, Table 2: 6 bits for LeNet-300-100; 8 conv / 5 fc for LeNet-5)
   and 5-bit relative indexes, with centroid fine-tuning. The fine-tuning
   learning rate is chosen here on the validation split from :data:`LRS`.
2. **Widths chosen on validation** — a greedy search per layer, largest
   layer first: lower a layer's width one bit at a time while the
   fine-tuned, Huffman-coded model read back from its file is no worse on
   validation than with the paper's widths — neither in accuracy nor in
   cross-entropy (:func:`greedy_bits`). The loss matters: 500 validation
   images move the accuracy in steps of 0.2 points, too coarse alone.
   (Comparing with the *pruned* float model instead refuses every width,
   the paper's included: any quantization raises the loss a little.)
   Relative-index widths
   are chosen per layer to minimise the file (``index_bits="auto"``).

The chosen model is written as ``data/zoo/{arch}.dc`` (the file the chapter
measures) and evaluated once on the test split. Every trial of the search
is in the record, so the chapter can show what was tried.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .. import compression, zoo
from ..data import load_mnist, verified_path
from ..train import evaluate, mean_loss, progress
from . import load_record, rerun_check
from ..validation import Instance, Interval, Module, Unchecked, validate_params


ARCHS = ("lenet300", "lenet5")
LRS = [3e-4, 1e-3, 3e-3]      # centroid fine-tuning learning rates tried (chosen on val)
EPOCHS = 4                    # fine-tuning epochs; the best epoch is chosen on val
MIN_BITS = 2
SEED = 0


def _trial(pruned, dense, bits: dict, index_bits, lr: float, splits, path: Path) -> dict:
    train, val, _ = splits
    r = compression.deep_compression(pruned, path=path, n_bits=dict(bits), index_bits=index_bits,
                                     finetune=(train, val), epochs=EPOCHS, lr=lr, eval_split=val,
                                     dense_model=dense, seed=SEED)
    return {"bits": dict(r.bits), "index_bits": r.index_bits, "lr": lr, "file_bytes": r.sizes["huffman"],
            "ratio": round(r.ratio, 2), "val_file": r.accuracy["file"], "val_pruned": r.accuracy["pruned"],
            "val_loss_file": round(mean_loss(compression.read_compressed(path), val), 5),
            "outputs_match": r.outputs_match}


@validate_params(pruned=Module(), dense=Module(optional=True),
                 start=Instance(dict, "a dict of layer → bit width"),
                 lr=Interval(float, 0, None, closed="neither"),
                 splits=Unchecked("(train, val, test) Splits, passed to fit"),
                 work=Instance((str, os.PathLike), "a folder path"), floor=Interval(float, 0, 100),
                 max_loss=Interval(float, 0, None))
def greedy_bits(pruned, dense, start: dict, lr: float, splits, work: Path, *, floor: float,
                max_loss: float) -> tuple[dict, list]:
    """Lower each layer's width (largest layer first) while the file's val accuracy stays
    ≥ ``floor`` and its val cross-entropy ≤ ``max_loss``.

    Returns the chosen widths and every trial made.

    Behind chapter 04, "Huffman coding and Deep Compression".
    """
    sizes = {n: int((p != 0).sum()) for n, p in pruned.named_parameters() if n in start}
    bits, trials = dict(start), []
    for name in sorted(sizes, key=sizes.get, reverse=True):
        while bits[name] > MIN_BITS:
            candidate = {**bits, name: bits[name] - 1}
            t = _trial(pruned, dense, candidate, "auto", lr, splits, work / "trial.dc")
            t["accepted"] = t["val_file"] >= floor and t["val_loss_file"] <= max_loss
            trials.append(t)
            if not t["accepted"]:
                break
            bits = candidate
    return bits, trials


def _arch(arch: str, splits, out_dir: Path) -> dict:
    train, val, test = splits
    dense, pruned = zoo.load(arch), zoo.load(f"{arch}_pruned")
    paper_bits = compression.DEFAULT_BITS[arch]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lr_trials = [_trial(pruned, dense, paper_bits, compression.DEFAULT_INDEX_BITS, lr, splits, work / "lr.dc")
                     for lr in progress(LRS, desc=f"{arch}: learning rate")]
        best = max(lr_trials, key=lambda t: (t["val_file"], -LRS.index(t["lr"])))
        lr = best["lr"]
        floor, max_loss = best["val_file"], best["val_loss_file"]      # the paper's recipe on val
        bits, trials = greedy_bits(pruned, dense, paper_bits, lr, splits, work, floor=floor, max_loss=max_loss)
    path = Path(out_dir) / f"{arch}.dc"
    final = compression.deep_compression(pruned, path=path, n_bits=bits, index_bits="auto",
                                         finetune=(train, val), epochs=EPOCHS, lr=lr, eval_split=test,
                                         dense_model=dense, seed=SEED)
    with tempfile.TemporaryDirectory() as tmp:
        paper = compression.deep_compression(pruned, path=Path(tmp) / "paper.dc", n_bits=paper_bits,
                                             index_bits=compression.DEFAULT_INDEX_BITS, finetune=(train, val),
                                             epochs=EPOCHS, lr=lr, eval_split=test, dense_model=dense, seed=SEED)
    summary = final.summary()
    summary["path"] = path.name
    return {"arch": arch, "lr": lr, "epochs": EPOCHS, "val_floor": floor, "val_max_loss": max_loss,
            "lr_trials": lr_trials,
            "greedy_trials": trials, "chosen": summary,
            "paper_settings": {k: v for k, v in paper.summary().items() if k != "path"}}


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Choose the fine-tuning rate and then each layer's width on validation; write both files to ``out_dir``.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    splits = tuple(load_mnist(s, source="embedded") for s in ("train", "val", "test"))
    record = {"seed": SEED, "lrs": LRS, "epochs": EPOCHS,
              "selection": ("lr: best val accuracy of the file at the paper's widths; widths: greedy, largest "
                            "layer first, while the file's val accuracy ≥ and val cross-entropy ≤ those at the "
                            "paper's widths; test evaluated once")}
    for arch in ARCHS:
        record[arch] = _arch(arch, splits, Path(out_dir))
        c = record[arch]["chosen"]
        print(f"{arch}: bits {c['bits']}, {c['sizes']['huffman']} bytes, {c['ratio']}×, "
              f"test {c['accuracy']['dense']} → {c['accuracy']['file']}")
    return record


# A rebuilt file may differ from the shipped one by a few bytes on another CPU (a centroid rounded
# differently changes the Huffman codes); 2 % of the file is far more than that and far less than a
# change of bit widths (one bit less in fc1 is ~10 % of LeNet-300-100's file).
REBUILD_BYTES_TOLERANCE = 0.02


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path", optional=True))
def compression_report(*, out_dir: Path | str | None = None) -> dict:
    """``effdl reproduce deep-compression``: the shipped files measured, and a rebuild checked against them.

    The headline is the shipped file ``data/zoo/{arch}.dc``: its size on disk
    (``os.path.getsize``) and the test accuracy of the model read back from
    it, with the record's sizes and accuracies for the earlier stages — the
    same on every machine. ``live`` re-runs the pipeline with the widths and
    learning rate in the record (seeded), writes the file into ``out_dir`` (a
    temporary folder by default) and compares it with the shipped one: its
    accuracy by :func:`effdl.precompute.rerun_check`, its size within
    :data:`REBUILD_BYTES_TOLERANCE`. ``same_as_shipped`` says whether it is
    byte-identical (it is on the CPU that wrote the record; other kernels may
    round a centroid differently).

    Behind chapter 04, "Huffman coding and Deep Compression".
    """


    record = load_record("compression")
    train, val, test = (load_mnist(s, source="embedded") for s in ("train", "val", "test"))
    out, recorded, live, rebuilt = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out_dir) if out_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for arch in ARCHS:
            chosen = record[arch]["chosen"]
            shipped = verified_path(f"zoo/{arch}.dc")
            file_bytes = os.path.getsize(shipped)
            acc_file = evaluate(compression.read_compressed(shipped), test)
            sizes, acc = chosen["sizes"], chosen["accuracy"]

            def stage(n_bytes: int, accuracy: float) -> dict:
                return {"bytes": int(n_bytes), "ratio": round(sizes["dense"] / n_bytes, 2), "acc": accuracy}

            out[arch] = {
                "dense_bytes": int(sizes["dense"]), "file_bytes": int(file_bytes),
                "ratio": round(sizes["dense"] / file_bytes, 2),
                "acc_dense": acc["dense"], "acc_compressed": acc_file,
                "stages": {"pruned": stage(sizes["pruned"], acc["pruned"]),
                           "quantized": stage(sizes["quantized"], acc["finetuned"]),
                           "huffman": stage(file_bytes, acc_file)},
                "bits": chosen["bits"], "index_bits": chosen["index_bits"], "outputs_match": chosen["outputs_match"],
            }
            dense, pruned = zoo.load(arch), zoo.load(f"{arch}_pruned")
            path = folder / f"{arch}.dc"
            compression.deep_compression(pruned, path=path, n_bits=chosen["bits"], index_bits="auto",
                                         finetune=(train, val), epochs=record[arch]["epochs"],
                                         lr=record[arch]["lr"], eval_split=test, dense_model=dense, seed=SEED)
            recorded[arch], live[arch] = acc_file, evaluate(compression.read_compressed(path), test)
            rebuilt[arch] = {"file_bytes": os.path.getsize(path),
                             "bytes_rel_diff": round(abs(os.path.getsize(path) - file_bytes) / file_bytes, 4),
                             "same_as_shipped": path.read_bytes() == shipped.read_bytes()}
    check = rerun_check(recorded, live)
    bytes_ok = all(r["bytes_rel_diff"] <= REBUILD_BYTES_TOLERANCE for r in rebuilt.values())
    out["live"] = {**check, "rebuilt": rebuilt, "bytes_tolerance": REBUILD_BYTES_TOLERANCE,
                   "matches_record": check["matches_record"] and bytes_ok}
    out["matches_record"] = out["live"]["matches_record"]
    return out
