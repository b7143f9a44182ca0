"""Registry of each chapter's headline experiment, printed as one JSON object.

``effdl reproduce NAME --json`` runs the experiment and prints the figures the
chapter reports, so a reader (or ``shared/reproduce_schema.py``) can check
them without opening the notebook. Register a new one with :func:`experiment`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from ._validate import check_choice


@dataclass(frozen=True)
class Experiment:
    name: str
    chapter: str
    summary: str
    run: Callable[[], dict]


EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str, *, chapter: str, summary: str):
    """Decorator: register ``fn() -> dict`` (JSON-able) as experiment ``name``."""
    def register(fn):
        if name in EXPERIMENTS:
            raise ValueError(f"experiment {name!r} is registered twice.")
        EXPERIMENTS[name] = Experiment(name, chapter, summary, fn)
        return fn
    return register


def run(name: str) -> dict:
    """Run experiment ``name`` and return its result."""
    check_choice("name", name, EXPERIMENTS)
    return EXPERIMENTS[name].run()


def to_json(result: dict) -> str:
    return json.dumps(result, indent=2, sort_keys=False, allow_nan=False)


def to_text(result: dict, indent: int = 0) -> str:
    """A readable nested listing of a result for the terminal."""
    lines = []
    for key, value in result.items():
        if isinstance(value, dict):
            lines.append(" " * indent + f"{key}:")
            lines.append(to_text(value, indent + 2))
        else:
            lines.append(" " * indent + f"{key}: {value:.6g}" if isinstance(value, float)
                         else " " * indent + f"{key}: {value}")
    return "\n".join(lines)


# ------------------------------------------------------------------ experiments
@experiment("numbers", chapter="01",
            summary="fp32/fp16/bf16/int32/int16/int8 and fixed point: fields, range, precision")
def _numbers() -> dict:
    from .numerics import numbers_report
    return numbers_report()


@experiment("pruning", chapter="02",
            summary="LeNet-300-100 / LeNet-5 pruned to 8 % and the row-LSTM to 90 %, accuracy on the test split")
def _pruning() -> dict:
    from . import pruning, zoo
    from .data import load_mnist
    from .train import evaluate

    test = load_mnist("test", source="embedded")
    out = {}
    for key, arch, name in [("lenet300", "lenet300", "lenet300_pruned"), ("lenet5", "lenet5", "lenet5_pruned"),
                            ("lstm", "lstm", "lstm_pruned90"), ("lstm95", "lstm", "lstm_pruned95")]:
        model = zoo.load(name)
        row = {"params": pruning.nonzero_parameters(model),
               "kept_fraction": round(pruning.kept_fraction(model), 4),
               "acc_dense": evaluate(zoo.load(arch), test), "acc_pruned": evaluate(model, test)}
        row["compression"] = round(1 / row["kept_fraction"], 1)
        out[key] = row
    return out


@experiment("deep-compression", chapter="04",
            summary="LeNet-300-100 / LeNet-5: prune → trained quantization → Huffman, written to a file; "
                    "bytes on disk, ratio and test accuracy per stage")
def _deep_compression() -> dict:
    from .precompute.compression import compression_report
    return compression_report()


@experiment("paper-tables", chapter="04",
            summary="AlexNet / VGG-16 compression calculated from Deep Compression's per-layer statistics")
def _paper_tables() -> dict:
    from .paper_tables import paper_tables_report
    return paper_tables_report()


@experiment("winograd", chapter="08",
            summary="Winograd F(2x2,3x3) / F(4x4,3x3): multiply counts, error vs direct, VGG-16 layer times")
def _winograd() -> dict:
    from .winograd import winograd_report
    return winograd_report()


@experiment("lowrank", chapter="07",
            summary="LeNet-300-100 fc1 by truncated SVD, LeNet-5 conv1+conv2 decomposed (uniform vs selected ranks), "
                    "a tensor-train fc1: accuracy, speedup, CPU time")
def _lowrank() -> dict:
    from .precompute.lowrank import lowrank_report
    return lowrank_report()


@experiment("quantization", chapter="05",
            summary="LeNet-5: accuracy vs bit width (w / a / wa), integer-only inference, torch.ao int8 oracle")
def _quantization() -> dict:
    from .quantization import quantization_report
    return quantization_report()


@experiment("ternary", chapter="06",
            summary="LeNet-5 / LeNet-300-100 with binary, TWN and TTQ weights: test accuracy vs full precision, "
                    "TTQ's learned Wp/Wn per layer, size ratio")
def _ternary() -> dict:
    from .precompute.ternary import ternary_report
    return ternary_report()


@experiment("roofline", chapter="09",
            summary="TPU / K80 / Haswell rooflines, the TPU paper's six apps on them, the 256x256 systolic array "
                    "on AlexNet fc6 at batch 200, this machine's measured peak and bandwidth")
def _roofline() -> dict:
    from .hardware.roofline import roofline_report
    return roofline_report()


@experiment("eie", chapter="10",
            summary="EIE, 64 PEs at 800 MHz: the paper's nine layers simulated cycle by cycle (cycles, µs, "
                    "load balance, energy), geometric-mean speedup over the paper's CPU and GPU times")
def _eie() -> dict:
    from .hardware.eie import eie_report
    return eie_report()


@experiment("parallel", chapter="11",
            summary="real torch.distributed processes: DDP (2 × batch B) vs one process (batch 2B), an FC and a "
                    "conv layer split over processes, sync parameter server vs all-reduce, seconds per epoch")
def _parallel() -> dict:
    from .training.parallel import parallel_report
    return parallel_report()


@experiment("mixed-precision", chapter="12",
            summary="LeNet-300-100: fp16 underflow of real gradients without / with dynamic loss scaling; "
                    "test accuracy trained in fp32, emulated fp16 with fp32 master weights, pure fp16")
def _mixed_precision() -> dict:
    from .training.mixed_precision import mixed_precision_report
    return mixed_precision_report()


@experiment("distillation", chapter="13",
            summary="a small student trained on 3 % of the training set with hard labels vs the teacher's soft "
                    "targets (temperature T), next to the teacher and the student trained on all the data")
def _distillation() -> dict:
    from .training.distillation import distillation_report
    return distillation_report()


@experiment("dsd", chapter="13",
            summary="dense → sparse → dense training vs a dense baseline trained for the same epochs, "
                    "mean ± std over seeds, test accuracy")
def _dsd() -> dict:
    from .training.dsd import dsd_report
    return dsd_report()
