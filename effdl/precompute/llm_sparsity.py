"""Chapter 20's record: the book's language model pruned by magnitude, Wanda and SparseGPT (``effdl precompute llm_sparsity``).

The model is the shipped TinyGPT (``load_lm("lm")``, d_model 160, d_ff 640).
Every ``nn.Linear`` of its blocks is pruned (24 layers; the tied embedding /
output head, the norms and the biases stay dense), per output row
(:mod:`effdl.llm.prune`). Calibration: :data:`N_WINDOWS` windows of
:data:`SEQ_LEN` bytes at seeded random starts in the **train** split, the
same windows as chapter 19's; Wanda and SparseGPT go block by block on the
already-pruned model. SparseGPT's damping is the paper's 1 % (not tuned);
its mask block ``B_s`` is chosen on the **validation** split
(:data:`VAL_WINDOWS` windows) among :data:`MASK_BLOCKS`.

Measured, once, in one thread:

- perplexity per byte (``exp`` of the mean cross-entropy in nats) on the
  whole **test** split, dense and for each method at 50 % unstructured and
  at 2:4;
- an unstructured sparsity sweep (:data:`SWEEP`) per method on the first
  :data:`VAL_WINDOWS` windows of the **validation** split (the figure);
- per layer, the relative output error ``‖XWᵀ − XŴᵀ‖² / ‖XWᵀ‖²`` of each
  method on the dense model's calibration inputs, with the least-squares
  optimum for SparseGPT's own mask at 50 %;
- the bytes of the 24 weights at 2:4 stored as values plus 2-bit indices,
  computed (:func:`effdl.llm.prune.nm_storage_bytes`) and written to disk.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np

from ..llm import calibration as cal
from ..llm import prune as pr
from ..train import threads
from ..validation import Dict, Instance, validate_params
from . import load_record
from .llm_quant import N_WINDOWS, SEED, SEQ_LEN, _ppl      # chapter 19's calibration windows
from .lm import load_lm, split_ids

DAMP = 0.01
VAL_WINDOWS = 200
MASK_BLOCKS = [16, 32, 128]
SWEEP = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
METHODS = ("magnitude", "wanda", "sparsegpt")
TARGETS = {"50%": {"sparsity": 0.5}, "2:4": {"pattern": "2:4"}}


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Prune the shipped language model every way chapter 20 compares and return the record.

    Behind chapter 20, "Pruning a language model".
    """
    with threads(1):                  # one thread: the same arithmetic order on every machine
        return _run(Path(out_dir))


def _run(out_dir: Path) -> dict:
    start, timing = time.perf_counter(), {}
    model = load_lm("lm")
    val_ids, test_ids = split_ids("val"), split_ids("test")
    windows = cal.calibration_windows(split_ids("train"), N_WINDOWS, SEQ_LEN, seed=SEED)

    def build(method, mask_block=None, **target):
        t0 = time.perf_counter()
        kw = {"mask_block": mask_block} if mask_block else {}
        p = pr.prune_model(model, method, windows=windows, damp=DAMP, **kw, **target)
        timing[f"{method} {next(iter(target.values()))}"] = round(time.perf_counter() - t0, 1)
        return p

    # SparseGPT's mask block B_s on validation windows
    sweep_bs = [{"mask_block": b, "val_ppl": _ppl(build("sparsegpt", b, sparsity=0.5), val_ids, VAL_WINDOWS)}
                for b in MASK_BLOCKS]
    best = min(sweep_bs, key=lambda r: (r["val_ppl"], -r["mask_block"]))   # a tie: the larger block
    bs = best["mask_block"]
    print(f"sparsegpt mask block {bs} ({sweep_bs})", flush=True)

    dense = _ppl(model, test_ids)
    results, models = {m: {} for m in METHODS}, {}
    for method in METHODS:
        for key, target in TARGETS.items():
            models[method, key] = build(method, bs if method == "sparsegpt" else None, **target)
            results[method][key] = _ppl(models[method, key], test_ids)
            print(method, key, results[method][key], flush=True)
    achieved = {f"{m} {k}": round(pr.model_sparsity(p), 4) for (m, k), p in models.items()}

    sweep = []
    for s in SWEEP:
        for method in METHODS:
            p = models.get((method, "50%")) if s == 0.5 else None
            p = p or build(method, bs if method == "sparsegpt" else None, sparsity=s)
            sweep.append({"method": method, "sparsity": s, "ppl": _ppl(p, val_ids, VAL_WINDOWS)})
        print("sweep", s, flush=True)

    return {"seed": SEED, "threads": 1, "dense_ppl": dense, "results": results, "achieved_sparsity": achieved,
            "calibration": {"split": "train", "n_windows": N_WINDOWS, "seq_len": SEQ_LEN, "seed": SEED},
            "eval": {"split": "test", "bytes": int(test_ids.numel()),
                     "windows": (test_ids.numel() - 1) // model.spec.context},
            "sparsegpt": {"mask_block": bs, "block_size": 128, "damp": DAMP, "sweep": sweep_bs,
                          "val_windows": VAL_WINDOWS, "chosen_on": "validation, 50 % unstructured"},
            "sweep": {"split": "validation (first windows)", "windows": VAL_WINDOWS, "rows": sweep,
                      "dense_ppl": _ppl(model, val_ids, VAL_WINDOWS)},
            "layers": _layer_errors(model, windows, bs), "bytes": _bytes(model, models["sparsegpt", "2:4"]),
            "prune_seconds": timing, "stage_seconds": round(time.perf_counter() - start),
            "timing": "one thread, on the machine that wrote the record (shared with other jobs)"}


def _relative(w, x, w_hat) -> float:
    ref = x.double() @ w.double().T
    return float((ref - x.double() @ w_hat.double().T).pow(2).sum() / ref.pow(2).sum())


def _layer_errors(model, windows, mask_block) -> list[dict]:
    """Per layer: each method's relative output error on the dense model's calibration inputs."""
    xs = cal.capture_inputs(model, windows)
    mods = dict(model.named_modules())
    rows = []
    for name, x in xs.items():
        w, h = mods[name].weight.detach(), cal.hessian(x)
        row = {"layer": name, "shape": list(w.shape)}
        for key, target in TARGETS.items():
            row[f"magnitude {key}"] = _relative(w, x, pr.magnitude(w, **target)[0])
            row[f"wanda {key}"] = _relative(w, x, pr.wanda(w, pr.input_norms(x), **target)[0])
            sg, mask = pr.sparsegpt(w, h, **target, mask_block=mask_block, damp=DAMP)
            row[f"sparsegpt {key}"] = _relative(w, x, sg)
            if key == "50%":
                row["least_squares 50%"] = _relative(w, x, pr.least_squares_reconstruction(w, x, mask))
        rows.append({k: (float(f"{v:.4g}") if isinstance(v, float) else v) for k, v in row.items()})
    return rows


def _bytes(model, pruned) -> dict:
    """2:4 storage of the pruned linear weights: computed (fp32 and fp16 values) and measured on disk (fp32)."""
    shapes = [tuple(model.get_submodule(n).weight.shape) for n in cal.linear_names(model)]
    computed = {}
    for n_bits in (32, 16):
        parts = [pr.nm_storage_bytes(r, c, "2:4", n_bits) for r, c in shapes]
        computed[f"fp{n_bits}"] = {k: sum(p[k] for p in parts) for k in ("dense", "values", "indices", "total")}
    arrays_dense, arrays_nm = {}, {}
    for name, mask in pruned.prune_masks.items():
        w = pruned.get_submodule(name).weight.detach()
        arrays_dense[name] = w.numpy()
        packed = pr.pack_nm(w, "2:4")
        arrays_nm[name + ".values"], arrays_nm[name + ".indices"] = packed["values"].numpy(), packed["indices"]
    with tempfile.TemporaryDirectory() as tmp:
        sizes = {}
        for key, arrays in (("dense", arrays_dense), ("2:4", arrays_nm)):
            path = Path(tmp) / f"{key.replace(':', '_')}.npz"
            with open(path, "wb") as f:
                np.savez(f, **arrays)
            sizes[key] = path.stat().st_size
    return {"n_weights": sum(r * c for r, c in shapes), "computed": computed, "on_disk_fp32": sizes}


@validate_params(record=Dict(optional=True))
def llm_sparsity_report(record: dict | None = None) -> dict:
    """Chapter 20's headline numbers as one JSON-able dict (``effdl reproduce llm-sparsity``), from the record.

    Perplexities per byte on the test split, dense and for magnitude, Wanda
    and SparseGPT at 50 % unstructured (per output row) and 2:4.

    Taught in chapter 20, "Pruning a language model".
    """
    rec = load_record("llm_sparsity") if record is None else record
    out = {"dense_ppl": rec["dense_ppl"]}
    for method in METHODS:
        out[method] = dict(rec["results"][method])
    return {**out, "sparsegpt_mask_block": rec["sparsegpt"]["mask_block"], "split": "test",
            "unit": "perplexity per byte"}
