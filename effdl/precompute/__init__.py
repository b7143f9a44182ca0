"""Heavy experiments of the chapters, run once by a maintainer into ``data/``.

Each module here has ``run(out_dir) -> dict``: it trains what its chapter
needs, writes checkpoints (``effdl.zoo.save_checkpoint``) and one JSON record
of every number it measured, choosing hyperparameters on the validation
split only. ``effdl precompute NAME`` runs one; chapters then load the
results and show how to recompute them. Writing into the shipped
``data/zoo`` refreshes ``data/MANIFEST``.

What is reproducible where: the record is the result, the same on every
machine. A re-run of its training is seeded and gives the record's numbers on
the machine and kernels that wrote it; on another CPU (other vector kernels,
BLAS or thread count) float32 sums round differently, training amplifies the
difference, and a re-run's last digit moves. :func:`rerun_check` is how
experiments and chapters compare a live re-run with the record: within a
tolerance derived from the test set's resolution, never digit by digit.
"""
from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path

from ..data import refresh_manifest, verified_path
from ..train import accuracy_stderr
from ..zoo import ZOO_DIR
from ..validation import Instance, Options, PositiveInt, validate_params


RERUN_RULE = ("a live re-run matches the record when each accuracy lies within 2 binomial standard errors "
              "(on the test split's images) of the record's: other CPU kernels round differently and training "
              "amplifies it, and a smaller difference cannot be told apart on this test set")

STAGES = {"pruning": "effdl.precompute.pruning", "lowrank": "effdl.precompute.lowrank",
          "compression": "effdl.precompute.compression", "ternary": "effdl.precompute.ternary",
          "quantization": "effdl.precompute.quantization",
          "mixed_precision": "effdl.precompute.mixed_precision",
          "distillation": "effdl.precompute.distillation", "dsd": "effdl.precompute.dsd",
          "efficient_blocks": "effdl.precompute.efficient_blocks", "nas": "effdl.precompute.nas",
          "lm": "effdl.precompute.lm", "llm_quant": "effdl.precompute.llm_quant",
          "dorefa": "effdl.precompute.dorefa",
          "llm_sparsity": "effdl.precompute.llm_sparsity",
          "lm_distill": "effdl.precompute.lm_distill"}


@validate_params(stage=Options(tuple(STAGES)),
                 out_dir=Instance((str, os.PathLike), "a folder path", optional=True))
def run(stage: str, out_dir: Path | str | None = None) -> dict:
    """Run precompute ``stage`` into ``out_dir`` (default ``data/zoo``) and return its record.

    Taught in chapter 06, "Binary and ternary nets".
    """

    out_dir = Path(out_dir) if out_dir is not None else ZOO_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    record = importlib.import_module(STAGES[stage]).run(out_dir)
    record["recompute_seconds"] = round(time.perf_counter() - start)
    path = out_dir / f"{stage}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    if out_dir.resolve() == ZOO_DIR.resolve():
        refresh_manifest()
    return record


@validate_params(stage=Options(tuple(STAGES)),
                 data_dir=Instance((str, os.PathLike), "a folder path", optional=True))
def load_record(stage: str, *, data_dir: Path | None = None) -> dict:
    """The JSON record of a precomputed stage, after checking its hash.

    Taught in chapter 05, "Quantization".
    """

    return json.loads(verified_path(f"zoo/{stage}.json", data_dir=data_dir).read_text())


@validate_params(recorded=Instance(dict, "a dict of name → accuracy (%)"),
                 live=Instance(dict, "a dict of name → accuracy (%)"), n_images=PositiveInt())
def rerun_check(recorded: dict[str, float], live: dict[str, float], *, n_images: int = 1000) -> dict:
    """Compare live re-run accuracies (%) with the record's, key by key.

    Each accuracy's tolerance is ``2 · accuracy_stderr(recorded, n_images)``
    (about 1.5 points at 94 % on 1,000 images, 0.9 at 98 %): see
    :data:`RERUN_RULE`. Returns ``{"recorded", "live", "tolerance_pts",
    "max_abs_diff_pts", "matches_record", "rule"}``.

    >>> r = rerun_check({"a": 94.0, "b": 98.0}, {"a": 94.6, "b": 97.9})
    >>> r["tolerance_pts"], r["max_abs_diff_pts"], r["matches_record"]
    ({'a': 1.5, 'b': 0.89}, 0.6, True)
    >>> rerun_check({"a": 94.0}, {"a": 92.0})["matches_record"]
    False

    Taught in chapter 17, "Designing efficient models".
    """
    if set(live) != set(recorded):
        raise ValueError(f"rerun_check: live must have the record's keys {sorted(recorded)}; got {sorted(live)}.")
    tolerance = {k: round(2 * accuracy_stderr(v, n_images), 2) for k, v in recorded.items()}
    diffs = {k: abs(float(live[k]) - float(recorded[k])) for k in recorded}
    return {"recorded": dict(recorded), "live": dict(live), "tolerance_pts": tolerance,
            "max_abs_diff_pts": round(max(diffs.values(), default=0.0), 3),
            "matches_record": all(diffs[k] <= tolerance[k] for k in recorded), "rule": RERUN_RULE}
