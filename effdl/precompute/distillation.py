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

import os
import itertools

import numpy as np
from torch import nn

from .. import zoo
from ..models import count_parameters
from ..train import evaluate, mean_std, progress, threads
from ..training.distillation import (
    DATA_FRACTION,
    Ensemble,
    STUDENT_HIDDEN,
    TEACHERS,
    build_student,
    experiment_splits,
    subset,
    train_student,
)
from . import load_record, rerun_check
from ..validation import Bool, Instance, Interval, ListOf, Options, PositiveInt, Seed, validate_params


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


@validate_params(rows=ListOf(Instance(dict, "a grid row with config, eval_epochs and val_mean")))
def choose(rows: list) -> dict:
    """The row with the best mean validation accuracy at its best epoch (epoch ≥ 1).

    Each row has ``config`` and ``eval_epochs``/``val_mean``; ties go to the
    earlier epoch, then to the earlier row (grid order). Returns the row's
    config with ``epochs`` replaced by the chosen epoch, and ``val_acc``.

    Behind chapter 13, "Distillation and DSD".
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


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Search the grid on validation, then train the chosen runs and test them once.

    ``out_dir`` is unused (no checkpoints), kept for the common interface.

    Taught in chapter 13, "Distillation and DSD".
    """
    with threads(1):                  # one thread: the same arithmetic order on every machine
        return _run(out_dir)


def _run(out_dir) -> dict:
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


@validate_params(name=Options(TEACHERS))
def build_teacher(name: str = "lenet5") -> nn.Module:
    """A teacher from the zoo, in eval mode: ``"lenet5"``, ``"ensemble_logits"`` or ``"ensemble_probs"``
    (the ensembles average the zoo's LeNet-5 and LeNet-300-100).

    Taught in chapter 13, "Distillation and DSD".
    """
    if name == "lenet5":
        return zoo.load("lenet5")
    return Ensemble([zoo.load("lenet5"), zoo.load("lenet300")], combine=name.split("_")[1]).eval()


@validate_params(condition=Options(("full", "hard", "soft")),
                 config=Instance(dict, "a dict with lr, epochs (and teacher, temperature, alpha)"),
                 seed=Seed(), splits=Instance(dict, "a dict with train and val Splits"),
                 teachers=Instance(dict, "a dict of name → teacher model", optional=True), val=Bool(),
                 eval_every=PositiveInt(), fraction=Interval(float, 0, 1, closed="right"))
def run_condition(condition: str, config: dict, seed: int, splits: dict, *, teachers: dict | None = None,
                  val: bool = False, eval_every: int = 1, fraction: float = DATA_FRACTION):
    """Train one student of the experiment; return ``(model, history)``.

    ``condition``: ``"full"`` (all the training split, hard labels),
    ``"hard"`` (``fraction`` of it, hard labels) or ``"soft"`` (the same
    images, the teacher ``config["teacher"]``'s soft targets). ``seed`` fixes
    the subset, the initial weights and the batch order, so "hard" and
    "soft" with one seed see the same images from the same start.
    ``config`` holds ``lr``, ``epochs`` (and ``teacher``, ``temperature``,
    ``alpha`` for "soft").

    Taught in chapter 13, "Distillation and DSD".
    """
    train = splits["train"] if condition == "full" else subset(splits["train"], fraction, seed=seed)
    teacher = None
    if condition == "soft":
        teachers = {} if teachers is None else teachers
        if config["teacher"] not in teachers:
            teachers[config["teacher"]] = build_teacher(config["teacher"])
        teacher = teachers[config["teacher"]]
    kwargs = {"temperature": config["temperature"], "alpha": config["alpha"]} if teacher is not None else {}
    return train_student(train, teacher=teacher, epochs=config["epochs"], lr=config["lr"], seed=seed,
                         val=splits["val"] if val else None, eval_every=eval_every, **kwargs)


@validate_params(chosen=Instance(dict, "a dict {full, hard, soft} of configs"), seeds=ListOf(Seed()),
                 fraction=Interval(float, 0, 1, closed="right"))
def run_experiment(chosen: dict, seeds, *, fraction: float = DATA_FRACTION) -> dict:
    """The final runs: each condition of ``chosen`` (``{"full": cfg, "hard": cfg, "soft": cfg}``)
    trained once per seed and evaluated once on the test split.

    Returns ``{"teacher_acc": float, "runs": {condition: {seed: test %}}, "summary": {condition:
    {"mean", "std"}}}`` (std over seeds, 0 for one seed).

    Behind chapter 13, "Distillation and DSD".
    """
    splits = experiment_splits()
    teachers = {chosen["soft"]["teacher"]: build_teacher(chosen["soft"]["teacher"])}
    runs = {}
    for condition in ("full", "hard", "soft"):
        runs[condition] = {}
        for seed in seeds:
            model, _ = run_condition(condition, chosen[condition], seed, splits, teachers=teachers,
                                     fraction=fraction)
            runs[condition][str(seed)] = evaluate(model, splits["test"], device="cpu")
    return {"teacher_acc": evaluate(teachers[chosen["soft"]["teacher"]], splits["test"], device="cpu"),
            "runs": runs, "summary": {c: mean_std(list(r.values())) for c, r in runs.items()}}


@validate_params()
def distillation_report() -> dict:
    """The chapter's headline numbers (``effdl reproduce distillation --json``).

    The headline is the record's (``effdl.precompute.distillation``:
    hyperparameters chosen on the validation split, every final run on the
    test split): the seed means (and stds) — the same on every machine.
    ``live`` re-trains every final run here, on one thread as the record did,
    and compares each condition's mean over the seeds with the record's
    (:func:`effdl.precompute.rerun_check`): equal on the CPU that wrote the
    record, within the stated tolerance on another.

    Behind chapter 13, "Distillation and DSD".
    """
    record = load_record("distillation")
    chosen, seeds, fraction = record["chosen"], record["seeds"], record["data_fraction"]
    with threads(1):  # the record's setting (and small layers run faster on one thread)
        result = run_experiment(chosen, seeds, fraction=fraction)
    s, final = record["summary"], record["final"]["runs"]
    check = rerun_check({"teacher": record["summary"]["teacher_acc"],
                         **{c: s[c]["mean"] for c in ("full", "hard", "soft")}},
                        {"teacher": result["teacher_acc"],
                         **{c: result["summary"][c]["mean"] for c in ("full", "hard", "soft")}})
    return {"data_fraction": fraction, "temperature": float(chosen["soft"]["temperature"]),
            "teacher_acc": s["teacher_acc"], "full_data_acc": s["full"]["mean"],
            "student_hard_acc": s["hard"]["mean"], "student_soft_acc": s["soft"]["mean"],
            "std": {"full_data": s["full"]["std"], "student_hard": s["hard"]["std"],
                    "student_soft": s["soft"]["std"]},
            "teacher": chosen["soft"]["teacher"], "alpha": chosen["soft"]["alpha"],
            "seeds": len(seeds), "n_images": record["n_images"], "student_params": record["student_params"],
            "soft_minus_hard_per_seed": [round(final["soft"][str(k)] - final["hard"][str(k)], 3) for k in seeds],
            "live": {"per_seed": result["runs"], **check},
            "matches_record": check["matches_record"]}
