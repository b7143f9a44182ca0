"""Choose the supernet's training schedule on the validation split (maintainers; chapter 17).

``python scripts/nas_schedule_sweep.py '{"epochs": 4, "sandwich": 2, "shrink_lr": 0.003}' [...]``

Each argument is a JSON dict of :func:`effdl.nas.supernet.train_supernet`
keywords (on top of ``full_epochs=6``, seed 0, one thread). For each, a
supernet is trained on the training split and five fixed probe sub-networks
are cut from it (batch norm recalibrated on 300 training images, as in the
search): the largest, the smallest, and three mid-sized ones (the
architectures the first, one-sample-per-step supernet's searches chose for the
CPU, the systolic array and energy). Printed as one JSON line per schedule:
their **validation** accuracies and the mean, which picks the schedule that
``effdl precompute nas`` uses (``SCHEDULE_SWEEP`` in
``effdl/precompute/nas.py`` holds the results). The test split is not read.
About 11-17 min per schedule on one core.
"""
from __future__ import annotations

import json
import sys
import time

from effdl.data import load_mnist
from effdl.nas.space import from_key
from effdl.nas.supernet import Supernet, train_supernet
from effdl.precompute.nas import EPOCHS_FULL, PROBES, SEED, _Accuracy
from effdl.train import seeded, threads


def sweep_one(schedule: dict) -> dict:
    train, val = load_mnist("train"), load_mnist("val")
    t0 = time.perf_counter()
    with threads(1):
        with seeded(SEED):
            net = Supernet()
        train_supernet(net, train, **{"full_epochs": EPOCHS_FULL, "seed": SEED, **schedule})
        accuracy = _Accuracy(net, train, val)          # the search's own evaluation: recalibrated, validation
        acc = {name: accuracy(from_key(key)) for name, key in PROBES.items()}
    return {"schedule": schedule, "val_acc": acc, "mean_val_acc": round(sum(acc.values()) / len(acc), 2),
            "train_s": round(time.perf_counter() - t0)}


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        print(json.dumps(sweep_one(json.loads(arg))), flush=True)
