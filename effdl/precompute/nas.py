"""Chapter 17's search, precomputed: the once-for-all supernet, the latency table, the searches.

``effdl precompute nas`` writes
``data/zoo/nas_supernet.pt`` (the supernet's state dict) and
``data/zoo/nas.json``: the space, the supernet's training and accuracy, this
CPU's roofline, the latency lookup table with the predictor's error on
held-out architectures, the budgets, every search (evolution and random at the
same number of evaluations, seeds 0–2, under the CPU budget; evolution under
the systolic and the energy budgets), the pool of evaluated sub-networks with
all their costs, and for the architecture each target chose: its accuracy cut
from the supernet, fine-tuned, and trained alone from scratch.

Accuracy of a sub-network during the search: its weights cut from the
supernet, batch norm recalibrated on :data:`N_CALIBRATION` training images,
accuracy on the validation split; :func:`calibration_study` records, on
validation, how much the draw of those images moves it. Test accuracy is
measured only for the final architectures. :func:`run_searches` is shared with ``effdl reproduce
nas``, which re-runs the searches from the record's evaluations.

Time: the shipped record took 2,010 s of wall-clock time (``recompute_seconds``;
``seconds`` splits it) on one thread of a 2-core machine: supernet 1,286 s
(four sub-networks per step in the shrinking phases), calibration study
124 s, latency table and costs 11 s, searches 102 s, the final architectures
(fine-tuning and training alone, 48 epochs each) 481 s.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from ..data import Split, load_mnist
from ..precompute import load_record
from ..hardware.roofline import Roofline, measure_machine
from ..nas.costs import SYSTOLIC, TARGETS, candidate_costs, target_cost
from ..nas.predictor import LatencyPredictor, fit_predictor, mape, measure_lut, time_modules
from ..nas.search import evolution, random_search
from ..nas.space import (DEPTHS, EXPANSIONS, KERNELS, RESOLUTIONS, WIDTHS, Arch, from_key, largest, sample,
                         smallest, space_size)
from ..nas.supernet import (PHASES, Supernet, _resize, build_subnet, recalibrate_bn, train_subnet,
                            train_supernet)
from ..train import evaluate, seeded, threads
from ..validation import Callable, Instance, ListOf, PositiveInt, Seed, validate_params

SEED = 0
EPOCHS_FULL = 6                     # the largest network alone, then EPOCHS_PER_PHASE per shrinking phase
EPOCHS_PER_PHASE = 14
LR, SHRINK_LR = 3e-3, 3e-3
SANDWICH = 2                        # random sub-networks per step beside the largest and the smallest
# the schedule chosen on validation: scripts/nas_schedule_sweep.py's output (mean over its five probe
# sub-networks, validation split); the first row is the previous supernet (one sub-network per step)
SCHEDULE_SWEEP = [
    {"schedule": {'epochs': 3, 'shrink_lr': 0.001, 'sandwich': 0},
     "val_acc": {'largest': 95.2, 'smallest': 67.0, 'mid_cpu': 93.6, 'mid_systolic': 91.6, 'mid_energy': 91.2},
     "mean_val_acc": 87.72},
    {"schedule": {'epochs': 12, 'phases': ['full', 'expand'], 'sandwich': 2, 'shrink_lr': 0.001},
     "val_acc": {'largest': 98.0, 'smallest': 94.6, 'mid_cpu': 94.4, 'mid_systolic': 94.6, 'mid_energy': 94.4},
     "mean_val_acc": 95.2},
    {"schedule": {'epochs': 12, 'phases': ['full', 'expand'], 'sandwich': 2, 'shrink_lr': 0.003},
     "val_acc": {'largest': 97.8, 'smallest': 96.2, 'mid_cpu': 96.2, 'mid_systolic': 97.6, 'mid_energy': 97.6},
     "mean_val_acc": 97.08},
    {"schedule": {'epochs': 4, 'sandwich': 2, 'shrink_lr': 0.003},
     "val_acc": {'largest': 97.2, 'smallest': 97.2, 'mid_cpu': 96.4, 'mid_systolic': 95.0, 'mid_energy': 96.4},
     "mean_val_acc": 96.44},
    {"schedule": {'epochs': 6, 'sandwich': 2, 'shrink_lr': 0.003},
     "val_acc": {'largest': 98.0, 'smallest': 97.8, 'mid_cpu': 96.8, 'mid_systolic': 97.0, 'mid_energy': 97.8},
     "mean_val_acc": 97.48},
    {"schedule": {'epochs': 8, 'sandwich': 2, 'shrink_lr': 0.003},
     "val_acc": {'largest': 98.2, 'smallest': 97.4, 'mid_cpu': 97.8, 'mid_systolic': 97.2, 'mid_energy': 97.2},
     "mean_val_acc": 97.56},
    {"schedule": {'epochs': 10, 'sandwich': 2, 'shrink_lr': 0.003},
     "val_acc": {'largest': 98.6, 'smallest': 97.0, 'mid_cpu': 98.8, 'mid_systolic': 97.0, 'mid_energy': 98.2},
     "mean_val_acc": 97.92},
    {"schedule": {'epochs': 12, 'sandwich': 2, 'shrink_lr': 0.003},
     "val_acc": {'largest': 98.4, 'smallest': 96.8, 'mid_cpu': 98.6, 'mid_systolic': 97.8, 'mid_energy': 97.0},
     "mean_val_acc": 97.72},
    {"schedule": {'epochs': 14, 'sandwich': 2, 'shrink_lr': 0.003},
     "val_acc": {'largest': 98.8, 'smallest': 97.2, 'mid_cpu': 98.4, 'mid_systolic': 98.0, 'mid_energy': 97.4},
     "mean_val_acc": 97.96},
]
N_CALIBRATION = 300                 # training images for each sub-network's batch-norm statistics
# fixed probe sub-networks scored on validation by scripts/nas_schedule_sweep.py and calibration_study: the
# largest, the smallest, and the choices of the first (one-sample-per-step) supernet's searches
PROBES = {"largest": largest().key(), "smallest": smallest().key(),
          "mid_cpu": "r28-s1:k7e4-s2:k7e3,k5e4,k7e3-s3:k7e2",
          "mid_systolic": "r20-s1:k5e2,k5e3-s2:k7e4-s3:k5e3,k5e2",
          "mid_energy": "r20-s1:k3e4,k5e3-s2:k5e4,k7e2-s3:k7e3"}
CALIBRATION_SIZES = (300, 1000, 2000)  # calibration_study: draws of these sizes, then the whole training split
CALIBRATION_DRAWS = 5
N_CALIBRATION_RANDOM = 10           # random sub-networks beside the probes in calibration_study
N_EVALUATIONS = 80                  # distinct architectures per search
SEARCH_SEEDS = (0, 1, 2)
N_LATENCY_FIT, N_LATENCY_HELD_OUT = 20, 25
BUDGET_QUANTILE = 0.25              # each budget: this quantile of the target cost over random architectures
N_BUDGET_SAMPLES = 1000
N_EXTRA_POOL = 40                   # random architectures (no budget) evaluated for the widget's range
FINETUNE_EPOCHS, FINETUNE_LR = 2, 5e-4
SEARCH = dict(population=16, sample_size=4, prob=0.2, crossover_prob=0.3)


class CostTable:
    """Every cost of an architecture (candidate_costs + the predictor's ``cpu_ms``), cached by key.

    Behind chapter 17, "Designing efficient models".
    """

    def __init__(self, predictor: LatencyPredictor, roofline: Roofline):
        self.predictor, self.roofline, self.cache = predictor, roofline, {}

    def __call__(self, arch: Arch) -> dict:
        key = arch.key()
        if key not in self.cache:
            costs = candidate_costs(arch, roofline=self.roofline, systolic=SYSTOLIC)
            self.cache[key] = {**costs, "cpu_ms": self.predictor.predict(arch)}
        return self.cache[key]

    def target(self, name: str):
        return lambda arch: target_cost(self(arch), name)


@validate_params(evaluate=Callable(), costs=Instance(CostTable, "a CostTable"),
                 budgets=Instance(dict, "a dict of target → budget"), seeds=ListOf(Seed()),
                 n_evaluations=PositiveInt())
def run_searches(evaluate, costs: CostTable, budgets: dict, *, seeds=SEARCH_SEEDS,
                 n_evaluations: int = N_EVALUATIONS) -> dict:
    """Evolution and random search under the CPU budget for each seed; evolution (seed 0) under the others.

    Returns ``{target: {"evolution": [SearchResult dict per seed], "random": [...]}}``.

    Behind chapter 17, "Designing efficient models".
    """
    out = {"cpu": {"evolution": [], "random": []}}
    cpu = costs.target("cpu")
    for seed in seeds:
        out["cpu"]["evolution"].append(evolution(evaluate, cpu, budgets["cpu"], n_evaluations=n_evaluations,
                                                 seed=seed, **SEARCH).to_dict())
        out["cpu"]["random"].append(random_search(evaluate, cpu, budgets["cpu"], n_evaluations=n_evaluations,
                                                  seed=seed).to_dict())
    for target in TARGETS[1:]:
        out[target] = {"evolution": [evolution(evaluate, costs.target(target), budgets[target],
                                               n_evaluations=n_evaluations, seed=seeds[0], **SEARCH).to_dict()]}
    return out


class _Accuracy:
    """Validation accuracy of a supernet sub-network (batch norm recalibrated), cached by key."""

    def __init__(self, supernet: Supernet, train, val):
        self.supernet, self.cache = supernet, {}
        self.calib = {r: _resize(train.x[:N_CALIBRATION], r) for r in RESOLUTIONS}
        self.val = val

    def subnet(self, arch: Arch):
        return recalibrate_bn(self.supernet.subnet(arch), self.calib[arch.resolution])

    def __call__(self, arch: Arch) -> float:
        key = arch.key()
        if key not in self.cache:
            self.cache[key] = evaluate(self.subnet(arch), self.val)
        return self.cache[key]


@validate_params(supernet=Instance(Supernet, "a Supernet"), train=Instance(Split, "an effdl.data.Split"),
                 val=Instance(Split, "an effdl.data.Split"), n_random=PositiveInt(), seed=Seed())
def calibration_study(supernet: Supernet, train: Split, val: Split, *, n_random: int = N_CALIBRATION_RANDOM,
                      seed: int = 2024) -> list[dict]:
    """How much the draw of calibration images moves a sub-network's validation accuracy, per number of images.

    For the :data:`PROBES` and ``n_random`` random sub-networks, batch norm is
    recalibrated on :data:`CALIBRATION_DRAWS` random draws of each size in
    :data:`CALIBRATION_SIZES` (and once on the whole training split), each
    scored on the **validation** split. One row per size: ``spread_pts``, the
    standard deviation between draws averaged over the sub-networks;
    ``mean_val_acc``; ``s_per_eval``, seconds per recalibration and
    evaluation on this thread. It checks :data:`N_CALIBRATION` on validation.

    Taught in chapter 17, "Designing efficient models".
    """
    rng = np.random.default_rng(seed)
    archs = [from_key(k) for k in PROBES.values()] + [sample(rng) for _ in range(n_random)]
    draws = {n: [rng.permutation(len(train))[:n] for _ in range(CALIBRATION_DRAWS)] for n in CALIBRATION_SIZES}
    draws[len(train)] = [np.arange(len(train))]
    rows = []
    for n, subsets in draws.items():
        t0 = time.perf_counter()
        accs = np.array([[evaluate(recalibrate_bn(supernet.subnet(a), train.x[i]), val)
                          for i in subsets] for a in archs])
        rows.append({"n_calibration": n, "draws": len(subsets), "n_archs": len(archs),
                     "spread_pts": round(float(accs.std(axis=1, ddof=1).mean()), 2) if len(subsets) > 1 else 0.0,
                     "mean_val_acc": round(float(accs.mean()), 2),
                     "s_per_eval": round((time.perf_counter() - t0) / accs.size, 3)})
    return rows


def _budgets(costs: CostTable) -> dict:
    rng = np.random.default_rng(123)
    archs = [sample(rng) for _ in range(N_BUDGET_SAMPLES)]
    out = {}
    for t in TARGETS:
        q = float(np.quantile([target_cost(costs(a), t) for a in archs], BUDGET_QUANTILE))
        out[t] = float(f"{q:.2g}")                                        # a round number near the quantile
    return out


def _latency(seed: int) -> tuple[dict, LatencyPredictor]:
    rng = np.random.default_rng(seed + 1000)
    fit_archs = [sample(rng) for _ in range(N_LATENCY_FIT)]
    held = [sample(rng) for _ in range(N_LATENCY_HELD_OUT)]
    m = measure_lut(repeats=30, archs=fit_archs + held, statistic="min")
    ms = m["end_to_end"]
    predictor = fit_predictor(m["lut"], fit_archs, [ms[a.key()] for a in fit_archs])
    rows = lambda archs: [{"key": a.key(), "measured_ms": ms[a.key()], "predicted_ms": predictor.predict(a)}
                          for a in archs]
    held_rows = rows(held)
    return ({"lut": m["lut"], "constant_ms": predictor.constant_ms, "fit": rows(fit_archs), "held_out": held_rows,
             "mape": mape([r["predicted_ms"] for r in held_rows], [r["measured_ms"] for r in held_rows]),
             "repeats": 30, "batch_size": 1, "threads": 1, "statistic": "min",
             "why_min": "measured on a shared machine: the median of a network of a few ms includes preemptions "
                        "that its 0.1-ms blocks rarely see; the fastest of 30 rounds is each one's time with the "
                        "core to itself"}, predictor)


def _final(arch: Arch, acc: _Accuracy, train, test, epochs_alone: int) -> dict:
    """Test accuracy cut from the supernet, fine-tuned, and trained alone from scratch."""
    net = acc.subnet(arch)
    row = {"key": arch.key(), "arch": arch.to_dict(), "val_acc": acc(arch), "test_acc_supernet": evaluate(net, test)}
    train_subnet(net, train, epochs=FINETUNE_EPOCHS, lr=FINETUNE_LR, seed=SEED)
    row["test_acc_finetuned"] = evaluate(net, test)
    with seeded(SEED):
        alone = build_subnet(arch, seed=SEED)
    train_subnet(alone, train, epochs=epochs_alone, seed=SEED)
    row["test_acc_alone"] = evaluate(alone, test)
    row["gap_pts"] = round(row["test_acc_supernet"] - row["test_acc_alone"], 2)
    return row


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Train the supernet, measure the latency table, search, and evaluate the chosen architectures.

    Behind chapter 17, "Designing efficient models".
    """
    out_dir, t0, seconds = Path(out_dir), time.perf_counter(), {}
    train, val, test = load_mnist("train"), load_mnist("val"), load_mnist("test")
    with threads(1):
        with seeded(SEED):
            supernet = Supernet()
        history = train_supernet(supernet, train, epochs=EPOCHS_PER_PHASE, full_epochs=EPOCHS_FULL, lr=LR,
                                 shrink_lr=SHRINK_LR, sandwich=SANDWICH, seed=SEED)
        seconds["supernet"] = round(time.perf_counter() - t0)
        torch.save(supernet.state_dict(), out_dir / "nas_supernet.pt.tmp")
        (out_dir / "nas_supernet.pt.tmp").replace(out_dir / "nas_supernet.pt")
        acc = _Accuracy(supernet, train, val)
        big = largest()
        supernet_test = evaluate(acc.subnet(big), test)
        t = time.perf_counter()
        calibration = calibration_study(supernet, train, val)
        seconds["calibration"] = round(time.perf_counter() - t)

        t = time.perf_counter()
        machine = measure_machine(kernels=False, budget_s=1.0)
        roofline = machine.roofline
        latency, predictor = _latency(SEED)
        costs = CostTable(predictor, roofline)
        budgets = _budgets(costs)
        seconds["latency_and_costs"] = round(time.perf_counter() - t)

        t = time.perf_counter()
        searches = run_searches(acc, costs, budgets)
        rng = np.random.default_rng(SEED + 7)
        for _ in range(N_EXTRA_POOL):
            acc(sample(rng))
        acc(big)
        seconds["search"] = round(time.perf_counter() - t)

        t = time.perf_counter()
        epochs_alone = EPOCHS_FULL + EPOCHS_PER_PHASE * (len(PHASES) - 1)
        targets = {}
        for target in TARGETS:
            best = searches[target]["evolution"][0]["best"]
            arch = from_key(best["key"])
            targets[target] = {**_final(arch, acc, train, test, epochs_alone), "budget": budgets[target],
                               "cost": best["cost"], "costs": costs(arch)}
        chosen = {name: build_subnet(from_key(v["key"])) for name, v in targets.items()}
        measured = time_modules({name: (net, (1, 1, net.resolution, net.resolution)) for name, net in chosen.items()},
                                repeats=50)
        for name, ms in measured.items():
            targets[name]["cpu_ms_measured"] = ms
        seconds["final"] = round(time.perf_counter() - t)

    pool = [{"key": k, "acc": a, **{c: costs(from_key(k))[c] for c in
                                    ("params", "macs", "weight_bytes", "dram_bytes", "roofline_ms", "cpu_ms",
                                     "systolic_us", "systolic_cycles", "systolic_util", "energy_uj")}}
            for k, a in acc.cache.items()]
    gaps = [abs(v["gap_pts"]) for v in targets.values()]
    return {
        "space": {"size": space_size(), "resolutions": list(RESOLUTIONS), "depths": list(DEPTHS),
                  "kernels": list(KERNELS), "expansions": list(EXPANSIONS), "widths": list(WIDTHS)},
        "seed": SEED, "threads": 1,
        "train": {"phases": list(PHASES), "epochs_full": EPOCHS_FULL, "epochs_per_phase": EPOCHS_PER_PHASE,
                  "optimizer": "adam", "lr": LR, "shrink_lr": SHRINK_LR, "batch_size": 64, "distill": True,
                  "sandwich": SANDWICH, "rule": "sandwich: the largest, the phase's smallest and "
                                                f"{SANDWICH} sampled sub-networks per step, in-place distillation",
                  "schedule_sweep": SCHEDULE_SWEEP, "loss": history["loss"]},
        "supernet_acc": supernet_test, "supernet_key": big.key(), "n_calibration": N_CALIBRATION,
        "calibration_study": calibration,
        "roofline": {"peak_gflops": round(machine.peak_gflops, 2), "bandwidth_gbs": round(machine.bandwidth_gbs, 2),
                     "threads": machine.threads, "source": "measured here: effdl.hardware.roofline.measure_machine"},
        "systolic": {"rows": SYSTOLIC.rows, "cols": SYSTOLIC.cols, "dataflow": SYSTOLIC.dataflow,
                     "clock_mhz": SYSTOLIC.clock_mhz},
        "latency": latency,
        "budgets": budgets, "budget_rule": f"the {BUDGET_QUANTILE:.0%} quantile of the target's cost over "
                                           f"{N_BUDGET_SAMPLES} random architectures, to 2 significant digits",
        "n_evaluations": N_EVALUATIONS, "search_seeds": list(SEARCH_SEEDS), "search_params": SEARCH,
        "searches": searches, "pool": pool,
        "targets": targets,
        "alone": {"epochs": epochs_alone, "finetune_epochs": FINETUNE_EPOCHS, "finetune_lr": FINETUNE_LR,
                  "max_abs_gap_pts": max(gaps), "within_1pt": all(g <= 1.0 for g in gaps)},
        "seconds": seconds,
    }


def _summary(results: list[dict], costs: CostTable) -> dict:
    bests = [r["best"] for r in results]
    archs = [from_key(b["key"]) for b in bests]
    return {"best_acc": round(float(np.mean([b["acc"] for b in bests])), 4),
            "latency_ms": round(float(np.mean([costs(a)["cpu_ms"] for a in archs])), 4),
            "energy_uj": round(float(np.mean([costs(a)["energy_uj"] for a in archs])), 4),
            "per_seed": [{"seed": r["seed"], "key": b["key"], "acc": b["acc"]} for r, b in zip(results, bests)]}


@validate_params(record=Instance(dict, "the nas record (a dict) or None", optional=True))
def nas_report(record: dict | None = None) -> dict:
    """Chapter 17's search as one JSON-able dict (``effdl reproduce nas``), re-run from the record.

    The searches are run again with the record's seeds, budgets and latency
    table, each evaluation looked up in the record's pool (no training):
    ``matches_record`` says whether every search chose what the record says.
    ``best_acc`` is the validation accuracy (%) of each search's best, averaged
    over the seeds; its ``latency_ms`` the predictor's and ``energy_uj`` the
    45 nm model's, averaged likewise. The targets' accuracies are on the test
    split, from the record.

    Behind chapter 17, "Designing efficient models".
    """
    rec = load_record("nas") if record is None else record
    lat = rec["latency"]
    predictor = LatencyPredictor(lat["lut"], lat["constant_ms"])
    roof = rec["roofline"]
    costs = CostTable(predictor, Roofline("this CPU", roof["peak_gflops"] * 1e9, roof["bandwidth_gbs"] * 1e9, "dram"))
    pool = {p["key"]: p["acc"] for p in rec["pool"]}

    def lookup(arch: Arch) -> float:
        if arch.key() not in pool:
            raise ValueError(f"nas_report: record must hold every architecture the searches evaluate; "
                             f"got none for {arch.key()!r}.")
        return pool[arch.key()]

    searches = run_searches(lookup, costs, rec["budgets"], seeds=rec["search_seeds"],
                            n_evaluations=rec["n_evaluations"])
    same = all([h["key"] for h in a["history"]] == [h["key"] for h in b["history"]]
               for t in searches for m in searches[t] for a, b in zip(searches[t][m], rec["searches"][t][m]))
    evo, rnd = _summary(searches["cpu"]["evolution"], costs), _summary(searches["cpu"]["random"], costs)
    targets = {}
    for t, row in rec["targets"].items():
        c = costs(from_key(row["key"]))
        targets[t] = {"key": row["key"], "budget": rec["budgets"][t], "val_acc": row["val_acc"],
                      "test_acc_supernet": row["test_acc_supernet"], "test_acc_finetuned": row["test_acc_finetuned"],
                      "test_acc_alone": row["test_acc_alone"], "cpu_ms": round(c["cpu_ms"], 4),
                      "systolic_us": round(c["systolic_us"], 3), "energy_uj": round(c["energy_uj"], 3),
                      "params": c["params"], "macs": c["macs"]}
    return {"space_size": rec["space"]["size"], "supernet_acc": rec["supernet_acc"],
            "evaluations": rec["n_evaluations"], "budget_ms": rec["budgets"]["cpu"], "evolution": evo, "random": rnd,
            "evolution_wins": sum(e["acc"] > r["acc"] for e, r in zip(evo["per_seed"], rnd["per_seed"])),
            "predictor_mape": round(lat["mape"], 3), "targets": targets, "matches_record": same,
            "acc_split": "val for the searches, test for the targets"}
