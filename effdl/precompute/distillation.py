"""Chapter 13's precomputed distillation experiment (``effdl precompute distillation``).

Hinton, Vinyals & Dean's "3 % of the data" experiment on the embedded MNIST
subset: a small student (784-64-10, :data:`effdl.training.distillation.STUDENT_HIDDEN`)
trained on 3 % of the 3,500-image training split (105 images, stratified)
with hard labels, or with a teacher's soft targets on those same images, next
to the same student trained on the whole training split.

Everything is chosen on the **validation** split, by the mean validation
accuracy over :data:`SEEDS` (each seed draws its own subset and initial
weights; "hard" and "soft" share them): for each condition the learning
rate and the number of epochs (validation every :data:`EVAL_EVERY` epochs),
and for the soft targets also the teacher (:data:`~effdl.training.distillation.TEACHERS`:
the zoo's LeNet-5, or its ensemble with LeNet-300-100 averaging logits or
probabilities), the temperature and the weight ``alpha`` of the soft term.
The grid is fixed in advance (:data:`GRID`) and was not changed after seeing
a result. Only then is each chosen run trained again and evaluated once on
the **test** split. No checkpoints: ``effdl reproduce distillation``
re-trains the final runs from the record's hyperparameters.
"""
from __future__ import annotations

import itertools

import numpy as np
import torch

from ..models import count_parameters
from ..train import evaluate, progress
from ..training.distillation import (
    DATA_FRACTION,
    STUDENT_HIDDEN,
    TEACHERS,
    build_student,
    build_teacher,
    experiment_splits,
    mean_std,
    run_condition,
    run_experiment,
    subset,
)

SEEDS = [0, 1, 2, 3, 4]
EVAL_EVERY = {"full": 1, "hard": 5, "soft": 5}
GRID = {
    "full": {"lr": [0.01, 0.03, 0.1], "epochs": 40},
    "hard": {"lr": [0.01, 0.03, 0.1], "epochs": 300},
    "soft": {"lr": [0.01, 0.03, 0.1], "epochs": 300, "teacher": list(TEACHERS),
             "temperature": [1.0, 2.0, 4.0, 8.0, 16.0], "alpha": [0.5, 0.9, 1.0]},
}


def _configs(condition: str):
    g = GRID[condition]
    keys = [k for k in ("teacher", "temperature", "alpha", "lr") if k in g]
    for values in itertools.product(*(g[k] for k in keys)):
        yield dict(zip(keys, values), epochs=g["epochs"])


def choose(rows: list) -> dict:
    """The row with the best mean validation accuracy at its best epoch (epoch ≥ 1).

    Each row has ``config`` and ``eval_epochs``/``val_mean``; ties go to the
    earlier epoch, then to the earlier row (grid order). Returns the row's
    config with ``epochs`` replaced by the chosen epoch, and ``val_acc``.
    """
    best = None
    for i, row in enumerate(rows):
        for epoch, acc in zip(row["eval_epochs"], row["val_mean"]):
            if epoch < 1:
                continue
            key = (-acc, epoch, i)
            if best is None or key < best[0]:
                best = (key, row, epoch, acc)
    _, row, epoch, acc = best
    return {**row["config"], "epochs": epoch, "val_acc": acc}


def run(out_dir) -> dict:
    """Search the grid on validation, then train the chosen runs and test them once.

    ``out_dir`` is unused (no checkpoints), kept for the common interface.
    """
    torch.set_num_threads(1)          # one thread: the same arithmetic order on every machine
    splits = experiment_splits()
    teachers = {name: build_teacher(name) for name in TEACHERS}
    grid_rows: dict = {}
    for condition in ("full", "hard", "soft"):
        rows = []
        for config in progress(list(_configs(condition)), desc=f"{condition} grid"):
            curves = []
            for seed in SEEDS:
                _, h = run_condition(condition, config, seed, splits, teachers=teachers, val=True,
                                     eval_every=EVAL_EVERY[condition])
                curves.append(h.val_acc)
            curves = np.array(curves)                               # (seeds, evaluations)
            rows.append({"config": config, "eval_epochs": h.eval_epochs,
                         "val_mean": [round(float(v), 3) for v in curves.mean(0)],
                         "val_std": [round(float(v), 3) for v in curves.std(0, ddof=1)]})
        grid_rows[condition] = rows
    chosen = {c: choose(grid_rows[c]) for c in grid_rows}
    val_chosen = {c: chosen[c].pop("val_acc") for c in chosen}

    final = run_experiment(chosen, SEEDS)

    # what the grid says about the choices, all on validation
    soft_rows = grid_rows["soft"]
    by = {key: {str(v): round(max(max(r["val_mean"][1:]) for r in soft_rows if r["config"][key] == v), 3)
                for v in GRID["soft"][key]} for key in ("teacher", "temperature", "alpha")}
    by_t_chosen_teacher = {str(t): round(max(max(r["val_mean"][1:]) for r in soft_rows
                                             if r["config"]["temperature"] == t
                                             and r["config"]["teacher"] == chosen["soft"]["teacher"]), 3)
                           for t in GRID["soft"]["temperature"]}

    def _curve(condition):
        cfg = chosen[condition]
        row = next(r for r in grid_rows[condition]
                   if all(r["config"][k] == cfg[k] for k in cfg if k != "epochs"))
        return {"eval_epochs": row["eval_epochs"], "val_mean": row["val_mean"], "val_std": row["val_std"]}

    return {
        "paper": "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network (2015)",
        "data": "embedded MNIST subset: train 3,500 · val 500 · test 1,000",
        "data_fraction": DATA_FRACTION, "n_images": len(subset(splits["train"], DATA_FRACTION, seed=SEEDS[0])),
        "student": f"MLP 784-{STUDENT_HIDDEN}-10, ReLU", "student_params": count_parameters(build_student()),
        "teacher_params": {n: count_parameters(t) for n, t in teachers.items()},
        "optimizer": "SGD, momentum 0.9, batch 32, constant lr", "seeds": SEEDS, "threads": 1,
        "selection": "mean validation accuracy over the seeds, at the best epoch (evaluated every "
                     f"{EVAL_EVERY['hard']} epochs on the 3 % runs, every epoch on the full-data run); "
                     "test evaluated once per chosen run",
        "grid": GRID,
        "teachers": {n: {"val_acc": evaluate(t, splits["val"], device="cpu"),
                         "test_acc": evaluate(t, splits["test"], device="cpu")} for n, t in teachers.items()},
        "chosen": chosen, "chosen_val_acc": val_chosen,
        "soft_best_val_by": by, "soft_best_val_by_temperature_chosen_teacher": by_t_chosen_teacher,
        "grid_best_val": {c: [{**r["config"], "best_val": max(r["val_mean"][1:]),
                               "best_epoch": r["eval_epochs"][1 + int(np.argmax(r["val_mean"][1:]))]}
                              for r in grid_rows[c]] for c in grid_rows},
        "curves": {c: _curve(c) for c in grid_rows},
        "final": final,
        "summary": {"teacher_acc": final["teacher_acc"], **{c: final["summary"][c] for c in ("full", "hard", "soft")},
                    "soft_minus_hard": mean_std([final["runs"]["soft"][str(s)] - final["runs"]["hard"][str(s)]
                                                 for s in SEEDS])},
    }
