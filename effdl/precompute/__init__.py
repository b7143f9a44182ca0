"""Heavy experiments of the chapters, run once by a maintainer into ``data/``.

Each module here has ``run(out_dir) -> dict``: it trains what its chapter
needs, writes checkpoints (``effdl.zoo.save_checkpoint``) and one JSON record
of every number it measured, choosing hyperparameters on the validation
split only. ``effdl precompute NAME`` runs one; chapters then load the
results and show how to recompute them. Writing into the shipped
``data/zoo`` refreshes ``data/MANIFEST``.
"""
from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path

from .._validate import check_choice

STAGES = {"pruning": "effdl.precompute.pruning", "lowrank": "effdl.precompute.lowrank",
          "compression": "effdl.precompute.compression", "ternary": "effdl.precompute.ternary",
          "quantization": "effdl.precompute.quantization",
          "mixed_precision": "effdl.precompute.mixed_precision",
          "distillation": "effdl.precompute.distillation", "dsd": "effdl.precompute.dsd"}


def run(stage: str, out_dir: Path | str | None = None) -> dict:
    """Run precompute ``stage`` into ``out_dir`` (default ``data/zoo``) and return its record."""
    from ..data import refresh_manifest
    from ..zoo import ZOO_DIR

    check_choice("stage", stage, STAGES)
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


def load_record(stage: str, *, data_dir: Path | None = None) -> dict:
    """The JSON record of a precomputed stage, after checking its hash."""
    from ..data import verified_path

    check_choice("stage", stage, STAGES)
    return json.loads(verified_path(f"zoo/{stage}.json", data_dir=data_dir).read_text())
