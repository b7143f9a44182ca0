"""Registry of each chapter's headline experiment, printed as one JSON object.

``effdl reproduce NAME --json`` runs the experiment and prints the figures the
chapter reports, so a reader can check them without opening the notebook.
Register a new one with :func:`experiment`, declaring the keys its JSON
promises (``keys``: a nested dict whose leaves are ``float`` — any number —,
``int``, ``bool``, ``str``, ``dict`` or ``list``); :func:`shape_problems`
checks a result against them, and the tests run every experiment through it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from . import pruning, zoo
from .data import load_mnist
from .hardware.eie import eie_report
from .hardware.roofline import roofline_report
from .numerics import numbers_report
from .paper_tables import paper_tables_report
from .precompute.compression import compression_report
from .precompute.distillation import distillation_report
from .precompute.dsd import dsd_report
from .precompute.efficient_blocks import efficient_blocks_report
from .precompute.llm_quant import llm_quant_report
from .precompute.llm_sparsity import llm_sparsity_report
from .precompute.lm_distill import llm_decode_report
from .precompute.lowrank import lowrank_report
from .precompute.mixed_precision import mixed_precision_report
from .precompute.nas import nas_report
from .precompute.quantization import quantization_report
from .precompute.ternary import ternary_report
from .train import evaluate
from .training.parallel import parallel_report
from .winograd import winograd_report
from .validation import Instance, Interval, Options, Unchecked, validate_params


@dataclass(frozen=True)
class Experiment:
    """A registered experiment: its chapter, a one-line summary, the function that runs it, its JSON keys.

    Behind chapter 15, "Wrap-up: what reproduced".
    """
    name: str
    chapter: str
    summary: str
    run: Callable[[], dict]
    keys: dict                      # the JSON's promised shape (see shape_problems)


EXPERIMENTS: dict[str, Experiment] = {}


@validate_params(name=Instance(str, "an experiment name"),
                 chapter=Instance(str, "a chapter id"),
                 summary=Instance(str, "a one-line summary"),
                 keys=Instance(dict, "a dict of key → type or nested dict"))
def experiment(name: str, *, chapter: str, summary: str, keys: dict):
    """Decorator: register ``fn() -> dict`` (JSON-able) as experiment ``name``, promising ``keys``.

    Taught in chapter 15, "Wrap-up: what reproduced".
    """

    def register(fn):
        if name in EXPERIMENTS:
            raise ValueError(f"experiment {name!r} is registered twice.")
        EXPERIMENTS[name] = Experiment(name, chapter, summary, fn, keys)
        return fn
    return register


@validate_params(value=Unchecked("any JSON value; the result is the list of its problems"),
                 keys=Unchecked("a type or a nested dict of types"),
                 path=Instance(str, "a JSON path"))
def shape_problems(value: Any, keys: Any, path: str = "") -> list[str]:
    """What ``value`` lacks of the shape ``keys`` promises (empty list: it has it all).

    Leaves: ``float`` accepts any number (not a bool), ``int`` an int (not a
    bool), ``bool``/``str``/``dict``/``list`` their type. Extra keys are fine.

    >>> shape_problems({"a": 1, "b": {"c": True}}, {"a": float, "b": {"c": bool, "d": int}})
    ['/b/d: missing']
    >>> shape_problems({"a": True}, {"a": float})
    ['/a: expected float, got bool']

    Behind chapter 15, "Wrap-up: what reproduced".
    """
    if isinstance(keys, dict):
        if not isinstance(value, dict):
            return [f"{path or '/'}: expected an object, got {type(value).__name__}"]
        out = []
        for key, sub in keys.items():
            out += [f"{path}/{key}: missing"] if key not in value else shape_problems(value[key], sub, f"{path}/{key}")
        return out
    kinds = (int, float) if keys is float else keys
    if isinstance(value, bool) and keys is not bool or not isinstance(value, kinds):
        return [f"{path}: expected {keys.__name__}, got {type(value).__name__}"]
    return []


@validate_params(name=Options(lambda: EXPERIMENTS))
def run(name: str) -> dict:
    """Run experiment ``name`` and return its result.

    Taught in chapter 15, "Wrap-up: what reproduced".
    """
    return EXPERIMENTS[name].run()


@validate_params(result=Instance(dict, "an experiment's result"))
def to_json(result: dict) -> str:
    """An experiment's result as indented JSON (NaN and inf refused: strict JSON).

    Taught in chapter 15, "Wrap-up: what reproduced".
    """
    return json.dumps(result, indent=2, sort_keys=False, allow_nan=False)


@validate_params(result=Instance(dict, "an experiment's result"), indent=Interval(int, 0, None))
def to_text(result: dict, indent: int = 0) -> str:
    """A readable nested listing of a result for the terminal.

    Behind chapter 15, "Wrap-up: what reproduced".
    """
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
# Shapes several experiments share (the keys each one's JSON promises).
_PRUNED = {"params": int, "kept_fraction": float, "acc_dense": float, "acc_pruned": float}
_COMPRESSED = {"dense_bytes": int, "file_bytes": int, "ratio": float, "acc_dense": float, "acc_compressed": float,
               "stages": {"pruned": dict, "quantized": dict, "huffman": dict}}
_ALEXNET = ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
_VGG16 = ("conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3", "conv4_1", "conv4_2",
          "conv4_3", "conv5_1", "conv5_2", "conv5_3", "fc6", "fc7", "fc8")
_CHIPS = ("TPU", "K80", "Haswell")
_TPU_APPS = ("MLP0", "MLP1", "LSTM0", "LSTM1", "CNN0", "CNN1")
_EIE_LAYERS = ("Alex-6", "Alex-7", "Alex-8", "VGG-6", "VGG-7", "VGG-8", "NT-We", "NT-Wd", "NT-LSTM")


@experiment("numbers", chapter="01",
            summary="fp32/fp16/bf16/int32/int16/int8 and fixed point: fields, range, precision",
            keys={"formats": {**{f: {"max": float, "min_normal": float, "eps": float}
                                 for f in ("fp32", "fp16", "bf16")},
                              **{f: {"min": int, "max": int} for f in ("int32", "int16", "int8")}}})
def _numbers() -> dict:
    return numbers_report()


@experiment("pruning", chapter="02",
            summary="LeNet-300-100 / LeNet-5 pruned to 8 % and the row-LSTM to 90 %, accuracy on the test split",
            keys={"lenet300": _PRUNED, "lenet5": _PRUNED,
                  "lstm": {"kept_fraction": float, "acc_dense": float, "acc_pruned": float}})
def _pruning() -> dict:

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
                    "bytes on disk, ratio and test accuracy per stage",
            keys={"lenet300": _COMPRESSED, "lenet5": _COMPRESSED})
def _deep_compression() -> dict:
    return compression_report()


@experiment("paper-tables", chapter="04",
            summary="AlexNet / VGG-16 compression calculated from Deep Compression's per-layer statistics",
            keys={net: {"layers": {layer: {"cr_pq": float, "cr_pqh": float} for layer in layers},
                       "total": {"ratio_pq": float, "ratio_pqh": float}}
                  for net, layers in (("alexnet", _ALEXNET), ("vgg16", _VGG16))})
def _paper_tables() -> dict:
    return paper_tables_report()


@experiment("winograd", chapter="08",
            summary="Winograd F(2x2,3x3) / F(4x4,3x3): multiply counts, error vs direct, VGG-16 layer times",
            keys={**{f: {"mults_direct": int, "mults_winograd": int, "reduction": float,
                      "max_rel_err_fp32": float, "max_rel_err_fp16": float} for f in ("F(2x2,3x3)", "F(4x4,3x3)")},
                  "vgg16_ms": dict,
                  **{k: {"F2": float, "F4": float} for k in ("speedup_vs_im2col", "speedup_vs_torch")}})
def _winograd() -> dict:
    return winograd_report()


@experiment("lowrank", chapter="07",
            summary="LeNet-300-100 fc1 by truncated SVD, LeNet-5 conv1+conv2 decomposed (uniform vs selected ranks), "
                    "a tensor-train fc1: accuracy, speedup, CPU time",
            keys={"fc_svd": {"layer": str, "rank": int, "param_ratio": float, "acc_dense": float,
                             "acc_lowrank": float},
                  "conv": {"layer": str, "uniform": dict, "selected": dict},
                  "tt": {"params_dense": int, "params_tt": int, "acc_tt": float,
                         "ms_1": {"dense": float, "tt": float}, "ms_100": {"dense": float, "tt": float}}})
def _lowrank() -> dict:
    return lowrank_report()


@experiment("quantization", chapter="05",
            summary="LeNet-5: accuracy vs bit width (w / a / wa), integer-only inference, torch.ao int8 oracle",
            keys={"lenet5": {"fp_acc": float,
                             "bits": {b: {"w": float, "a": float, "wa": float} for b in ("8", "6", "4", "2")},
                             "int_inference_acc": float, "int_matches_fake_quant": bool,
                             "torch_ao_int8_acc": float}})
def _quantization() -> dict:
    return quantization_report()


@experiment("ternary", chapter="06",
            summary="LeNet-5 / LeNet-300-100 with binary, TWN and TTQ weights: test accuracy vs full precision, "
                    "TTQ's learned Wp/Wn per layer, size ratio",
            keys={"lenet5": {"fp_acc": float, "binary_acc": float, "twn_acc": float, "ttq_acc": float,
                             "ttq_wp_wn": dict, "size_ratio": float}})
def _ternary() -> dict:
    return ternary_report()


@experiment("roofline", chapter="09",
            summary="TPU / K80 / Haswell rooflines, the TPU paper's six apps on them, the 256x256 systolic array "
                    "on AlexNet fc6 at batch 200, this machine's measured peak and bandwidth",
            keys={"convention": str,
                  "chips": {c: {"peak_tops": float, "bandwidth_gbs": float, "ridge": float} for c in _CHIPS},
                  "apps": {a: {"intensity": float, "attainable_tops": {c: float for c in _CHIPS}} for a in _TPU_APPS},
                  "systolic": {"array": list, "M": int, "N": int, "K": int, "cycles": int, "utilization": float},
                  "this_machine": {"peak_gflops": float, "bandwidth_gbs": float}})
def _roofline() -> dict:
    return roofline_report()


@experiment("eie", chapter="10",
            summary="EIE, 64 PEs at 800 MHz: the paper's nine layers simulated cycle by cycle (cycles, µs, "
                    "load balance, energy), geometric-mean speedup over the paper's CPU and GPU times",
            keys={"n_pes": int, "clock_mhz": float, "queue_depth": int,
                  "layers": {layer: {"rows": int, "cols": int, "weight_density": float, "act_density": float,
                                     "cycles": int, "latency_us": float, "load_balance": float, "energy_uj": float}
                             for layer in _EIE_LAYERS},
                  "geomean_speedup": {"cpu_dense": float, "gpu_dense": float, "cpu_sparse": float, "gpu_sparse": float}})
def _eie() -> dict:
    return eie_report()


@experiment("parallel", chapter="11",
            summary="real torch.distributed processes: DDP (2 × batch B) vs one process (batch 2B), an FC and a "
                    "conv layer split over processes, sync parameter server vs all-reduce, seconds per epoch",
            keys={"processes": int, "ddp_max_abs_diff": float, "model_parallel_max_abs_diff": float,
                  "ps_sync_matches_allreduce": bool, "epoch_s": dict})
def _parallel() -> dict:
    return parallel_report()


@experiment("mixed-precision", chapter="12",
            summary="LeNet-300-100: fp16 underflow of real gradients without / with dynamic loss scaling; "
                    "test accuracy trained in fp32, emulated fp16 with fp32 master weights, pure fp16",
            keys={"grad_underflow_fp16": float, "grad_underflow_fp16_scaled": float, "acc_fp32": float,
                  "acc_fp16_master_fp32": float, "acc_fp16_pure": float})
def _mixed_precision() -> dict:
    return mixed_precision_report()


@experiment("distillation", chapter="13",
            summary="a small student trained on 3 % of the training set with hard labels vs the teacher's soft "
                    "targets (temperature T), next to the teacher and the student trained on all the data",
            keys={"data_fraction": float, "teacher_acc": float, "full_data_acc": float, "student_hard_acc": float,
                  "student_soft_acc": float, "temperature": float})
def _distillation() -> dict:
    return distillation_report()


@experiment("dsd", chapter="13",
            summary="dense → sparse → dense training vs a dense baseline trained for the same epochs, "
                    "mean ± std over seeds, test accuracy",
            keys={"seeds": int, "baseline": {"mean": float, "std": float}, "dsd": {"mean": float, "std": float},
                  "sparsity": float})
def _dsd() -> dict:
    return dsd_report()


@experiment("efficient-blocks", chapter="17",
            summary="three MNIST nets of one skeleton, standard 3×3 convs vs fire modules vs depthwise-separable "
                    "convs: parameters, MACs, test accuracy (record), CPU ms per image (batch 1, one thread, live)",
            keys={"fire": {"params": int, "macs": int, "acc": float},
                  "depthwise_separable": {"params": int, "macs": int, "acc": float, "cpu_ms": float},
                  "standard": {"params": int, "macs": int, "acc": float, "cpu_ms": float}})
def _efficient_blocks() -> dict:
    return efficient_blocks_report()


@experiment("nas", chapter="17",
            summary="once-for-all supernet on MNIST: regularized evolution vs random search at equal evaluations "
                    "under a CPU latency budget (3 seeds, re-run from the record), latency-table error on held-out "
                    "networks, the architecture chosen for CPU / systolic array / energy",
            keys={"space_size": int, "supernet_acc": float, "evaluations": int,
                  "evolution": {"best_acc": float, "latency_ms": float, "energy_uj": float},
                  "random": {"best_acc": float, "latency_ms": float}, "predictor_mape": float,
                  "targets": {"cpu": dict, "systolic": dict, "energy": dict}})
def _nas() -> dict:
    return nas_report()


@experiment("llm-quant", chapter="19",
            summary="the book's 1.3 M-parameter byte-level GPT quantized after training: perplexity per byte on the "
                    "test split for RTN (8 bits per channel; 4 and 3 bits in groups of 32), GPTQ and AWQ (4 and 3 "
                    "bits, groups of 32, and the papers' groups of 128, the last of a 160-wide row narrower), W8A8 "
                    "naive and SmoothQuant (alpha chosen on validation); bytes on disk of the fp32 and packed "
                    "4-bit models (from the record)",
            keys={"fp_ppl": float, "group_size": int, "paper_group_size": int,
                  "rtn": {"w8": float, "w4_g32": float, "w3_g32": float, "w4_g128": float, "w3_g128": float},
                  **{m: {"w4_g32": float, "w3_g32": float, "w4_g128": float, "w3_g128": float}
                     for m in ("gptq", "awq")},
                  "w8a8": {"naive": float, "smoothquant": float},
                  "bytes": {"fp32": int, "w4_g32": int, "w4_g128": int}})
def _llm_quant() -> dict:
    return llm_quant_report()


@experiment("llm-sparsity", chapter="20",
            summary="the book's 1.3 M-parameter byte-level GPT pruned after training, every linear layer per output "
                    "row: perplexity per byte on the test split, dense and for magnitude, Wanda and SparseGPT at 50 % "
                    "unstructured and at 2:4 (from the record; SparseGPT's mask block chosen on validation)",
            keys={"dense_ppl": float, "sparsegpt_mask_block": int,
                  **{m: {"50%": float, "2:4": float} for m in ("magnitude", "wanda", "sparsegpt")}})
def _llm_sparsity() -> dict:
    return llm_sparsity_report()


@experiment("llm-decode", chapter="21",
            summary="the book's 1.3 M-parameter GPT decoding greedily: tokens/s without and with a KV cache (live, "
                    "one thread), the cache's bytes per token measured and by formula, and speculative decoding "
                    "with the distilled 125 k-parameter draft: greedy output identical to the target's (live), "
                    "acceptance and wall-clock speed-up over the target alone (from the record)",
            keys={"tokens_per_s": {"no_cache": float, "kv_cache": float}, "kv_bytes_per_token": int,
                  "kv_bytes_formula": int,
                  "spec": {"acceptance": float, "speedup": float, "greedy_identical": bool, "n_draft": int,
                           "expected_speedup": float, "target_calls_per_token": float, "cost_ratio": float,
                           "acceptance_plain": float, "speedup_plain": float}})
def _llm_decode() -> dict:
    return llm_decode_report()
