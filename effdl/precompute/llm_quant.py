"""Chapter 19's record: the book's language model quantized by RTN, GPTQ, AWQ and SmoothQuant (``effdl precompute llm_quant``).

The model is the shipped TinyGPT (``load_lm("lm")``, d_model 160, d_ff 640).
Every ``nn.Linear`` of its blocks is quantized (24 layers; the tied
embedding / output head, the norms and the biases stay fp32). Calibration:
:data:`N_WINDOWS` windows of :data:`SEQ_LEN` bytes at seeded random starts in
the **train** split. Group size: :data:`GROUP_SIZE` = 32 input columns —
the papers' 128 does not divide our width of 160, and 32 divides both 160
and 640 (5 and 20 groups per row, the papers' g = 128 gives 32 groups per
row of a 4096-wide Llama layer), so the keys say ``g32``. The papers' own
setting is recorded too, as ``g128``: groups of :data:`PAPER_GROUP_SIZE`
columns cut as GPTQ's reference code cuts them, the last group of a row
narrower (``ragged=True``: a 160-wide row is one group of 128 and one of 32;
the 640-wide one five groups of 128). Grids are asymmetric with fp16 scales
(:mod:`effdl.llm.quantize`).

Measured, once, in one thread:

- perplexity per byte (``exp`` of the mean cross-entropy in nats) on the
  whole **test** split for fp32; RTN at 8 bits per channel, 4 and 3 bits
  with g = 32; GPTQ and AWQ at 4 and 3 bits, g = 32; W8A8 naive and with
  SmoothQuant, whose α is chosen on the **validation** split
  (:data:`VAL_WINDOWS` windows; the sweep is in the record);
- bytes on disk of the fp32 model and of the packed 8/4/3-bit models
  (:func:`effdl.llm.quantize.save_packed`);
- a bits × group sweep (RTN) and a bits sweep per method (RTN, GPTQ, AWQ at
  g = 32) on the first :data:`SWEEP_WINDOWS` windows of the test split;
- per layer and input channel, ``max|x|`` on the calibration windows: how
  outlying our small model's activations are.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

from ..llm import calibration as cal
from ..llm import quantize as qz
from ..train import threads
from ..validation import Dict, Instance, validate_params
from . import load_record
from .lm import load_lm, loss_per_byte, split_ids

SEED = 0
N_WINDOWS = 32
SEQ_LEN = 256
GROUP_SIZE = 32
PAPER_GROUP_SIZE = 128                       # ragged on our 160-wide layers (see the module)
VAL_WINDOWS = 200
SWEEP_WINDOWS = 160
ALPHAS = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
SWEEP_BITS = [2, 3, 4, 6, 8]
SWEEP_GROUPS = [None, 80, 32, 16]            # None: one grid per output row (per channel)


def _ppl(model, ids, max_windows=None) -> float:
    return round(math.exp(loss_per_byte(model, ids, max_windows=max_windows)), 4)


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Quantize the shipped language model every way chapter 19 compares and return the record.

    Behind chapter 19, "Quantizing a language model".
    """
    with threads(1):                  # one thread: the same arithmetic order on every machine
        return _run(Path(out_dir))


def _run(out_dir: Path) -> dict:
    start = time.perf_counter()
    model = load_lm("lm")
    train_ids, val_ids, test_ids = (split_ids(s) for s in ("train", "val", "test"))
    windows = cal.calibration_windows(train_ids, N_WINDOWS, SEQ_LEN, seed=SEED)
    g = GROUP_SIZE
    key = {8: "w8"}
    models, timing = {}, {}

    def build(method, n_bits, group_size=None, **kw):
        t0 = time.perf_counter()
        q = qz.quantize_model(model, method, n_bits, group_size, windows=windows, **kw)
        timing[f"{method} {n_bits} {group_size}"] = round(time.perf_counter() - t0, 1)
        return q

    # SmoothQuant's α on validation windows (naive W8A8 alongside)
    sweep_sq = [{"alpha": a, "val_ppl": _ppl(build("smoothquant", 8, alpha=a), val_ids, VAL_WINDOWS)}
                for a in ALPHAS]
    best = min(sweep_sq, key=lambda r: (r["val_ppl"], abs(r["alpha"] - 0.5)))   # a tie: nearer the paper's 0.5
    naive_val = _ppl(build("w8a8", 8), val_ids, VAL_WINDOWS)
    print(f"smoothquant alpha {best['alpha']} (val {best['val_ppl']}, naive {naive_val})", flush=True)

    results = {"rtn": {}, "gptq": {}, "awq": {}, "w8a8": {}}
    fp = _ppl(model, test_ids)
    models["rtn", 8, None] = build("rtn", 8)
    results["rtn"]["w8"] = _ppl(models["rtn", 8, None], test_ids)
    for method in ("rtn", "gptq", "awq"):
        for n_bits in (4, 3):
            models[method, n_bits, g] = build(method, n_bits, g)
            results[method][f"w{n_bits}_g{g}"] = _ppl(models[method, n_bits, g], test_ids)
            print(method, n_bits, results[method][f"w{n_bits}_g{g}"], flush=True)
    paper = _paper_groups(model, windows, test_ids)
    for method in ("rtn", "gptq", "awq"):
        results[method].update(paper["results"][method])
    results["w8a8"]["naive"] = _ppl(build("w8a8", 8), test_ids)
    results["w8a8"]["smoothquant"] = _ppl(build("smoothquant", 8, alpha=best["alpha"]), test_ids)

    with tempfile.TemporaryDirectory() as tmp:
        sizes = {"fp32": qz.save_packed(model, Path(tmp) / "fp32.npz"),
                 "w8": qz.save_packed(models["rtn", 8, None], Path(tmp) / "w8.npz")}
        for n_bits in (4, 3):
            sizes[f"w{n_bits}_g{g}"] = qz.save_packed(models["rtn", n_bits, g], Path(tmp) / f"w{n_bits}.npz")
            sizes[f"awq_w{n_bits}_g{g}"] = qz.save_packed(models["awq", n_bits, g], Path(tmp) / f"a{n_bits}.npz")
    sizes.update(paper["bytes"])

    # sweeps on the first SWEEP_WINDOWS test windows (figures)
    sweep = []
    for group_size in SWEEP_GROUPS:
        for n_bits in SWEEP_BITS:
            q = models.get(("rtn", n_bits, group_size)) or build("rtn", n_bits, group_size)
            sweep.append({"method": "rtn", "n_bits": n_bits, "group_size": group_size,
                          "ppl": _ppl(q, test_ids, SWEEP_WINDOWS)})
    for method in ("gptq", "awq"):
        for n_bits in SWEEP_BITS:
            q = models.get((method, n_bits, g)) or build(method, n_bits, g)
            sweep.append({"method": method, "n_bits": n_bits, "group_size": g,
                          "ppl": _ppl(q, test_ids, SWEEP_WINDOWS)})
        print(method, "sweep done", flush=True)

    stats = cal.activation_stats(model, windows)
    distinct = [n for n in stats if not n.endswith((".attn.k", ".attn.v"))]   # k and v see q's input
    outliers = {"summary": cal.outlier_summary({n: stats[n] for n in distinct}),
                "max_abs": {n: [round(float(v), 4) for v in stats[n]["max_abs"]] for n in distinct}}
    return {"seed": SEED, "threads": 1, "group_size": g, "paper_group_size": PAPER_GROUP_SIZE, "fp_ppl": fp,
            "calibration": {"split": "train", "n_windows": N_WINDOWS, "seq_len": SEQ_LEN, "seed": SEED},
            "eval": {"split": "test", "bytes": int(test_ids.numel()),
                     "windows": (test_ids.numel() - 1) // model.spec.context},
            "results": results, "bytes": sizes,
            "smoothquant": {"alpha": best["alpha"], "sweep": sweep_sq, "naive_val_ppl": naive_val,
                            "val_windows": VAL_WINDOWS,
                            "activations": "static per-tensor int8 (calibration max); weights int8 per channel"},
            "sweep": {"windows": SWEEP_WINDOWS, "split": "test (first windows)", "rows": sweep,
                      "fp_ppl": _ppl(model, test_ids, SWEEP_WINDOWS)},
            "outliers": outliers, "quantize_seconds": timing,
            "stage_seconds": round(time.perf_counter() - start),
            "timing": "one thread, on the machine that wrote the record (shared with other jobs)"}


def _paper_groups(model, windows, test_ids) -> dict:
    """RTN, GPTQ and AWQ at 4 and 3 bits in the papers' groups of 128 (ragged here) and the 4-bit file's bytes."""
    g, results, sizes = PAPER_GROUP_SIZE, {"rtn": {}, "gptq": {}, "awq": {}}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("rtn", "gptq", "awq"):
            for n_bits in (4, 3):
                q = qz.quantize_model(model, method, n_bits, g, windows=windows, ragged=True)
                results[method][f"w{n_bits}_g{g}"] = _ppl(q, test_ids)
                print(method, n_bits, f"g{g}", results[method][f"w{n_bits}_g{g}"], flush=True)
                if method == "rtn" and n_bits == 4:
                    sizes[f"w4_g{g}"] = qz.save_packed(q, Path(tmp) / "w4_g128.npz")
    return {"results": results, "bytes": sizes}


@validate_params(record=Dict(optional=True))
def llm_quant_report(record: dict | None = None) -> dict:
    """Chapter 19's headline numbers as one JSON-able dict (``effdl reproduce llm-quant``), from the record.

    Perplexities per byte on the test split; keys ``w4_g32`` / ``w3_g32``:
    4 / 3 bits per weight in groups of 32 input columns; ``w4_g128`` /
    ``w3_g128``: the papers' groups of 128, the last group of a 160-wide row
    narrower (see the module).

    Taught in chapter 19, "Quantizing a language model".
    """
    rec = load_record("llm_quant") if record is None else record
    g = rec["group_size"]
    r = rec["results"]
    return {"fp_ppl": rec["fp_ppl"], "group_size": g,
            "rtn": dict(r["rtn"]), "gptq": dict(r["gptq"]), "awq": dict(r["awq"]),
            "w8a8": {**r["w8a8"], "smoothquant_alpha": rec["smoothquant"]["alpha"]},
            "paper_group_size": rec["paper_group_size"],
            "bytes": {"fp32": rec["bytes"]["fp32"], f"w4_g{g}": rec["bytes"][f"w4_g{g}"],
                      "w4_g128": rec["bytes"]["w4_g128"]},
            "split": "test", "unit": "perplexity per byte"}
