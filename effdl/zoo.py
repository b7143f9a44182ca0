"""Pretrained checkpoints in ``data/zoo/`` and the command that makes them.

Used by every chapter that compresses a trained model. ``effdl zoo train``
(:func:`train_zoo`) trains LeNet-300-100, LeNet-5 and the row-LSTM on the
embedded MNIST subset: for each model a small learning-rate grid, each run
keeping its best epoch on the **validation** split; the run with the best
validation accuracy is kept and only then evaluated once on the **test**
split. Weights go to ``data/zoo/NAME.pt`` (a plain dict of tensors, loaded
with ``torch.load(weights_only=True)``) and the record of how they were made
to ``data/zoo/zoo.json``; both are hashed in ``data/MANIFEST``.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
from torch import nn

from .data import DATA_DIR, DataError, load_mnist, read_manifest, refresh_manifest, verified_path
from .models import MODELS, build_model, count_parameters
from .train import evaluate, fit, progress
from .transformer import TinyGPT, TransformerSpec
from .validation import Instance, ListOf, Module, Options, Seed, check_part, validate_params

ZOO_DIR = DATA_DIR / "zoo"
CHECKPOINT_FORMAT = 1
# the "arch" of a language-model checkpoint (effdl precompute lm), which also stores its TransformerSpec
TRANSFORMER_ARCH = "tinygpt"
# Training recipe per model. SGD with momentum 0.9, batch 64; the grid spans
# a decade of learning rates around the usual MNIST values.
RECIPES = {
    "lenet300": {"epochs": 40, "lr_grid": [0.01, 0.03, 0.1], "batch_size": 64},
    "lenet5": {"epochs": 20, "lr_grid": [0.01, 0.03, 0.1], "batch_size": 64},
    "lstm": {"epochs": 40, "lr_grid": [0.01, 0.03, 0.1], "batch_size": 64},
}

FOLDER = Instance((str, os.PathLike), "a folder path (str or pathlib.Path)")
DATA_FOLDER = Instance((str, os.PathLike), "a folder path (str or pathlib.Path) or None", optional=True)
BASE_NAME = Options(RECIPES)
RECORD_KEYS = ("params", "val_acc", "test_acc", "lr", "best_epoch")


@validate_params()
def names() -> list[str]:
    """The base models :func:`train_zoo` makes.

    Taught in chapter 00, "Why efficiency".
    """
    return list(RECIPES)


@validate_params(data_dir=DATA_FOLDER)
def checkpoints(*, data_dir: Path | None = None) -> list[str]:
    """Every checkpoint shipped in ``data/zoo`` (base models and the chapters' precomputed ones).

    Behind chapter 00, "Why efficiency".
    """
    manifest = read_manifest((DATA_DIR if data_dir is None else Path(data_dir)) / "MANIFEST")
    return sorted(p[len("zoo/"):-len(".pt")] for p in manifest if p.startswith("zoo/") and p.endswith(".pt"))


@validate_params(name=Instance(str, "a checkpoint name (see effdl.zoo.checkpoints())"), data_dir=DATA_FOLDER)
def load(name: str, *, data_dir: Path | None = None) -> nn.Module:
    """The checkpoint ``name`` (see :func:`checkpoints`) as a model in eval mode, after checking its hash.

    A missing, truncated or altered checkpoint raises ``effdl.data.DataError``.

    Taught in chapter 00, "Why efficiency".
    """
    check_part("load", Options(checkpoints(data_dir=data_dir)), "name", name)
    path = verified_path(f"zoo/{name}.pt", data_dir=data_dir)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for a damaged zip
        raise DataError(f"{path} is not a readable checkpoint: {err}") from None
    if not isinstance(blob, dict) or blob.get("format") != CHECKPOINT_FORMAT or blob.get("name") != name \
            or blob.get("arch", name) not in (*MODELS, TRANSFORMER_ARCH):
        raise DataError(f"{path} is not an effdl checkpoint of {name!r}.")
    try:
        if blob.get("arch") == TRANSFORMER_ARCH:      # a language model: its shape travels with it
            model = TinyGPT(TransformerSpec(**blob["spec"]))
        else:
            model = build_model(blob.get("arch", name))
        model.load_state_dict(blob["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:  # missing keys, a bad spec, another shape
        raise DataError(f"{path} does not hold the weights of a {blob.get('arch', name)!r} model: {err}") from None
    return model.eval()


@validate_params(model=Module(), name=Instance(str, "a checkpoint name (str)"), arch=Options(MODELS),
                 out_dir=FOLDER)
def save_checkpoint(model: nn.Module, name: str, arch: str, out_dir: Path | str) -> Path:
    """Write ``model``'s weights as checkpoint ``name`` of architecture ``arch`` (atomic).

    Behind chapter 00, "Why efficiency".
    """
    if not name or Path(name).name != name or name in (".", ".."):
        raise ValueError(f"save_checkpoint: name must be a file name without a folder; got {name!r}.")
    path = Path(out_dir) / f"{name}.pt"
    _atomic_save({"format": CHECKPOINT_FORMAT, "name": name, "arch": arch, "state_dict": model.state_dict()}, path)
    return path


@validate_params(name=Options(RECIPES, optional=True), data_dir=DATA_FOLDER)
def info(name: str | None = None, *, data_dir: Path | None = None) -> dict:
    """The training record of one model (or of all, ``name=None``) from ``zoo.json``.

    Taught in chapter 00, "Why efficiency".
    """
    path = verified_path("zoo/zoo.json", data_dir=data_dir)
    try:
        record = json.loads(path.read_text())
    except ValueError as err:
        raise DataError(f"{path} is not valid JSON: {err}.") from None
    if name is None:
        return record
    if not isinstance(record, dict) or name not in (record.get("models") or {}):
        raise DataError(f"{path} has no record of {name!r}; train it with `effdl zoo train --models {name}`.")
    return record["models"][name]


@validate_params(record=Instance(dict, "a zoo record (the dict of zoo.json) or None", optional=True))
def readme_table(record: dict | None = None) -> str:
    """The README's table of pretrained models (Markdown), from ``zoo.json``.

    Behind chapter 00, "Why efficiency".
    """
    record = info() if record is None else record
    models = record.get("models")
    if not isinstance(models, dict) or not all(isinstance(r, dict) and set(RECORD_KEYS) <= set(r)
                                               for r in models.values()):
        raise ValueError(f"readme_table: record must hold 'models': {{name: {{{', '.join(RECORD_KEYS)}, …}}}} as "
                         f"zoo.json does; got {record!r}.")
    rows = ["| checkpoint | parameters | validation accuracy | test accuracy | chosen lr, epoch |",
            "|---|---|---|---|---|"]
    for name, rec in record["models"].items():
        rows.append(f"| `data/zoo/{name}.pt` | {rec['params']:,d} | {rec['val_acc']:.1f} % | "
                    f"{rec['test_acc']:.1f} % | {rec['lr']}, {rec['best_epoch']} |")
    return "\n".join(rows)


@validate_params(name=BASE_NAME, seed=Seed())
def train_one(name: str, *, seed: int = 0) -> tuple[nn.Module, dict]:
    """Train ``name`` by its recipe; return the chosen model and its record.

    Behind chapter 00, "Why efficiency".
    """
    recipe = RECIPES[name]
    train, val, test = (load_mnist(s, source="embedded") for s in ("train", "val", "test"))
    runs, best = [], None
    for lr in progress(recipe["lr_grid"], desc=f"{name} lr grid"):
        model = build_model(name, seed=seed)
        start = time.perf_counter()
        history = fit(model, train, epochs=recipe["epochs"], lr=lr, batch_size=recipe["batch_size"],
                      val=val, keep_best=True, seed=seed)
        run = {"lr": lr, "best_epoch": history.best_epoch, "val_acc": history.best_val_acc,
               "seconds": round(time.perf_counter() - start, 1)}
        runs.append(run)
        if best is None or run["val_acc"] > best[1]["val_acc"]:
            best = (model, run)
    model, chosen = best
    record = {
        "params": count_parameters(model),
        "optimizer": "sgd", "momentum": 0.9, "batch_size": recipe["batch_size"],
        "epochs_max": recipe["epochs"], "lr": chosen["lr"], "best_epoch": chosen["best_epoch"],
        "val_acc": chosen["val_acc"], "test_acc": evaluate(model, test),
        "grid": runs, "seed": seed,
    }
    return model, record


@validate_params(out_dir=FOLDER, model_names=ListOf(BASE_NAME, optional=True), seed=Seed())
def train_zoo(out_dir: Path | str = ZOO_DIR, model_names: list[str] | None = None, *, seed: int = 0) -> dict:
    """Train the zoo into ``out_dir`` and return the record written to ``zoo.json``.

    Writing into the shipped ``data/zoo`` also refreshes ``data/MANIFEST``.
    Files are written to a temporary name and renamed, so an interrupted run
    never leaves a half-written checkpoint.

    Behind chapter 00, "Why efficiency".
    """
    out_dir = Path(out_dir)
    model_names = names() if model_names is None else model_names
    out_dir.mkdir(parents=True, exist_ok=True)
    record_path = out_dir / "zoo.json"
    record = json.loads(record_path.read_text()) if record_path.is_file() else {"models": {}}
    record.update(torch=torch.__version__.split("+")[0], data="embedded MNIST subset (data/mnist5k.npz)",
                  selection="best validation accuracy over lr grid and epochs; test evaluated once")
    for name in model_names:
        model, rec = train_one(name, seed=seed)
        save_checkpoint(model, name, name, out_dir)
        record["models"][name] = rec
        print(f"{name}: lr {rec['lr']}, epoch {rec['best_epoch']}, val {rec['val_acc']:.1f} %, "
              f"test {rec['test_acc']:.1f} %")
    tmp = record_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, record_path)
    if out_dir.resolve() == ZOO_DIR.resolve():
        refresh_manifest()
    return record


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
