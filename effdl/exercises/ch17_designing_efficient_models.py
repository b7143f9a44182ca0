"""Chapter 17, Designing efficient models: the checks of its graded exercises.

In ``chapters/17_designing_efficient_models.ipynb``:

- ``check_separable_cost`` tests the reader's ``my_separable_cost``;
- ``check_depthwise_intensity`` tests the reader's ``my_depthwise_intensity``;
- ``check_pareto_front`` tests the reader's ``my_pareto_front``.
"""
from __future__ import annotations

import numbers

import numpy as np

from ._common import fail
from ..architectures import Conv2d, count_macs, depthwise_separable, layer_table
from ..hardware.roofline import conv_work
from ..nas.search import pareto_front
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_separable_cost(fn, seed: int = 0) -> str:
    """Chapter 17: ``fn(in_ch, out_ch, kernel, size, stride) -> (weights, macs)`` of a depthwise-separable
    conv (k×k depthwise, padding k // 2, then 1×1 pointwise; no biases) on a ``size × size`` input.

    Taught in chapter 17, "Designing efficient models".
    """
    rng = np.random.default_rng(seed)
    cases = [(int(rng.integers(2, 65)), int(rng.integers(2, 129)), int(rng.choice([1, 3, 5, 7])),
              int(rng.integers(3, 40)), int(rng.choice([1, 2]))) for _ in range(12)]
    cases.append((32, 64, 3, 15, 2))        # an odd size with stride 2: the output is 8×8, not 7×7
    for in_ch, out_ch, k, size, stride in cases:
        spec = depthwise_separable(in_ch, out_ch, k, stride)
        # conv weights only (the spec's batch norms are left out of the exercise)
        want = (sum(r.weights for r in layer_table(spec, (in_ch, size, size))), count_macs(spec, (in_ch, size, size)))
        got = fn(in_ch, out_ch, k, size, stride)
        if not (isinstance(got, tuple) and len(got) == 2
                and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in got)):
            fail("return a tuple of two integers, (weights, macs).")
        if got[0] != want[0]:
            fail(f"weights differ for in_ch={in_ch}, out_ch={out_ch}, kernel={k}: the depthwise conv has one "
                 "k×k filter per input channel, the pointwise conv one 1×1×in_ch filter per output channel.")
        if got[1] != want[1]:
            fail(f"MACs differ for in_ch={in_ch}, out_ch={out_ch}, kernel={k}, size={size}, stride={stride}: "
                 "each weight is used once per output pixel, and the output is ⌊(size + 2·(k // 2) − k) / stride⌋"
                 " + 1 pixels on a side.")
    standard = count_macs(Conv2d(32, 64, 3, padding=1, bias=False), (32, 14, 14))
    ratio = fn(32, 64, 3, 14, 1)[1] / standard
    return f"separable cost: correct (32 → 64 channels, 3×3, 14×14: {ratio:.3f} of a standard conv = 1/64 + 1/9)"


@validate_params(fn=Callable(), seed=Seed())
def check_depthwise_intensity(fn, seed: int = 0) -> str:
    """Chapter 17: ``fn(channels, size, kernel) -> float``, the arithmetic intensity (FLOP per byte, 2 FLOP per
    MAC, fp32) of a k×k depthwise conv, stride 1, padding k // 2, on one ``channels × size × size`` map,
    when its weights, input and output each cross the memory bus once.

    Taught in chapter 17, "Designing efficient models".
    """
    rng = np.random.default_rng(seed)
    for _ in range(12):
        c, size, k = int(rng.integers(1, 513)), int(rng.integers(3, 113)), int(rng.choice([3, 5, 7]))
        want = conv_work(c, c, k, size, padding=k // 2, groups=c, n_bits_weight=32,
                         n_bits_act=32).intensity("dram")
        got = fn(c, size, k)
        if isinstance(got, bool) or not isinstance(got, numbers.Real):
            fail("return one number, FLOP per byte.")
        if not np.isclose(float(got), want, rtol=1e-9):
            ratio = float(got) / want
            hint = (" (off by 2: count a MAC as 2 FLOP)" if np.isclose(ratio, 0.5) or np.isclose(ratio, 2) else
                    " (off by 4: fp32 takes 4 bytes)" if np.isclose(ratio, 0.25) or np.isclose(ratio, 4) else "")
            fail(f"intensity differs for channels={c}, size={size}, kernel={k}{hint}: FLOP = 2·k²·C·H·W; bytes = "
                 "4·(weights k²·C + input C·H·W + output C·H·W).")
    return f"depthwise intensity: correct ({fn(256, 14, 3):.2f} FLOP/byte for 256 channels on 14×14, 3×3)"


@validate_params(fn=Callable(), seed=Seed())
def check_pareto_front(fn, seed: int = 0) -> str:
    """Chapter 17: ``fn(costs, accs) -> indices`` of the points no other point beats (a cost at most as
    high and an accuracy at least as high, one of the two strictly); no two points are equal.

    Taught in chapter 17, "Designing efficient models".
    """
    rng = np.random.default_rng(seed)
    cases = [([1.0], [90.0]), ([2.0, 1.0], [95.0, 95.0]), ([1.0, 1.0], [90.0, 92.0])]
    for _ in range(15):
        n = int(rng.integers(2, 41))
        pts = sorted({(round(float(c), 1), round(2 * float(a)) / 2)       # rounded: ties in cost or accuracy
                      for c, a in zip(rng.uniform(0.5, 5, n), rng.uniform(85, 99, n))})
        order = rng.permutation(len(pts))
        cases.append(([pts[i][0] for i in order], [pts[i][1] for i in order]))
    for costs, accs in cases:
        got = fn(list(costs), list(accs))
        try:
            got = [int(i) for i in got]
        except (TypeError, ValueError):
            fail("return a list of indices (integers) into costs and accs.")
        want = set(pareto_front(costs, accs))
        extra, missing = sorted(set(got) - want), sorted(want - set(got))
        if extra:
            i = extra[0]
            j = next(j for j in range(len(costs)) if costs[j] <= costs[i] and accs[j] >= accs[i] and j != i)
            fail(f"point {i} (cost {costs[i]}, accuracy {accs[i]}) is beaten by point {j} (cost {costs[j]}, "
                 f"accuracy {accs[j]}): it is not on the front.")
        if missing:
            i = missing[0]
            fail(f"point {i} (cost {costs[i]}, accuracy {accs[i]}) is beaten by no other point: it belongs "
                 "on the front.")
        if len(got) != len(set(got)):
            fail("list each index once.")
    return "Pareto front: correct (every point kept is beaten by none, every point left out by one)"
