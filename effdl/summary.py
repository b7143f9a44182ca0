"""What reproduced — chapter 15, "Wrap-up".

Runs every registered ``effdl reproduce`` experiment (:mod:`effdl.reproduce`)
and sets its headline figures beside the papers' (each with its source; the
Deep Compression totals come from :mod:`effdl.paper_tables`). A figure that
comes from training is the shipped record's, the same on every machine; the
experiment also re-runs the training live and says whether it matched the
record within a stated tolerance (``rerun_matches``).
Each :class:`Claim` names the experiment, how to read *our* number out of its
JSON, the paper's number with its source, and a criterion fixed in advance
(written out in words, so the reader can disagree with it). The verdict is
the criterion applied to the two numbers, nothing else: a claim measured on a
different network or data set than the paper's says so in ``paper_note``.

>>> rows = results_table({"winograd": {"F(2x2,3x3)": {"reduction": 2.25}, "F(4x4,3x3)": {"reduction": 4.0}}},
...                      experiments=["winograd"])
>>> [(r["what"], r["ours"], r["verdict"]) for r in rows]
[('F(2×2,3×3) multiply reduction', 2.25, 'reproduced'), ('F(4×4,3×3) multiply reduction', 4.0, 'reproduced')]
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import reproduce
from .paper_tables import PAPER_TABLES
from . import validation as V
from .validation import Instance, ListOf, Options, validate_params


REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"


@dataclass(frozen=True)
class Claim:
    """One paper figure and the experiment that re-measures it.

    Behind chapter 15, "Wrap-up: what reproduced".
    """
    chapter: str
    experiment: str                        # name in effdl.reproduce.EXPERIMENTS
    what: str
    ours: Callable[[dict], float]          # our number, read from the experiment's JSON
    paper: float | None                    # the paper's number (None: a target, not a paper figure)
    paper_note: str                        # what the paper measured it on
    source: str
    criterion: str                         # the test below, in words
    holds: Callable[[float, float | None, dict], bool]    # (ours, paper, the experiment's JSON)
    unit: str = ""
    noise_bound: float | None = None       # ours is rounding noise: shown as "< bound" when below it


def _within(fraction: float):
    return lambda ours, paper, result: abs(ours - paper) <= fraction * abs(paper)


def _at_least(fraction: float):
    return lambda ours, paper, result: ours >= fraction * paper


def _no_worse_than(points: float):
    return lambda ours, paper, result: ours >= -points


def _equal(ours, paper, result) -> bool:
    return ours == paper


def _dsd_beats_spread(ours, paper, result) -> bool:
    # a difference of means counts only if it is larger than the seeds' spread
    return ours > max(result["dsd"]["std"], result["baseline"]["std"])


_DC = "Han, Mao & Dally, Deep Compression, ICLR 2016"
_PRUNE = "Han et al., Learning both Weights and Connections, NIPS 2015"
_EIE = "Han et al., EIE, ISCA 2016, abstract"
_TPU = "Jouppi et al., ISCA 2017 (the rooflines, §4)"
_MP = "Micikevicius et al., Mixed Precision Training, ICLR 2018"
_GTC = "Ginsburg, Nikolaev & Micikevicius, Training with Mixed Precision, NVIDIA GTC 2017"
_KD = "Hinton, Vinyals & Dean, Distilling the Knowledge in a Neural Network, 2015 (speech, frame accuracy)"
_DSD = "Han et al., DSD, ICLR 2017 (ImageNet top-1 error)"
# Tolerances: 1 test image of 1,000 is 0.1 points and the binomial standard
# error of a ~95 % accuracy on 1,000 images is ~0.7 points, so accuracy claims
# allow a 0.5-point drop; ratios and speedups must land within 10-20 %.
_DROP = 0.5


def _acc_change(section: str, before: str, after: str) -> Callable[[dict], float]:
    return lambda r: round(r[section][after] - r[section][before], 2)


def _huffman_saving(r: dict) -> float:
    # 1 − (P+Q+H bytes) / (P+Q bytes), in percent
    return round(100 * (1 - r["stages"]["huffman"]["bytes"] / r["stages"]["quantized"]["bytes"]), 1)


def _bits_change(r: dict) -> float:
    return round(r["lenet5"]["bits"]["8"]["wa"] - r["lenet5"]["fp_acc"], 2)


CLAIMS: tuple[Claim, ...] = (
    Claim("01", "numbers", "fp32 / fp16 / bf16 / int fields and ranges match numpy and torch",
          lambda r: float(all(v for f in r["formats"].values() for k, v in f.items() if k.startswith("matches"))),
          1.0, "IEEE 754-2008 binary32 / binary16; bfloat16", "IEEE 754-2008; numpy.finfo, torch.finfo",
          "all formats match (1 = yes)", _equal),
    # --- pruning (chapter 2)
    Claim("02", "pruning", "LeNet-300-100 pruned: fewer weights", lambda r: r["lenet300"]["compression"],
          12.0, "LeNet-300-100, MNIST", _PRUNE, "at least 90 % of the paper's ratio", _at_least(0.9), "×"),
    Claim("02", "pruning", "LeNet-300-100 pruned: accuracy change", _acc_change("lenet300", "acc_dense", "acc_pruned"),
          0.05, "LeNet-300-100, MNIST: error 1.64 → 1.59 %", _PRUNE, f"drop of at most {_DROP} points",
          _no_worse_than(_DROP), "pts"),
    Claim("02", "pruning", "LeNet-5 pruned: fewer weights", lambda r: r["lenet5"]["compression"],
          12.0, "LeNet-5, MNIST", _PRUNE, "at least 90 % of the paper's ratio", _at_least(0.9), "×"),
    Claim("02", "pruning", "LeNet-5 pruned: accuracy change", _acc_change("lenet5", "acc_dense", "acc_pruned"),
          0.03, "LeNet-5, MNIST: error 0.80 → 0.77 %", _PRUNE, f"drop of at most {_DROP} points",
          _no_worse_than(_DROP), "pts"),
    # --- Deep Compression (chapter 4)
    Claim("04", "deep-compression", "LeNet-300-100 file on disk vs dense", lambda r: r["lenet300"]["ratio"],
          PAPER_TABLES["lenet300"].reported["ratio_pqh"], "LeNet-300-100, MNIST", f"{_DC}, Table 1",
          "at least 90 % of the paper's ratio", _at_least(0.9), "×"),
    Claim("04", "deep-compression", "LeNet-300-100 compressed: accuracy change",
          _acc_change("lenet300", "acc_dense", "acc_compressed"), 0.06, "error 1.64 → 1.58 %", f"{_DC}, Table 1",
          f"drop of at most {_DROP} points", _no_worse_than(_DROP), "pts"),
    Claim("04", "deep-compression", "LeNet-5 file on disk vs dense", lambda r: r["lenet5"]["ratio"],
          PAPER_TABLES["lenet5"].reported["ratio_pqh"], "LeNet-5, MNIST", f"{_DC}, Table 1",
          "at least 90 % of the paper's ratio", _at_least(0.9), "×"),
    Claim("04", "deep-compression", "LeNet-5 compressed: accuracy change",
          _acc_change("lenet5", "acc_dense", "acc_compressed"), 0.06, "error 0.80 → 0.74 %", f"{_DC}, Table 1",
          f"drop of at most {_DROP} points", _no_worse_than(_DROP), "pts"),
    Claim("04", "deep-compression", "LeNet-300-100: bytes Huffman coding saves after P+Q",
          lambda r: _huffman_saving(r["lenet300"]), None, "'Huffman coding saves 20–30 % more'", f"{_DC}, §4",
          "between 20 and 30 %", lambda o, p, r: 20.0 <= o <= 30.0, "%"),
    Claim("04", "deep-compression", "LeNet-5: bytes Huffman coding saves after P+Q",
          lambda r: _huffman_saving(r["lenet5"]), None, "'Huffman coding saves 20–30 % more'", f"{_DC}, §4",
          "between 20 and 30 %", lambda o, p, r: 20.0 <= o <= 30.0, "%"),
    Claim("04", "paper-tables", "AlexNet P+Q+H, calculated from the per-layer table",
          lambda r: r["alexnet"]["total"]["ratio_pqh"], PAPER_TABLES["alexnet"].reported["ratio_pqh"],
          "AlexNet, ImageNet", f"{_DC}, Tables 1 and 4", "within 10 % of the paper's ratio", _within(0.1), "×"),
    Claim("04", "paper-tables", "VGG-16 P+Q+H, calculated from the per-layer table",
          lambda r: r["vgg16"]["total"]["ratio_pqh"], PAPER_TABLES["vgg16"].reported["ratio_pqh"],
          "VGG-16, ImageNet", f"{_DC}, Tables 1 and 5", "within 10 % of the paper's ratio", _within(0.1), "×"),
    # --- quantization, ternary, low rank, Winograd (chapters 5-8)
    Claim("05", "quantization", "LeNet-5, 8-bit weights and activations: accuracy change", _bits_change,
          0.0, "AlexNet weights only, 8-bit conv / 5-bit fc: top-1 error 42.78 → 42.78 %", f"{_DC}, Table 6",
          f"drop of at most {_DROP} points", _no_worse_than(_DROP), "pts"),
    Claim("05", "quantization", "integer-only inference equals fake quantization",
          lambda r: float(r["lenet5"]["int_matches_fake_quant"]), 1.0, "a property, not a paper figure", "—",
          "logits identical (1 = yes)", _equal),
    Claim("06", "ternary", "LeNet-5 TTQ: accuracy change", _acc_change("lenet5", "fp_acc", "ttq_acc"),
          0.3, "AlexNet, ImageNet: top-1 error 42.8 → 42.5 %", "Zhu, Han, Mao & Dally, TTQ, ICLR 2017",
          "drop of at most 1 point (two fewer bits than Deep Compression's narrowest layers)", _no_worse_than(1.0),
          "pts"),
    Claim("06", "ternary", "LeNet-5 TTQ: smaller than fp32", lambda r: r["lenet5"]["size_ratio"],
          16.0, "AlexNet: 'about 16× smaller'", "Zhu, Han, Mao & Dally, TTQ, ICLR 2017",
          "within 10 % of the paper's ratio", _within(0.1), "×"),
    Claim("07", "lowrank", "LeNet-5 conv layers decomposed: MAC speedup",
          lambda r: r["conv"]["uniform"]["speedup"], 4.0, "VGG-16, ImageNet: 4× faster",
          "Zhang et al., TPAMI 2016", "at least 90 % of the paper's speedup", _at_least(0.9), "×"),
    Claim("07", "lowrank", "LeNet-5 conv layers decomposed: accuracy change",
          lambda r: round(r["conv"]["uniform"]["acc_lowrank"] - r["conv"]["acc_dense"], 2),
          -0.3, "VGG-16: +0.3 % top-5 error", "Zhang et al., TPAMI 2016", f"drop of at most {_DROP} points",
          _no_worse_than(_DROP), "pts"),
    Claim("08", "winograd", "F(2×2,3×3) multiply reduction", lambda r: r["F(2x2,3x3)"]["reduction"],
          2.25, "16 multiplies instead of 36", "Lavin & Gray, CVPR 2016", "equal", _equal, "×"),
    Claim("08", "winograd", "F(4×4,3×3) multiply reduction", lambda r: r["F(4x4,3x3)"]["reduction"],
          4.0, "36 multiplies instead of 144", "Lavin & Gray, CVPR 2016", "equal", _equal, "×"),
    # --- inference hardware (chapters 9, 10)
    Claim("09", "roofline", "TPU: memory-bound apps of the six",
          lambda r: float(sum(a["bound"]["TPU"] == "memory" for a in r["apps"].values())),
          4.0, "MLPs and LSTMs memory-bound, CNNs compute-bound", _TPU, "equal", _equal),
    Claim("10", "eie", "EIE vs CPU, dense (geometric mean of 9 layers)",
          lambda r: r["geomean_speedup"]["cpu_dense"], 189.0, "the paper's measured EIE", _EIE,
          "within 20 % of the paper's speedup", _within(0.2), "×"),
    Claim("10", "eie", "EIE vs GPU, dense (geometric mean of 9 layers)",
          lambda r: r["geomean_speedup"]["gpu_dense"], 13.0, "the paper's measured EIE", _EIE,
          "within 20 % of the paper's speedup", _within(0.2), "×"),
    Claim("10", "eie", "EIE: time lost to load imbalance (mean of 9 layers)",
          lambda r: round(100 * (sum(1 / v["load_balance"] for v in r["layers"].values()) / len(r["layers"]) - 1), 1),
          10.0, "actual time about 10 % above workload ÷ peak", "Han et al., EIE, ISCA 2016",
          "within 5 points", lambda o, p, r: abs(o - p) <= 5.0, "%"),
    # --- training (chapters 11-13)
    Claim("11", "parallel", "DDP 2 × batch B vs 1 × batch 2B: max weight difference",
          lambda r: r["ddp_max_abs_diff"], None, "a property of data parallelism, not a paper figure", "—",
          "at most 1e-5 (float32 summation order, not a different update)", lambda o, p, r: o <= 1e-5,
          noise_bound=1e-6),
    Claim("11", "parallel", "synchronous parameter server equals all-reduce",
          lambda r: float(r["ps_sync_matches_allreduce"]), 1.0, "a property, not a paper figure", "—",
          "equal (1 = yes)", _equal),
    Claim("12", "mixed-precision", "fp16 gradients that underflow, with loss scaling",
          lambda r: round(100 * r["grad_underflow_fp16_scaled"], 3), None,
          "the method is the paper's; the criterion is ours", _MP,
          "below 1 % (loss scaling's purpose: almost no gradient lost)",
          lambda o, p, r: o < 1.0, "%"),
    Claim("12", "mixed-precision", "fp16 + fp32 master weights: accuracy change vs fp32",
          lambda r: round(r["acc_fp16_master_fp32"] - r["acc_fp32"], 2), -0.25,
          "ResNet-50, ImageNet: top-1 73.85 → 73.6 %", _GTC,
          "drop of at most 0.3 points (the ResNet-50 drop, rounded up)", _no_worse_than(0.3), "pts"),
    Claim("13", "distillation", "3 % of the data: soft-target minus hard-target student",
          lambda r: round(r["student_soft_acc"] - r["student_hard_acc"], 2), 12.5,
          "speech: 44.5 % (hard) → 57.0 % (soft)", _KD, "soft beats hard (difference > 0)",
          lambda o, p, r: o > 0, "pts"),
    Claim("13", "dsd", "DSD minus dense baseline, same epochs (mean over seeds)",
          lambda r: round(r["dsd"]["mean"] - r["baseline"]["mean"], 2), 1.1,
          "GoogLeNet: error 31.1 → 30.0 % (VGG-16 +4.3, ResNet-50 +0.8)", _DSD,
          "better by more than the larger of the two seeds' standard deviations", _dsd_beats_spread, "pts"),
    # --- designing efficient models (chapter 17)
    Claim("17", "efficient-blocks", "SqueezeNet vs AlexNet: fewer parameters (counted from the specs)",
          lambda r: r["squeezenet_param_reduction"], 50.0, "SqueezeNet 1.0 vs AlexNet, ImageNet",
          "Iandola et al., SqueezeNet, 2016, abstract", "within 5 % of the paper's ratio", _within(0.05), "×"),
    Claim("17", "efficient-blocks", "MobileNet's 13 separable layers vs standard 3×3 convs: fewer MACs",
          lambda r: r["mobilenet_body_mac_reduction"], None,
          "'between 8 to 9 times less computation' (3×3 depthwise-separable vs standard convs)",
          "Howard et al., MobileNets, 2017, §3.1", "between 8 and 9 times", lambda o, p, r: 8.0 <= o <= 9.0, "×"),
    Claim("17", "efficient-blocks", "our MNIST separable net vs standard net: accuracy change",
          lambda r: round(r["depthwise_separable"]["acc"] - r["standard"]["acc"], 2), None,
          "the book's criterion, not a paper figure: MNIST nets of one skeleton, 7× fewer MACs", "—",
          "drop of at most 1 point (about 2 binomial standard errors at 97 % on 1,000 test images)",
          _no_worse_than(1.0), "pts"),
    Claim("17", "efficient-blocks", "our MNIST fire net vs standard net: accuracy change",
          lambda r: round(r["fire"]["acc"] - r["standard"]["acc"], 2), None,
          "the book's criterion, not a paper figure ('AlexNet-level accuracy' is SqueezeNet's)", "—",
          "drop of at most 1 point (about 2 binomial standard errors at 97 % on 1,000 test images)",
          _no_worse_than(1.0), "pts"),
    Claim("17", "nas", "evolution minus random search: best validation accuracy, same evaluations (3 seeds)",
          lambda r: round(r["evolution"]["best_acc"] - r["random"]["best_acc"], 2), None,
          "a property, not a paper figure: regularized evolution finds better networks than random search at the "
          "same number of evaluations (shown on CIFAR-10 and ImageNet, not as one number for this setting)",
          "Real et al., Regularized Evolution, AAAI 2019", "evolution ahead on average (difference > 0)",
          lambda o, p, r: o > 0, "pts"),
    Claim("17", "nas", "latency lookup table: error on held-out networks (MAPE)",
          lambda r: r["predictor_mape"], None,
          "the book's criterion, not a paper figure: per-block table summed plus a fitted constant, this CPU",
          "—", "at most 10 %", lambda o, p, r: o <= 10.0, "%"),
    Claim("17", "nas", "sub-networks cut from the supernet vs trained alone: largest accuracy gap (3 nets)",
          lambda r: round(max(abs(t["test_acc_supernet"] - t["test_acc_alone"]) for t in r["targets"].values()), 2),
          None,
          "the book's criterion, not a paper figure: Once-for-All's sub-networks match networks trained alone on "
          "ImageNet after a long progressive-shrinking schedule; ours trains as many epochs as one network alone, "
          "four sub-networks per step (sandwich rule)",
          "Cai et al., Once-for-All, ICLR 2020", "within 1 point", lambda o, p, r: o <= 1.0, "pts"),
    # --- quantizing a language model (chapter 19); perplexity per byte on the test split, groups of 32 columns
    Claim("19", "llm-quant", "GPTQ vs round-to-nearest, 3-bit weights: perplexity saved",
          lambda r: round(r["rtn"]["w3_g32"] - r["gptq"]["w3_g32"], 4), None,
          "a property, not one figure: at 3 and 4 bits GPTQ stays far closer to the fp16 perplexity of OPT and "
          "BLOOM models than round-to-nearest; ours uses groups of 32 (128 does not divide our width of 160)",
          "Frantar et al., GPTQ, ICLR 2023", "GPTQ below RTN (difference > 0)", lambda o, p, r: o > 0, "ppl"),
    Claim("19", "llm-quant", "AWQ vs round-to-nearest, 3-bit weights: perplexity saved",
          lambda r: round(r["rtn"]["w3_g32"] - r["awq"]["w3_g32"], 4), None,
          "a property, not one figure: activation-aware channel scaling lowers the perplexity of low-bit "
          "weight-only quantization against round-to-nearest on Llama and OPT models",
          "Lin et al., AWQ, MLSys 2024", "AWQ below RTN (difference > 0)", lambda o, p, r: o > 0, "ppl"),
    Claim("19", "llm-quant", "SmoothQuant vs naive W8A8 (static per-tensor int8 activations): perplexity saved",
          lambda r: round(r["w8a8"]["naive"] - r["w8a8"]["smoothquant"], 4), None,
          "a property, not one figure: migrating activation outliers into the weights keeps W8A8 near fp16 on "
          "large models where naive W8A8 collapses; our 1.3 M-parameter model has mild outliers",
          "Xiao et al., SmoothQuant, ICML 2023", "SmoothQuant no worse than naive (difference ≥ 0)",
          lambda o, p, r: o >= 0, "ppl"),
    # --- pruning a language model (chapter 20); perplexity per byte on the test split, pruned per output row
    Claim("20", "llm-sparsity", "Wanda vs magnitude, 50 % unstructured: perplexity saved",
          lambda r: round(r["magnitude"]["50%"] - r["wanda"]["50%"], 4), None,
          "a property, not one figure: on LLaMA and LLaMA-2 models at 50 % sparsity, weights × input norms "
          "prune far better than weight magnitudes alone; ours is a 1.3 M-parameter model",
          "Sun et al., Wanda, ICLR 2024", "Wanda no worse than magnitude (difference ≥ 0)",
          lambda o, p, r: o >= 0, "ppl"),
    Claim("20", "llm-sparsity", "SparseGPT vs magnitude, 50 % unstructured: perplexity saved",
          lambda r: round(r["magnitude"]["50%"] - r["sparsegpt"]["50%"], 4), None,
          "a property, not one figure: one-shot pruning with OBS reconstruction keeps OPT and BLOOM models "
          "near their dense perplexity at 50 % where magnitude pruning collapses",
          "Frantar & Alistarh, SparseGPT, ICML 2023", "SparseGPT no worse than magnitude (difference ≥ 0)",
          lambda o, p, r: o >= 0, "ppl"),
    Claim("20", "llm-sparsity", "SparseGPT vs magnitude, 2:4: perplexity saved",
          lambda r: round(r["magnitude"]["2:4"] - r["sparsegpt"]["2:4"], 4), None,
          "a property, not one figure: the same comparison under the 2:4 pattern of sparse tensor cores",
          "Frantar & Alistarh, SparseGPT, ICML 2023", "SparseGPT no worse than magnitude (difference ≥ 0)",
          lambda o, p, r: o >= 0, "ppl"),
    # --- decoding faster (chapter 21); greedy, batch 1, one thread; speed-up and acceptance from the record
    Claim("21", "llm-decode", "KV cache: bytes per token measured on the cache tensors vs the formula",
          lambda r: float(r["kv_bytes_per_token"] == r["kv_bytes_formula"]), 1.0,
          "the book's criterion: 2 · n_layer · n_kv_head · head_dim · bytes per value (a key and a value per "
          "layer and KV head), chapter 18's formula", "—", "equal (1 = yes)", _equal),
    Claim("21", "llm-decode", "speculative decoding, greedy: output identical to the target model's",
          lambda r: float(r["spec"]["greedy_identical"]), 1.0,
          "outputs distributed exactly as the target's (greedy: the same tokens)",
          "Leviathan et al., Speculative Decoding, ICML 2023", "identical on the test prompts (1 = yes)", _equal),
    Claim("21", "llm-decode", "speculative decoding (distilled draft, best n_draft) vs the target alone: "
          "wall-clock speed-up on this CPU", lambda r: r["spec"]["speedup"], None,
          "2×–3× on T5-XXL (accelerator) against the standard implementation, identical outputs; ours: a "
          "10× smaller draft whose Python-bound passes cost a large fraction of the target's on one CPU thread",
          "Leviathan et al., Speculative Decoding, ICML 2023, abstract", "faster (speed-up > 1)",
          lambda o, p, r: o > 1, "×"),
    Claim("21", "llm-decode", "distilled minus plain draft: acceptance per position (T = 1, test windows)",
          lambda r: round(r["spec"]["acceptance_per_position"]["distilled"]["sampled"]
                          - r["spec"]["acceptance_per_position"]["plain"]["sampled"], 4), None,
          "a property, not one figure: a draft distilled on the target's outputs is accepted more often "
          "(10–45 % faster speculative decoding than with the undistilled draft)",
          "Zhou et al., DistillSpec, ICLR 2024, abstract", "distilled accepted more (difference > 0)",
          lambda o, p, r: o > 0, ""),
)


@validate_params(names=ListOf(Options(lambda: reproduce.EXPERIMENTS), optional=True), log=V.Callable(optional=True))
def run_all(names: list[str] | None = None, *, log: Callable[[str], None] | None = print) -> dict[str, dict]:
    """Run the reproduce experiments ``names`` (default: every registered one) in this process.

    ``log`` receives one line per experiment, ``"NAME took 1.2 s"``; pass ``None`` to stay quiet.

    Taught in chapter 15, "Wrap-up: what reproduced".
    """

    if names is None:
        names = list(reproduce.EXPERIMENTS)
    results = {}
    for name in names:
        start = time.perf_counter()
        results[name] = reproduce.run(name)
        if log is not None:
            log(f"{name} took {time.perf_counter() - start:.1f} s")
    return results


@validate_params(results=Instance(dict, "a dict of experiment name → result"),
                 experiments=ListOf(Instance(str, "an experiment name"), optional=True))
def results_table(results: dict[str, dict], *, experiments: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per claim of ``experiments`` (default: all claims), our number next to the paper's.

    ``results`` maps experiment name → its JSON (as :func:`run_all` returns).
    Each row: chapter, experiment, what, ours, paper, unit, paper_note,
    source, criterion, verdict (``"reproduced"`` / ``"not reproduced"``),
    noise_bound, and rerun_matches: for an experiment whose numbers come from
    a training record, whether its live re-run matched the record within the
    stated tolerance (:func:`effdl.precompute.rerun_check`); None otherwise.

    Taught in chapter 15, "Wrap-up: what reproduced".
    """
    claims = [c for c in CLAIMS if experiments is None or c.experiment in experiments]
    missing = sorted({c.experiment for c in claims} - set(results))
    if missing:
        raise ValueError(f"results_table: results must hold every experiment of the claims; got none for {missing!r}.")
    rows = []
    for c in claims:
        try:
            ours = c.ours(results[c.experiment])
        except (KeyError, IndexError, TypeError) as err:
            raise ValueError(f"results[{c.experiment!r}] must hold what {c.what!r} reads (the experiment's JSON, "
                             f"as effdl reproduce prints it); got a result without {err}.") from None
        if isinstance(ours, float) and not math.isfinite(ours):
            raise ValueError(f"results[{c.experiment!r}] gives a non-finite value for {c.what!r}; got {ours!r}.")
        holds = c.holds(ours, c.paper, results[c.experiment])
        rows.append({"chapter": c.chapter, "experiment": c.experiment, "what": c.what, "ours": ours,
                     "paper": c.paper, "unit": c.unit, "paper_note": c.paper_note, "source": c.source,
                     "criterion": c.criterion, "verdict": REPRODUCED if holds else NOT_REPRODUCED,
                     "noise_bound": c.noise_bound,
                     # None: nothing trained, nothing to re-run; else whether the live re-run matched the record
                     "rerun_matches": results[c.experiment].get("matches_record")})
    return rows


def _number(value: float, unit: str, noise_bound: float | None = None) -> str:
    if noise_bound is not None and abs(value) < noise_bound:
        return f"< {noise_bound:g}{unit}"      # rounding noise: its digits depend on the CPU's kernels
    if unit == "pts":
        return f"{value:+g} pts"
    return f"{value:.1e}" if 0 < abs(value) < 1e-3 else f"{value:g}{unit}"


def _rerun_text(matches: bool | None) -> str:
    return "–" if matches is None else "matches the record" if matches else "DIFFERS from the record"


@validate_params(rows=ListOf(Instance(dict, "a results_table row"), nonempty=False))
def display_rows(rows: list[dict]) -> list[dict]:
    """``rows`` with text columns for the book's table: ``ours_text``, ``paper_text`` and ``rerun_text``.

    Yes/no claims read "yes"/"no"; accuracy changes carry their sign; rounding
    noise reads "< bound"; the paper's number (bold) comes before what it was
    measured on and its source; ``rerun_text`` says whether the live re-run of
    a trained result matched its record ("–" when nothing was trained).

    >>> r = {"ours": 12.5, "paper": 12.0, "unit": "×", "criterion": "at least 90 %",
    ...      "paper_note": "LeNet-5, MNIST", "source": "Han et al., NIPS 2015"}
    >>> row = display_rows([r])[0]
    >>> row["ours_text"], row["paper_text"], row["rerun_text"]
    ('12.5×', '**12×**: LeNet-5, MNIST (Han et al., NIPS 2015)', '–')

    Taught in chapter 15, "Wrap-up: what reproduced".
    """
    out = []
    for r in rows:
        yes_no = r["criterion"].endswith("(1 = yes)")
        ours = ("yes" if r["ours"] == 1 else "no") if yes_no else _number(r["ours"], r["unit"], r.get("noise_bound"))
        paper = r["paper_note"] if r["source"] == "—" else f"{r['paper_note']} ({r['source']})"
        if r["paper"] is not None and not yes_no:
            paper = f"**{_number(r['paper'], r['unit'])}**: {paper}"
        out.append(dict(r, ours_text=ours, paper_text=paper, rerun_text=_rerun_text(r.get("rerun_matches"))))
    return out


@validate_params(rows=ListOf(Instance(dict, "a results_table row"), nonempty=False))
def verdict_counts(rows: list[dict]) -> dict[str, int]:
    """How many rows reproduced and how many did not.

    Taught in chapter 15, "Wrap-up: what reproduced".
    """
    return {v: sum(r["verdict"] == v for r in rows) for v in (REPRODUCED, NOT_REPRODUCED)}
