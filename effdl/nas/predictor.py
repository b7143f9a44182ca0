"""A latency predictor: a lookup table of measured blocks, summed, plus one fitted constant.

Taught in chapter 17. As in ProxylessNAS (Cai, Zhu & Han, ICLR 2019) and
Once-for-All, the latency of a candidate is predicted without running it:
every block configuration the space can produce — (stage, first block or not,
kernel, expansion) at each input resolution — is timed once on this CPU
(batch 1, one thread, the fastest of many runs), and a network's prediction is
the sum of its blocks' entries, the stem's and the head's, plus a constant
fitted on a few networks timed end to end (what the sum misses: the calls
between blocks, the pooling). Its error is the mean absolute percentage error
(:func:`mape`) on other networks, timed end to end.

>>> lut = {"stem-r16": 0.1, "head-r16": 0.2, "s1-first-k3-e2-r16": 0.3, "s2-first-k3-e2-r16": 0.3,
...        "s3-first-k3-e2-r16": 0.3}
>>> from effdl.nas.space import smallest
>>> round(LatencyPredictor(lut, 0.05).predict(smallest()), 3)
1.25
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from effdl.nas.space import (ARCH, EXPANSIONS, KERNELS, N_STAGES, RESOLUTIONS, STEM_WIDTH, STRIDES, WIDTHS, Arch,
                             largest, stage_shapes)
from effdl.nas.supernet import InvertedResidual, _head, _stem, build_subnet
from effdl.train import threads
from effdl.validation import Bool, Instance, Interval, ListOf, Options, PositiveInt, check_fields, validate_params

_ARCHS = ListOf(ARCH)
_MS = ListOf(Interval(float, 0, None, closed="neither"))


@validate_params(stage=Interval(int, 1, N_STAGES), first=Bool(),
                 kernel=Interval(int, 1, None), expansion=Interval(int, 1, None), resolution=Interval(int, 1, None))
def block_key(stage: int, first: bool, kernel: int, expansion: int, resolution: int) -> str:
    """The lookup table's key of a block: ``"s2-first-k5-e3-r24"`` (stage counted from 1).

    Behind chapter 17, "Designing efficient models".
    """
    return f"s{stage}-{'first' if first else 'rest'}-k{kernel}-e{expansion}-r{resolution}"


@validate_params(arch=ARCH)
def arch_keys(arch: Arch) -> list[str]:
    """The lookup table's keys whose entries add up to ``arch``'s prediction: stem, blocks, head.

    Behind chapter 17, "Designing efficient models".
    """
    r = arch.resolution
    return ([f"stem-r{r}"] + [block_key(s + 1, i == 0, k, e, r) for s, i, k, e in arch.blocks()]
            + [f"head-r{r}"])


def _entries() -> dict[str, tuple[nn.Module, tuple[int, ...]]]:
    """Every lookup-table entry: a fresh module and its input shape (batch 1)."""
    out = {}
    for r in RESOLUTIONS:
        out[f"stem-r{r}"] = (_stem(), (1, 1, r, r))
        probe = largest()
        shapes = stage_shapes(type(probe)(r, probe.depths, probe.kernels, probe.expansions))
        for s in range(N_STAGES):
            for first in (True, False):
                idx = 3 * s + (0 if first else 1)          # the largest arch has 3 blocks a stage
                c_in, c_out, stride, size = shapes[idx]
                for k in KERNELS:
                    for e in EXPANSIONS:
                        # sizes after a block do not depend on k (padding k // 2), so one probe serves every k
                        out[block_key(s + 1, first, k, e, r)] = (InvertedResidual(c_in, c_out, k, e, stride),
                                                                 (1, c_in, size, size))
        last = shapes[-1]
        size = (last[3] + 2 - 3) // last[2] + 1 if last[2] > 1 else last[3]
        out[f"head-r{r}"] = (_head(), (1, WIDTHS[-1], size, size))
    return out


STATISTICS = ("min", "median")


@validate_params(modules=Instance(dict, "a dict of name → (module, input shape)"), repeats=PositiveInt(),
                 warmup=Interval(int, 0, None), statistic=Options(STATISTICS))
@torch.inference_mode()
def time_modules(modules: dict, *, repeats: int = 30, warmup: int = 3, statistic: str = "min") -> dict[str, float]:
    """Wall-clock milliseconds of each module on one input of its shape, batch 1, one thread.

    The modules take turns, round after round (``repeats`` rounds), so that
    every one of them sees the same share of a busy machine; each module's
    fastest round (``statistic="min"``) or its median over the rounds is
    returned. On a machine shared with other work the median of a network
    that runs for milliseconds includes the times the operating system gave
    its core to someone else, while a block of a tenth of that rarely is
    interrupted: the table's sum then misses the interruptions. The fastest
    round of each is the time it takes when it has the core to itself, the
    same quantity for a block and for a network.

    Behind chapter 17, "Designing efficient models".
    """
    inputs = {name: torch.zeros(shape) for name, (_, shape) in modules.items()}
    times = {name: [] for name in modules}
    with threads(1):
        for name, (module, _) in modules.items():
            module.eval()
            for _ in range(warmup):
                module(inputs[name])
        for _ in range(repeats):
            for name, (module, _) in modules.items():
                t0 = time.perf_counter()
                module(inputs[name])
                times[name].append(time.perf_counter() - t0)
    pick = min if statistic == "min" else statistics.median
    return {name: 1e3 * pick(ts) for name, ts in times.items()}


@validate_params(repeats=PositiveInt(), archs=ListOf(ARCH, optional=True), seed=Interval(int, 0, None),
                 statistic=Options(STATISTICS))
def measure_lut(*, repeats: int = 30, archs=None, seed: int = 0, statistic: str = "min") -> dict:
    """Time every lookup-table entry and, in the same rounds, every network of ``archs`` end to end.

    Returns ``{"lut": {key: ms}, "end_to_end": {arch key: ms}}``, each the
    ``statistic`` of the rounds (:func:`time_modules`); the networks get fresh
    weights (seeded; latency does not depend on them) and images already at
    their resolution.

    Behind chapter 17, "Designing efficient models".
    """
    modules = _entries()
    nets = {a.key(): (build_subnet(a, seed=seed), (1, 1, a.resolution, a.resolution)) for a in (archs or [])}
    times = time_modules({**modules, **{"net:" + k: v for k, v in nets.items()}}, repeats=repeats,
                         statistic=statistic)
    return {"lut": {k: times[k] for k in modules}, "end_to_end": {k: times["net:" + k] for k in nets}}


@dataclass(frozen=True)
class LatencyPredictor:
    """``predict(arch) = Σ lut[key] over arch_keys(arch) + constant_ms`` (milliseconds).

    Taught in chapter 17, "Designing efficient models".
    """

    lut: dict
    constant_ms: float = 0.0

    def __post_init__(self):
        check_fields(self, lut=Instance(dict, "a dict of key → milliseconds"),
                     constant_ms=Interval(float, None, None))

    def lut_sum(self, arch: Arch) -> float:
        keys = arch_keys(ARCH.check("arch", arch))
        missing = [k for k in keys if k not in self.lut]
        if missing:
            raise ValueError(f"LatencyPredictor: lut must have an entry for every block of arch; missing {missing}.")
        return float(sum(self.lut[k] for k in keys))

    def predict(self, arch: Arch) -> float:
        return self.lut_sum(arch) + self.constant_ms


@validate_params(lut=Instance(dict, "a dict of key → milliseconds"), archs=_ARCHS, measured_ms=_MS)
def fit_predictor(lut: dict, archs: list[Arch], measured_ms: list[float]) -> LatencyPredictor:
    """The predictor whose constant is the least-squares fit of ``measured − Σ lut`` (their mean).

    Behind chapter 17, "Designing efficient models".
    """
    if len(archs) != len(measured_ms):
        raise ValueError(f"fit_predictor: measured_ms must have one time per arch ({len(archs)}); "
                         f"got {len(measured_ms)}.")
    bare = LatencyPredictor(lut, 0.0)
    residual = [m - bare.lut_sum(a) for a, m in zip(archs, measured_ms)]
    return LatencyPredictor(lut, float(np.mean(residual)))


@validate_params(predicted=_MS, measured=_MS)
def mape(predicted: list[float], measured: list[float]) -> float:
    """Mean absolute percentage error, 100 · mean(|predicted − measured| / measured), in percent.

    >>> mape([1.1, 1.8], [1.0, 2.0])
    10.0

    Taught in chapter 17, "Designing efficient models".
    """
    if len(predicted) != len(measured):
        raise ValueError(f"mape: measured must have as many values as predicted ({len(predicted)}); "
                         f"got {len(measured)}.")
    p, m = np.asarray(predicted), np.asarray(measured)
    return round(float(100 * np.mean(np.abs(p - m) / m)), 10)


__all__ = ["STATISTICS", "block_key", "arch_keys", "time_modules", "measure_lut", "LatencyPredictor", "fit_predictor",
           "mape"]
