"""Checks for the chapters' exercises.

Each ``check_*`` takes the reader's function, calls it on fresh random
inputs and tests *properties* the right answer must have (exact counts,
invariances, agreement with ``effdl`` on inputs the reader never saw). A
failed property raises ``AssertionError`` with a hint, never the answer;
success returns a short confirmation string. Every check takes ``seed=``:
the chapters' hidden tests (nbgrader's ``### BEGIN HIDDEN TESTS``) call it
again with a seed the reader never saw. ``effdl.assign`` explains the format.
"""
from __future__ import annotations

import torch

from . import pruning


def _fail(message: str):
    raise AssertionError(message)


def check_magnitude_mask(fn, seed: int = 2024) -> str:
    """Chapter 2: ``fn(weight, sparsity) -> bool mask`` pruning the smallest magnitudes."""
    gen = torch.Generator().manual_seed(seed)
    for shape, sparsity in [((40, 30), 0.5), ((7,), 0.3), ((20, 5, 3, 3), 0.92), ((50,), 0.0), ((50,), 1.0)]:
        w = torch.randn(shape, generator=gen)
        mask = fn(w.clone(), sparsity)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != w.shape:
            _fail(f"return a bool tensor of the weight's shape {tuple(w.shape)} (True = kept).")
        n_pruned = int((~mask).sum())
        if n_pruned != round(sparsity * w.numel()):
            _fail(f"with sparsity={sparsity} and {w.numel()} weights, prune exactly "
                  f"round(sparsity · numel) of them; you pruned {n_pruned}.")
        if mask.any() and (~mask).any() and w[mask].abs().min() < w[~mask].abs().max():
            _fail("a kept weight is smaller in magnitude than a pruned one: rank by |w|, not w.")
        again = fn(w * mask, sparsity)
        if not torch.equal(again, mask):
            _fail("pruning an already pruned tensor to the same sparsity must give the same mask.")
    ties = torch.tensor([0.5, -0.5, 0.5, 0.5, 0.1, -0.5])
    if int((~fn(ties, 0.5)).sum()) != 3:
        _fail("with ties at the threshold the count must still be exact.")
    model = torch.nn.Linear(30, 10)
    masks = {"weight": fn(model.weight.detach().clone(), 0.7)}
    pruning.apply_masks(model, masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(2):
        loss = model(torch.randn(8, 30, generator=gen)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if torch.any(model.weight[~masks["weight"]] != 0):
        _fail("pruned weights must stay zero through training (apply the mask with effdl.pruning.apply_masks).")
    return "magnitude mask: all checks passed"


def check_threshold_mask(fn, seed: int = 7) -> str:
    """Chapter 2: ``fn(weight, quality) -> bool mask`` keeping |w| > quality × std(w)."""
    gen = torch.Generator().manual_seed(seed)
    for quality in (0.25, 0.7, 1.5):
        w = torch.randn(3000, generator=gen) * 0.05
        mask = fn(w.clone(), quality)
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != w.shape:
            _fail("return a bool tensor of the weight's shape (True = kept).")
        if not torch.equal(fn(w * 10, quality), mask):
            _fail("the rule is relative to the layer's spread: scaling every weight by 10 must not change the mask.")
        if not torch.equal(mask, pruning.threshold_mask(w, quality)):
            _fail(f"for quality={quality} your mask differs from the rule on fresh random weights: "
                  "compare |w| with quality times the standard deviation of the layer's weights.")
    if fn(w, 0.5).sum() < fn(w, 1.0).sum():
        _fail("a larger quality parameter must prune more, not less.")
    return "threshold mask: all checks passed"


def check_centroid_gradient(fn, seed: int = 33) -> str:
    """Chapter 3: ``fn(grad, index, n_clusters) -> (n_clusters,)`` gradients summed per cluster."""
    import numpy as np

    from . import sharing

    rng = np.random.default_rng(seed)
    for shape, k in [((4, 4), 4), ((30, 20), 16), ((500,), 3)]:
        grad = rng.normal(size=shape)
        index = rng.integers(0, k, size=shape)
        out = np.asarray(fn(grad, index, k), dtype=float)
        if out.shape != (k,):
            _fail(f"return one value per cluster: shape ({k},); got {out.shape}.")
        if not np.isclose(out.sum(), grad.sum()):
            _fail("every weight's gradient belongs to exactly one cluster: the sums must add up to the total.")
        if not np.allclose(out, sharing.centroid_gradient(grad, index, k)):
            _fail("on fresh random inputs your sums differ from effdl.sharing: group by index, then add.")
    empty = np.asarray(fn(np.ones(3), np.array([0, 0, 2]), 4), dtype=float)
    if empty.shape != (4,) or empty[1] != 0 or empty[3] != 0:
        _fail("a cluster with no weights must get a zero gradient (and still appear in the output).")
    return "centroid gradient: all checks passed"


# ---------------------------------------------------------------- chapter 0: counting and energy
def check_conv_counts(fn, seed: int = 0) -> str:
    """Chapter 0: ``fn(in_ch, out_ch, kernel, out_h, out_w) -> (params, macs)`` of a stride-1
    ``kernel × kernel`` convolution with a bias, producing an ``out_h × out_w`` output per channel."""
    import numpy as np

    from . import architectures as arch

    rng = np.random.default_rng(seed)
    cases = [(1, 6, 5, 28, 28), (3, 96, 11, 55, 55), (1, 1, 1, 1, 1)]
    cases += [tuple(int(v) for v in (rng.integers(1, 65), rng.integers(1, 129), rng.choice([1, 3, 5, 7]),
                                     rng.integers(1, 60), rng.integers(1, 60))) for _ in range(25)]
    for c, k, r, h, w in cases:
        layer = arch.Conv2d(c, k, r)
        want_params = arch.count_params(layer)                       # torch.nn.Conv2d agrees (tests)
        want_macs = arch.count_macs(layer, (c, h + r - 1, w + r - 1))
        got = fn(c, k, r, h, w)
        if not isinstance(got, tuple) or len(got) != 2:
            _fail("return a tuple (params, macs).")
        params, macs = (int(v) for v in got)
        what = f"a {r}×{r} conv from {c} to {k} channels with a {h}×{w} output"
        if params != want_params:
            if params == want_params - k:
                _fail(f"{what}: each output channel also has one bias.")
            _fail(f"{what}: you count {params:,} parameters, which differs from torch.nn.Conv2d's: one "
                  "in_ch × kernel × kernel filter per output channel, plus the biases.")
        if macs != want_macs:
            if macs == 2 * want_macs:
                _fail(f"{what}: a multiply-accumulate counts once, not as two operations.")
            if macs == want_macs + k * h * w:
                _fail(f"{what}: adding the bias is not a multiply-accumulate; count the products only.")
            _fail(f"{what}: you count {macs:,} MACs. Every output value (out_ch × out_h × out_w of them) "
                  "takes one MAC per filter weight.")
    return "conv counts: all checks passed"


def check_energy_per_image(fn, seed: int = 0) -> str:
    """Chapter 0: ``fn(macs, weights, batch_size, weight_memory) -> µJ per image``: fp32 MACs
    plus 32-bit weight reads from ``"dram"`` or ``"sram"``, each weight read once per batch."""
    import numpy as np

    from .hardware import energy

    rng = np.random.default_rng(seed)
    cases = [(724e6, 61e6, 1, "dram"), (266_200, 266_610, 1, "sram")]
    cases += [(float(rng.integers(1, 10 ** 10)), float(rng.integers(1, 10 ** 8)), int(rng.integers(1, 513)),
               str(rng.choice(["dram", "sram"]))) for _ in range(30)]
    for macs, weights, b, memory in cases:
        got = float(fn(macs, weights, b, memory))
        want = energy.inference_energy(macs, weights / b, weight_memory=memory)["total_uj"]
        if np.isclose(got, want, rtol=1e-9):
            continue
        one = energy.inference_energy(macs, weights, weight_memory=memory)
        if np.isclose(got, want * 1e6, rtol=1e-9):
            _fail("the table is in picojoules; return microjoules (1 µJ = 10⁶ pJ).")
        if b > 1 and np.isclose(got, one["total_uj"], rtol=1e-9):
            _fail(f"with batch_size={b}, one fetch of each weight serves {b} images: divide the weight "
                  "reads (not the MACs) by the batch.")
        if np.isclose(got, want - one["compute_uj"], rtol=1e-9):
            _fail("add the arithmetic: every MAC costs one fp32 multiply and one fp32 add.")
        _fail(f"{macs:,.0f} MACs, {weights:,.0f} weights in {memory}, batch {b}: your energy differs from "
              "energy.inference_energy: (mult + add) per MAC, plus one 32-bit read per weight and batch.")
    return "energy per image: all checks passed"


# ---------------------------------------------------------------- chapter 1: number formats
def check_decode_float(fn, seed: int = 0) -> str:
    """Chapter 1: ``fn(bits, exponent_bits, mantissa_bits) -> float``, the value of an IEEE-style
    bit string (sign, biased exponent, mantissa; subnormals, ±0, ±inf and NaN included)."""
    import math

    import numpy as np

    from . import numerics

    rng = np.random.default_rng(seed)

    def reference(bits, e, m):
        if (e, m) == (5, 10):
            return float(np.array([int(bits, 2)], dtype=np.uint16).view(np.float16)[0])
        if (e, m) == (8, 23):
            return float(np.array([int(bits, 2)], dtype=np.uint32).view(np.float32)[0])
        return numerics.decode_bits(bits, numerics.FloatFormat("f", e, m))

    special = ["0" * 16, "1" + "0" * 15, "0" + "11111" + "0" * 10, "1" + "11111" + "0" * 10,
               "0" + "11111" + "0" * 9 + "1", "0" + "00000" + "0" * 9 + "1", "0" + "00000" + "1" * 10,
               "0" + "00001" + "0" * 10, "0" + "11110" + "1" * 10, "0" + "10101" + "1001000000"]
    cases = [(b, 5, 10) for b in special]
    cases += [(format(int(v), "016b"), 5, 10) for v in rng.integers(0, 2 ** 16, size=40)]
    cases += [(format(int(v), "032b"), 8, 23) for v in rng.integers(0, 2 ** 32, size=20)]
    for _ in range(40):
        e, m = int(rng.integers(2, 9)), int(rng.integers(1, 11))
        cases.append((format(int(rng.integers(0, 2 ** (1 + e + m))), f"0{1 + e + m}b"), e, m))
    for bits, e, m in cases:
        want, got = reference(bits, e, m), float(fn(bits, e, m))
        if math.isnan(want) and math.isnan(got):
            continue
        if got == want and math.copysign(1, got) == math.copysign(1, want):
            continue
        field = int(bits[1:1 + e], 2)
        where = f"{bits[0]} {bits[1:1 + e]} {bits[1 + e:]} (exponent {e} bits, mantissa {m} bits)"
        if field == 2 ** e - 1:
            _fail(f"{where}: an all-ones exponent field means ±inf (mantissa 0) or NaN (otherwise).")
        if field == 0:
            _fail(f"{where}: an all-zero exponent field is a subnormal (or zero): no implicit leading 1, "
                  f"and the exponent is that of the smallest normal, 1 − bias.")
        if got == -want:
            _fail(f"{where}: the first bit is the sign; 1 means negative.")
        _fail(f"{where}: you decode {got!r}. A normal number is (−1)^s · 1.M · 2^(E − bias), "
              f"bias = 2^(e−1) − 1.")
    return "float decoding: all checks passed"


def check_round_fixed(fn, seed: int = 0) -> str:
    """Chapter 1: ``fn(x, int_bits, frac_bits) -> array``: ``x`` rounded to signed fixed point
    Q``int_bits``.``frac_bits``, to the nearest step (ties to even), saturating at the range's ends."""
    import numpy as np

    from . import numerics

    rng = np.random.default_rng(seed)
    for m, n in [(0, 7), (3, 4), (7, 0), (2, 10), (0, 1)] + [(int(rng.integers(0, 8)), int(rng.integers(1, 12)))
                                                            for _ in range(10)]:
        fmt = numerics.FixedPointFormat(m, n)
        step = 2.0 ** -n
        x = rng.uniform(fmt.min * 1.5 - 1, fmt.max * 1.5 + 1, size=500)
        ties = (np.arange(-8, 8) + 0.5) * step                        # exactly half-way between two steps
        x = np.concatenate([x, ties[(ties > fmt.min) & (ties < fmt.max)], [fmt.min, fmt.max, 0.0]])
        got = np.asarray(fn(x.copy(), m, n), dtype=float)
        if got.shape != x.shape:
            _fail(f"return an array of x's shape {x.shape}.")
        want = numerics.round_to_format(x, fmt)
        if np.array_equal(got, want):
            continue
        bad = np.flatnonzero(got != want)[0]
        v = x[bad]
        where = f"Q{m}.{n}, x = {float(v)!r}: you return {float(got[bad])!r}"
        if v > fmt.max or v < fmt.min:
            _fail(f"{where}; a value beyond the range saturates to the nearest end, "
                  f"−2^{m} or 2^{m} − 2^−{n}.")
        if np.isclose(abs(v / step) % 1, 0.5):
            _fail(f"{where}; a value exactly half-way between two steps rounds to the even one.")
        if abs(got[bad] - v) > step / 2:
            _fail(f"{where}, more than half a step (2^−{n} / 2) away: round to the nearest multiple of 2^−{n}.")
        _fail(f"{where}: every result must be a multiple of 2^−{n} within the range.")
    return "fixed-point rounding: all checks passed"


# ---------------------------------------------------------------- chapter 3: weight sharing
def check_nearest_centroid(fn, seed: int = 0) -> str:
    """Chapter 3: ``fn(weight, codebook) -> index`` of the nearest centroid for every weight
    (``codebook`` ascending; a weight half-way between two centroids goes to the lower one)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for shape, k in [((4, 4), 4), ((30, 20), 16), ((500,), 3), ((6, 5, 3, 3), 32), ((7,), 1)]:
        codebook = np.sort(rng.normal(size=k))
        weight = rng.normal(size=shape) * 1.3
        if k > 1:                                                         # exact half-way ties
            mids = (codebook[:-1] + codebook[1:]) / 2
            flat = weight.reshape(-1)
            flat[:min(flat.size, mids.size)] = mids[:flat.size]
        got = np.asarray(fn(weight.copy(), codebook.copy()))
        if got.shape != weight.shape or not np.issubdtype(got.dtype, np.integer):
            _fail(f"return an integer array of the weight's shape {shape}.")
        if got.min() < 0 or got.max() >= k:
            _fail(f"indexes must lie in 0 … {k - 1} for a codebook of {k} centroids.")
        dist = np.abs(weight[..., None] - codebook)                      # (..., k)
        chosen = np.take_along_axis(dist, got[..., None], axis=-1)[..., 0]
        if np.any(chosen > dist.min(axis=-1)):
            _fail("a weight is assigned to a centroid that is not its nearest: compare |w − c| over the codebook.")
        if not np.array_equal(got, dist.argmin(axis=-1)):
            _fail("a weight exactly half-way between two centroids must go to the lower one (the first index).")
        if not np.array_equal(np.asarray(fn(weight * 4.0, codebook * 4.0)), got):
            _fail("scaling weights and codebook together must not change the assignment.")
    return "nearest centroid: all checks passed"


# ---------------------------------------------------------------- chapter 7: low rank
def check_truncated_svd(fn, seed: int = 7) -> str:
    """Chapter 7: ``fn(weight, rank) -> (first, second)`` of shapes (rank, in) and (out, rank)
    whose product ``second @ first`` is the best rank-``rank`` approximation of ``weight``."""
    from . import lowrank

    gen = torch.Generator().manual_seed(seed)
    for in_f, out_f, rank in [(40, 30, 5), (64, 100, 17), (10, 10, 10), (25, 8, 1)]:
        layer = torch.nn.Linear(in_f, out_f)
        with torch.no_grad():
            layer.weight.copy_(torch.randn(out_f, in_f, generator=gen))
        w = layer.weight.detach().clone()
        got = fn(w.clone(), rank)
        if not isinstance(got, tuple) or len(got) != 2:
            _fail("return two factors (first, second).")
        a, b = (torch.as_tensor(t, dtype=torch.float64) for t in got)
        if a.shape != (rank, in_f) or b.shape != (out_f, rank):
            _fail(f"for a ({out_f}, {in_f}) weight at rank {rank} the shapes are (rank, in) = ({rank}, {in_f}) "
                  f"and (out, rank) = ({out_f}, {rank}); got {tuple(a.shape)} and {tuple(b.shape)}.")
        s = torch.linalg.svdvals(w.double())
        best = float(s[rank:].pow(2).sum().sqrt())                      # Eckart–Young
        err = float(torch.linalg.matrix_norm(w.double() - b @ a))
        if err > best * (1 + 1e-4) + 1e-4:
            _fail(f"rank {rank}: ‖W − second·first‖ is {err:.4f}, but the best rank-{rank} error is the "
                  "root of the sum of the squared discarded singular values: keep the largest ones.")
        x = torch.randn(8, in_f, generator=gen)
        with torch.no_grad():
            ref = lowrank.factorize_linear(layer, rank)(x).double()
        if not torch.allclose(x.double() @ a.T @ b.T + layer.bias.double(), ref, atol=1e-4):
            _fail("as two layers (x → first → second, plus the bias) your factors differ from "
                  "lowrank.factorize_linear on fresh inputs.")
    return "truncated SVD: all checks passed"


def check_tt_params(fn, seed: int = 0) -> str:
    """Chapter 7: ``fn(in_factors, out_factors, ranks) -> int``, the entries of a tensor train's
    cores; ``ranks`` is the full tuple ``(1, r_1, …, r_{d−1}, 1)``."""
    import numpy as np

    from . import lowrank

    rng = np.random.default_rng(seed)
    cases = [((4, 7, 7, 4), (3, 5, 5, 4), (1, 8, 8, 8, 1)), ((784,), (300,), (1, 1))]
    for _ in range(30):
        d = int(rng.integers(1, 6))
        ins = tuple(int(v) for v in rng.integers(2, 9, size=d))
        outs = tuple(int(v) for v in rng.integers(2, 9, size=d))
        inner = lowrank.tt_max_ranks(ins, outs)[1:-1]
        ranks = (1, *(int(rng.integers(1, r + 1)) for r in inner), 1)
        cases.append((ins, outs, ranks))
    for ins, outs, ranks in cases:
        got = fn(ins, outs, ranks)
        want = lowrank.tt_params(ins, outs, list(ranks))
        if got != want:
            if len(ins) == 1:
                _fail(f"one core (d = 1) is the dense matrix: {ins[0]} × {outs[0]} entries; got {got}.")
            _fail(f"in {ins}, out {outs}, ranks {ranks}: you count {got}. Core k has shape "
                  "(r_{k−1}, n_k, m_k, r_k); add up the entries of every core.")
    return "TT parameters: all checks passed"


# ---------------------------------------------------------------- chapter 8: Winograd
class _Counted:
    """A number that counts the multiplications of two non-constant operands it takes part in."""

    __slots__ = ("value", "counter")

    def __init__(self, value, counter):
        self.value, self.counter = float(value), counter

    @staticmethod
    def _unwrap(other):
        return other.value if isinstance(other, _Counted) else other

    def _new(self, value):
        return _Counted(value, self.counter)

    def __add__(self, other):
        return self._new(self.value + self._unwrap(other))

    __radd__ = __add__

    def __sub__(self, other):
        return self._new(self.value - self._unwrap(other))

    def __rsub__(self, other):
        return self._new(self._unwrap(other) - self.value)

    def __neg__(self):
        return self._new(-self.value)

    def __pos__(self):
        return self

    def conjugate(self):                      # NumPy's object-dtype dot products ask for it
        return self

    def __mul__(self, other):
        if isinstance(other, _Counted):
            self.counter[0] += 1
        return self._new(self.value * self._unwrap(other))

    __rmul__ = __mul__

    def __truediv__(self, other):
        if isinstance(other, _Counted):
            self.counter[0] += 1
        return self._new(self.value / self._unwrap(other))

    def __rtruediv__(self, other):
        self.counter[0] += 1
        return self._new(self._unwrap(other) / self.value)


def _count_mults(fn, *arrays):
    """Call ``fn`` on object arrays of counted numbers; return (result as float array, multiplications)."""
    import numpy as np

    counter = [0]
    wrapped = []
    for a in arrays:
        w = np.empty(a.shape, dtype=object)
        for i, v in np.ndenumerate(a):
            w[i] = _Counted(v, counter)
        wrapped.append(w)
    try:
        out = fn(*wrapped)
    except (TypeError, ValueError) as err:
        _fail("the check counts your multiplications by passing NumPy arrays of dtype=object; your function "
              f"failed on them ({type(err).__name__}: {err}). Use +, −, * and / on the array elements or "
              "NumPy products (@, *, np.pad), keep the input's dtype for new arrays, and avoid float().")
    values = np.vectorize(lambda v: v.value if isinstance(v, _Counted) else float(v), otypes=[float])
    return values(np.asarray(out, dtype=object)), counter[0]


def check_winograd_f23(fn, seed: int = 0) -> str:
    """Chapter 8: ``fn(d, g) -> y``: the two outputs of a 3-tap correlation of the 4-vector ``d``
    with ``g`` (``np.correlate(d, g, "valid")``) computed with Winograd's 4 multiplications."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for _ in range(20):
        d, g = rng.normal(size=4), rng.normal(size=3)
        y = np.asarray(fn(d.copy(), g.copy()), dtype=float)
        if y.shape != (2,):
            _fail("return the two outputs, shape (2,).")
        if not np.allclose(y, np.correlate(d, g, "valid")):
            _fail("your outputs differ from np.correlate(d, g, 'valid'): y[i] = d[i]·g[0] + d[i+1]·g[1] + d[i+2]·g[2].")
    y, n_mults = _count_mults(fn, d, g)
    if not np.allclose(y, np.correlate(d, g, "valid")):
        _fail("on arrays of dtype=object your outputs differ from np.correlate(d, g, 'valid').")
    if n_mults > 4:
        _fail(f"correct, but with {n_mults} multiplications of data by filter values; F(2, 3) needs only 4 "
              "(multiplications by constants such as ½ do not count).")
    return f"F(2, 3): correct with {n_mults} multiplications"


def check_winograd_conv(fn, seed: int = 0) -> str:
    """Chapter 8: ``fn(x, g) -> y``, the valid 3×3 correlation of one channel ``x`` (H, W) with ``g``,
    shape (H − 2, W − 2), computed tile by tile with F(2×2, 3×3) (edge tiles padded)."""
    import numpy as np
    from scipy.signal import correlate2d

    rng = np.random.default_rng(seed)
    sizes = [(4, 4), (3, 3), (5, 7), (10, 10), (9, 4)] + [tuple(int(v) for v in rng.integers(3, 17, size=2))
                                                           for _ in range(6)]
    for h, w in sizes:
        x, g = rng.normal(size=(h, w)), rng.normal(size=(3, 3))
        y = np.asarray(fn(x.copy(), g.copy()), dtype=float)
        if y.shape != (h - 2, w - 2):
            _fail(f"a {h}×{w} input gives a ({h - 2}, {w - 2}) valid output; got {y.shape}. "
                  "Crop the padded edge tiles.")
        if not np.allclose(y, correlate2d(x, g, "valid"), atol=1e-9):
            _fail(f"for a {h}×{w} input your output differs from the direct correlation: each 2×2 output tile "
                  "reads the 4×4 input tile starting at its top-left corner; pad the input with zeros so the "
                  "last tiles are whole.")
    for h, w in [(6, 6), (7, 5)]:
        x, g = rng.normal(size=(h, w)), rng.normal(size=(3, 3))
        y, n_mults = _count_mults(fn, x, g)
        if not np.allclose(y, correlate2d(x, g, "valid"), atol=1e-9):
            _fail("on arrays of dtype=object your output differs from the direct correlation.")
        tiles = -(-(h - 2) // 2) * -(-(w - 2) // 2)
        if n_mults > 16 * tiles:
            _fail(f"a {h}×{w} input has {tiles} output tiles, at most 16 multiplications each with Winograd; you "
                  f"use {n_mults}. Transform the filter once (G g Gᵀ) and each input tile (Bᵀ d B), then "
                  "multiply element-wise.")
    return "Winograd F(2×2, 3×3) convolution: all checks passed"


def check_twn_quantizer(fn, seed: int = 606) -> str:
    """Chapter 6: ``fn(weight) -> tensor``, TWN's ternary weights (Δ = 0.7 · E|w|, one scale α)."""
    from . import ternary

    gen = torch.Generator().manual_seed(seed)
    for shape in [(50, 40), (20, 1, 5, 5), (9,)]:
        w = 0.1 * torch.randn(shape, generator=gen)
        before = w.clone()
        q = fn(w)
        if not torch.equal(w, before):
            _fail("do not change the weight tensor in place: return a new tensor.")
        if not isinstance(q, torch.Tensor) or q.shape != w.shape:
            _fail(f"return a tensor of the weight's shape {tuple(w.shape)}.")
        values = torch.unique(q)
        if len(values) > 3 or not torch.allclose(values.abs().max() * torch.sign(q), q):
            _fail("a ternary tensor takes at most three values, −α, 0 and +α, with one α for the layer.")
        delta = 0.7 * w.abs().mean()
        if not torch.equal(q == 0, w.abs() <= delta):
            _fail("the zeros must be exactly the weights with |w| ≤ Δ = 0.7 · mean |w| of the layer.")
        if not torch.equal(torch.sign(q[q != 0]), torch.sign(w[q != 0])):
            _fail("a weight kept non-zero keeps its sign.")
        alpha = float(values.abs().max())
        codes = torch.sign(q)
        err = lambda a: float(((w - a * codes) ** 2).sum())  # noqa: E731
        if err(alpha) > min(err(alpha * 0.98), err(alpha * 1.02)):
            _fail("α is not the best scale for your codes: the least-squares α is the mean of the kept |w|.")
        if not torch.allclose(fn(3 * w), 3 * q, rtol=1e-5, atol=1e-7):
            _fail("scaling the weights by 3 must scale the ternary weights by 3 (Δ and α are relative).")
        if not torch.allclose(q, ternary.twn_weights(w), rtol=1e-5, atol=1e-7):
            _fail("on fresh random weights your result differs from effdl.ternary.twn_weights.")
    return "TWN quantizer: all checks passed"


def check_ttq_gradients(fn, seed: int = 707) -> str:
    """Chapter 6: ``fn(latent, grad, wp, wn, t) -> (grad_latent, grad_wp, grad_wn)``, TTQ's gradient rules."""
    from . import ternary

    gen = torch.Generator().manual_seed(seed)
    for shape, t in [((30, 20), 0.05), ((8, 4, 3, 3), 0.05), ((200,), 0.3)]:
        latent = torch.randn(shape, generator=gen)
        grad = torch.randn(shape, generator=gen)
        wp, wn = 0.5 + torch.rand((), generator=gen).item(), 0.5 + torch.rand((), generator=gen).item()
        out = fn(latent.clone(), grad.clone(), wp, wn, t)
        if not isinstance(out, tuple) or len(out) != 3:
            _fail("return three things: the latent weights' gradient, ∂L/∂Wp and ∂L/∂Wn.")
        g_latent, g_wp, g_wn = torch.as_tensor(out[0], dtype=torch.float32), float(out[1]), float(out[2])
        if g_latent.shape != latent.shape:
            _fail(f"the latent gradient has the weight's shape {tuple(latent.shape)}.")
        delta = t * latent.abs().max()
        zero = latent.abs() <= delta
        if not torch.allclose(g_latent[zero], grad[zero]):
            _fail("where the ternary weight is 0 (|w̃| ≤ Δ) the gradient passes unchanged (factor 1).")
        # autograd through the ternary weights gives the scales' gradients: compare on this loss
        wp_t, wn_t = torch.tensor(wp, requires_grad=True), torch.tensor(wn, requires_grad=True)
        (grad * ternary.ttq_weights(latent, wp_t, wn_t, t)).sum().backward()
        if abs(g_wp - wp_t.grad.item()) > 1e-3 * (1 + abs(wp_t.grad.item())):
            _fail("∂L/∂Wp: add up ∂L/∂w_t over the weights above +Δ.")
        if abs(g_wn - wn_t.grad.item()) > 1e-3 * (1 + abs(wn_t.grad.item())):
            if abs(g_wn + wn_t.grad.item()) <= 1e-3 * (1 + abs(wn_t.grad.item())):
                _fail("∂L/∂Wn has the wrong sign: those weights equal −Wn, so the chain rule brings a minus.")
            _fail("∂L/∂Wn: add up ∂L/∂w_t over the weights below −Δ (mind the sign).")
        reference = ternary.ttq_gradients(latent, grad, wp, wn, t)[0]
        if not torch.allclose(g_latent, reference, rtol=1e-5, atol=1e-6):
            _fail("the latent gradient is scaled: Wp · g above +Δ, 1 · g in between, Wn · g below −Δ.")
    return "TTQ gradients: all checks passed"


def check_huffman_code(fn, seed: int = 404) -> str:
    """Chapter 4: ``fn(counts: dict symbol -> count) -> dict symbol -> '0'/'1' string``, an optimal prefix code."""
    import numpy as np

    from . import coding

    rng = np.random.default_rng(seed)
    cases = [{0: 5, 1: 2, 2: 1, 3: 1}, {7: 1, 9: 1}]
    cases += [{int(s): int(c) for s, c in enumerate(rng.integers(1, 1000, size=n))} for n in (3, 16, 40)]
    cases.append({int(s): int(c) for s, c in enumerate(rng.geometric(0.3, size=32))})
    for counts in cases:
        code = fn(dict(counts))
        if not isinstance(code, dict) or set(code) != set(counts):
            _fail("return a dict with one codeword per symbol of counts.")
        words = sorted(code.values())
        if any(not w or set(w) - {"0", "1"} for w in words):
            _fail("codewords are non-empty strings of '0' and '1'.")
        if any(b.startswith(a) for a, b in zip(words, words[1:])):
            _fail("one codeword is a prefix of another: the decoder could not tell where a symbol ends.")
        ours = coding.mean_code_length(counts, coding.huffman_code(counts))
        theirs = coding.mean_code_length(counts, code)
        if theirs > ours + 1e-9:
            _fail(f"the code is decodable but not optimal: {theirs:.4f} bits per symbol on average where "
                  f"{ours:.4f} is possible. Merge the two least frequent nodes, repeatedly.")
        symbols = rng.choice(list(counts), size=200)
        data, n_bits = coding.huffman_encode(symbols, code)
        if n_bits != sum(len(code[int(s)]) for s in symbols):
            _fail("encoding must spend exactly len(codeword) bits per symbol.")
        if not np.array_equal(coding.huffman_decode(data, n_bits, code, len(symbols)), symbols):
            _fail("a message encoded with your code does not decode back to itself.")
    return "Huffman code: prefix-free and optimal on every case"


def check_relative_index(fn, seed: int = 505) -> str:
    """Chapter 4: ``fn(weight_1d, index_bits) -> (gaps, values)`` with filler zeros, as Deep Compression."""
    import numpy as np

    from . import coding

    rng = np.random.default_rng(seed)
    for n, density, bits in [(16, 0.3, 3), (200, 0.05, 3), (500, 0.02, 4), (64, 1.0, 2), (40, 0.0, 3), (300, 0.1, 1)]:
        w = np.where(rng.random(n) < density, rng.normal(size=n), 0.0)
        gaps, values = (np.asarray(a) for a in fn(w.copy(), bits))
        if gaps.shape != values.shape or gaps.ndim != 1:
            _fail("return two 1-D arrays of the same length: the gap before each stored entry, and its value.")
        if gaps.size and (gaps.min() < 0 or gaps.max() >= 2 ** bits):
            _fail(f"with index_bits={bits} a gap must fit in 0 … {2 ** bits - 1}; "
                  f"got gaps from {gaps.min()} to {gaps.max()}. Insert a filler zero when a gap is too long.")
        if not np.array_equal(coding.relative_index_decode(gaps, values, n), w):
            _fail("decoding your (gaps, values) does not give the weights back: entry k sits at "
                  "previous position + gap + 1 (the first counts from -1).")
        ref, _, _ = coding.relative_index_encode(w, bits)
        if gaps.size > ref.size:
            _fail(f"you store {gaps.size} entries where {ref.size} suffice: add a filler only when the "
                  "gap does not fit, and each filler should skip as far as the width allows.")
    return "relative index: round trip exact and no entry wasted on every case"


def check_fc_intensity(fn, seed: int = 909) -> str:
    """Chapter 9: ``fn(n_in, n_out, batch_size, weight_bits) -> ops per weight byte`` of an FC layer
    (a multiply-add counts as 2 operations; weights fetched once per batch)."""
    import numpy as np

    from .hardware import roofline

    rng = np.random.default_rng(seed)
    for _ in range(20):
        n_in, n_out = (int(v) for v in rng.integers(1, 5000, size=2))
        b, bits = int(rng.integers(1, 600)), int(rng.choice([4, 8, 16, 32]))
        got = float(fn(n_in, n_out, b, bits))
        want = roofline.fc_work(n_in, n_out, b, weight_bits=bits).intensity("weight")
        if np.isclose(got, want):
            continue
        if np.isclose(got, want / 2):
            _fail("off by a factor of 2: count a multiply-add as two operations, like the TPU's 92 TOPS.")
        if np.isclose(got, want * bits / 8) or np.isclose(got, want * 8 / bits):
            _fail("a weight of `weight_bits` bits takes weight_bits / 8 bytes: divide by bytes, not bits or 1.")
        if not np.isclose(got, want):
            _fail(f"for n_in={n_in}, n_out={n_out}, batch {b}, {bits}-bit weights your intensity differs "
                  "from effdl.hardware.roofline.fc_work: count the operations of the whole batch, "
                  "divide by the bytes of the weights.")
    if not np.isclose(fn(100, 100, 8, 8), fn(3000, 10, 8, 8)):
        _fail("the intensity of an FC layer does not depend on its shape, only on batch and precision.")
    return "FC intensity: all checks passed"


def check_fold_cycles(fn, seed: int = 990) -> str:
    """Chapter 9: ``fn(rows, cols, m, k, n) -> cycles`` of an (M×K)@(K×N) GEMM on a double-buffered
    weight-stationary array with unlimited weight bandwidth (effdl.hardware.systolic's model)."""
    import numpy as np

    from .hardware import systolic

    rng = np.random.default_rng(seed)
    cases = [(4, 4, 5, 4, 4), (4, 4, 5, 6, 4), (2, 3, 1, 7, 8), (256, 256, 200, 9216, 4096)]
    cases += [tuple(int(v) for v in rng.integers(1, 300, size=5)) for _ in range(30)]
    for rows, cols, m, k, n in cases:
        cfg = systolic.SystolicConfig(rows, cols)
        want = systolic.estimate(cfg, m, k, n)
        got = int(fn(rows, cols, m, k, n))
        if got == want.cycles:
            continue
        folds = want.n_folds
        if got == want.cycles - want.load_cycles:
            _fail("the first tile's weights must be loaded before anything flows: add its load "
                  f"(min(K, rows) = {want.load_cycles} cycles); later loads hide behind computation.")
        if got == want.cycles + sum(f.k1 - f.k0 for f in want.folds[1:]):
            _fail("with double buffering only the first load is exposed: the next tile loads while this one computes.")
        _fail(f"for a {rows}×{cols} array and M={m}, K={k}, N={n} ({folds} folds) the model counts "
              f"{want.cycles} cycles, you {got}: per fold M + (rows − 1) + (columns used − 1), "
              "N-tiles of `cols` columns times K-tiles of `rows` rows.")
    return "fold cycles: all checks passed"


# ---------------------------------------------------------------- chapter 5: quantization
def check_fixed_point_frac_bits(fn, seed: int = 55) -> str:
    """Chapter 5: ``fn(x, n_bits) -> int``, the radix point of a signed ``n_bits`` word for tensor ``x``.

    The answer is the largest number of fraction bits whose format still
    covers ``[min(x), max(x)]`` (it may be negative, or exceed the word).
    """
    from . import quantization as Q

    gen = torch.Generator().manual_seed(seed)
    for n_bits, spread in [(8, 1.0), (4, 0.05), (16, 300.0), (2, 0.7), (6, 1e4), (12, 1e-4)]:
        x = (torch.randn(500, generator=gen, dtype=torch.float64) + 0.3) * spread
        f = fn(x.clone(), n_bits)
        if isinstance(f, bool) or not isinstance(f, int):
            _fail(f"return the number of fraction bits as a Python int; got {f!r}.")
        qmin, qmax = -2 ** (n_bits - 1), 2 ** (n_bits - 1) - 1
        step = 2.0 ** -f
        if not (qmin * step <= float(x.min()) and float(x.max()) <= qmax * step):
            _fail(f"{n_bits} bits with {f} fraction bits represent [{qmin * step:g}, {qmax * step:g}], which "
                  f"does not cover the data's range [{float(x.min()):g}, {float(x.max()):g}].")
        finer = step / 2
        if qmin * finer <= float(x.min()) and float(x.max()) <= qmax * finer:
            _fail(f"{f + 1} fraction bits would still cover the data ({n_bits} bits): choose the finest "
                  "radix point that fits.")
        if fn(2 * x, n_bits) != f - 1:
            _fail("doubling every value must move the radix point one bit to the right (one fraction bit less).")
        if f != Q.choose_fixed_point(x, n_bits, signed=True).frac_bits:
            _fail("on fresh random data your radix point differs from effdl.quantization.choose_fixed_point.")
    return "radix point: all checks passed"


def check_fake_quantize_ste(fn, seed: int = 5) -> str:
    """Chapter 5: ``fn(x, scale, zero_point, qmin, qmax)`` fake quantization with a straight-through gradient.

    Forward: ``(clamp(round(x / scale) + zero_point, qmin, qmax) − zero_point) · scale``.
    Backward: 1 for values inside the representable range, 0 for values that saturate.
    """
    from . import quantization as Q

    gen = torch.Generator().manual_seed(seed)
    for scale, zero_point, n_bits, signed in [(0.25, 0, 4, True), (0.1, 3, 4, False), (0.02, 128, 8, False),
                                              (1.0, 0, 2, True)]:
        qmin, qmax = Q.qrange(n_bits, signed)
        lo, hi = (qmin - zero_point) * scale, (qmax - zero_point) * scale
        x = ((torch.rand(3000, generator=gen) * 1.6 - 0.3) * (hi - lo) + lo).requires_grad_()   # 30 % beyond each end
        y = fn(x, scale, zero_point, qmin, qmax)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            _fail("return a tensor of x's shape.")
        want = Q.fake_quantize(x.detach(), scale, zero_point, n_bits, signed=signed)
        off = (y.detach() - want).abs() > 1e-6 * max(1.0, abs(hi))
        if int(off.sum()) > 3 or bool(((y.detach() - want).abs() > 1.001 * scale).any()):
            _fail("the forward values differ from quantize-then-dequantize: round x / scale, add the zero point, "
                  "clamp to [qmin, qmax], subtract the zero point and multiply by the scale.")
        if not y.requires_grad:
            _fail("the output carries no gradient: torch.round's gradient is zero almost everywhere, so route the "
                  "gradient around the rounding (the straight-through estimator).")
        y.backward(torch.ones_like(y))
        g, xd = x.grad, x.detach()
        inside = (xd > lo + scale / 2) & (xd < hi - scale / 2)
        outside = (xd < lo - scale / 2) | (xd > hi + scale / 2)
        if g is None or not torch.all(g[inside] == 1):
            _fail("inside the representable range the gradient must pass straight through (equal to 1).")
        if not torch.all(g[outside] == 0):
            _fail("values beyond the range saturate: their gradient must be 0, as for a clamp.")
        if not torch.all((g == 0) | (g == 1)):
            _fail("the straight-through gradient is 0 or 1 everywhere.")
    return "fake quantization with STE: all checks passed"


def check_rounding_shift(fn, seed: int = 31) -> str:
    """Chapter 5: ``fn(v, shift)``: ``round(v / 2**shift)``, ties to even, with integer operations only."""
    gen = torch.Generator().manual_seed(seed)
    for shift in (1, 3, 8, 20):
        v = torch.randint(-2 ** 40, 2 ** 40, (5000,), generator=gen)
        ties = torch.arange(-6, 7) * 2 ** (shift - 1)                 # exact halves (and integers)
        v = torch.cat([v, ties, ties + 1, ties - 1])
        out = fn(v.clone(), shift)
        if not isinstance(out, torch.Tensor) or out.dtype != torch.int64 or out.shape != v.shape:
            _fail("return an int64 tensor of v's shape.")
        want = torch.round(v.double() / 2 ** shift).long()               # exact here: |v| < 2^53
        if not torch.equal(out, want):
            bad = int((out != want).nonzero()[0])
            _fail(f"round({int(v[bad])} / 2^{shift}) should be {int(want[bad])}; you return {int(out[bad])}. "
                  "Remember: halves go to the even neighbour, and >> rounds towards −∞.")
    big = torch.tensor([2 ** 55 + 3, -(2 ** 55) - 3, 2 ** 61 + 2 ** 20 + 2 ** 19])
    want = torch.tensor([2 ** 54 + 2, -(2 ** 54) - 2, 2 ** 60 + 2 ** 19 + 2 ** 18])
    if not torch.equal(fn(big.clone(), 1), want):
        _fail("on integers beyond 2^53 the answer is off: float64 cannot hold them exactly, so stay in integers "
              "(shifts, masks, additions).")
    return "rounding right shift: all checks passed"


def check_eie_storage(fn, seed: int = 10) -> str:
    """Chapter 10: ``fn(weight, n_pes, pe, index_bits) -> (values, relative_index, column_pointer)``,
    PE ``pe``'s interleaved CSC arrays, each stored weight's value in ``values`` (0.0 for a filler)."""
    import numpy as np

    from .hardware import eie

    rng = np.random.default_rng(seed)
    w, _ = eie.dataflow_example()
    cases = [(w, 4, pe, 4) for pe in range(4)]
    for n_pes, index_bits, rows, cols, density in [(1, 4, 40, 3, 0.15), (3, 2, 30, 5, 0.2), (2, 1, 12, 6, 0.3),
                                                   (5, 3, 60, 4, 0.1), (8, 2, 5, 3, 0.5)]:
        levels = np.arange(1, 16) * 0.25 - 2.0                         # ≤ 15 distinct values: stored exactly
        m = rng.choice(levels, size=(rows, cols)) * (rng.random((rows, cols)) < density)
        m[rng.integers(0, rows), :] = 0.0
        cases += [(m, n_pes, pe, index_bits) for pe in range(n_pes)]
    for weight, n_pes, pe, index_bits in cases:
        layer = eie.encode(weight, eie.EIEConfig(n_pes=n_pes, index_bits=index_bits))
        want = (layer.codebook[layer.virtual_weight[pe]], layer.relative_index[pe], layer.column_pointer[pe])
        got = fn(weight.copy(), n_pes, pe, index_bits)
        if not isinstance(got, tuple) or len(got) != 3:
            _fail("return a tuple (values, relative_index, column_pointer).")
        values, rel, ptr = (np.asarray(g) for g in got)
        if ptr.shape != (weight.shape[1] + 1,):
            _fail(f"column_pointer has one entry per column plus one: {weight.shape[1] + 1} for "
                  f"{weight.shape[1]} columns; you return {ptr.size}.")
        if not np.array_equal(ptr, want[2]):
            _fail(f"column pointers differ for a {weight.shape} matrix, {n_pes} PEs, PE {pe}: PE {pe} owns rows "
                  f"{pe}, {pe} + {n_pes}, …; count each column's entries, fillers included.")
        if not np.array_equal(rel, want[1]):
            _fail(f"relative indexes differ ({n_pes} PEs, PE {pe}, {index_bits}-bit index): count the zeros "
                  f"skipped since the previous entry *of the same column* (or the column's start), and bridge "
                  f"more than {2 ** index_bits - 1} zeros with a filler.")
        if not np.allclose(values, want[0]):
            _fail("the stored values differ: one per entry, in column order, 0.0 for a filler.")
    return "EIE storage: all checks passed"


def check_eie_cycles(fn, seed: int = 11) -> str:
    """Chapter 10: ``fn(entries, queue_depth) -> int``, the cycles of EIE's matrix–vector phase
    for ``entries`` (n_pes, K): the stored entries of each PE in the column of each broadcast."""
    import numpy as np

    from .hardware import eie

    rng = np.random.default_rng(seed)
    for trial in range(30):
        n_pes, depth = int(rng.integers(1, 9)), int(rng.integers(1, 6))
        config = eie.EIEConfig(n_pes=n_pes, queue_depth=depth)
        rows, cols = int(rng.integers(4, 60)), int(rng.integers(1, 40))
        layer = eie.random_layer(rows, cols, float(rng.uniform(0.03, 0.6)), config, seed=trial)
        a = eie.random_activations(cols, float(rng.uniform(0.1, 1.0)), seed=trial)
        entries = layer.entries_per_column()[:, np.flatnonzero(a)]
        want = eie.simulate(config, layer, a).matvec_cycles
        got = fn(entries.copy(), depth)
        if got == want:
            continue
        loose = 1 + int(np.maximum(entries, 1).sum(axis=1).max())
        if fn(entries.copy(), 10 ** 6) != loose:
            _fail("with queues that never fill, each PE works from cycle 1 without a gap: the answer is 1 + the "
                  "largest per-PE sum of max(entries, 1) (an empty column still costs its pointer-read cycle).")
        _fail(f"{n_pes} PEs, queue depth {depth}, {entries.shape[1]} broadcasts: expected {want} cycles, got {got}. "
              "Broadcast k happens at the earliest cycle after broadcast k − 1 at which every PE has popped "
              "activation k − depth; a PE pops k from the cycle after its broadcast, once it is free.")
    return "EIE cycle count: all checks passed"


def check_split_ranges(fn, seed: int = 11) -> str:
    """Chapter 11: ``fn(n, world_size) -> [(start, stop), …]``, the outputs each process of a
    model-parallel layer computes: contiguous, covering ``range(n)``, sizes differing by at most 1."""
    import random

    from .training.parallel import split_ranges

    rng = random.Random(seed)
    cases = [(10, 3), (300, 2), (7, 7), (50, 4), (5, 1)] + [(rng.randint(1, 500), rng.randint(1, 9)) for _ in range(40)]
    for n, w in cases:
        if w > n:
            continue
        got = [tuple(int(v) for v in r) for r in fn(n, w)]
        if len(got) != w:
            _fail(f"n={n}, world_size={w}: return one (start, stop) per process; you returned {len(got)}.")
        if got[0][0] != 0 or got[-1][1] != n or any(a[1] != b[0] for a, b in zip(got, got[1:])):
            _fail(f"n={n}, world_size={w}: the ranges must be contiguous and cover 0…{n - 1} exactly; got {got}.")
        sizes = [b - a for a, b in got]
        if max(sizes) - min(sizes) > 1:
            _fail(f"n={n}, world_size={w}: sizes {sizes} are unbalanced; they may differ by at most 1.")
        if got != split_ranges(n, w):
            _fail(f"n={n}, world_size={w}: balanced, but give the extra outputs to the first processes "
                  f"(n % world_size of them get one more), as effdl does.")
    return "split ranges: all checks passed"


def check_staleness(fn, seed: int = 12) -> str:
    """Chapter 11: ``fn(order) -> [staleness of each update]`` for an asynchronous parameter server,
    ``order`` the worker id of each update in the order the server applied them."""
    import random

    from .training.parallel import staleness_of

    rng = random.Random(seed)
    for trial in range(60):
        n_workers = rng.randint(1, 5)
        order = [rng.randint(1, n_workers) for _ in range(rng.randint(1, 30))]
        got = list(fn(list(order)))
        want = staleness_of(order)
        if got == want:
            continue
        if n_workers == 1 or len(set(order)) == 1:
            _fail(f"with a single worker every gradient is computed on the latest weights: all zeros; got {got}.")
        first = order.index(order[-1])
        _fail(f"order {order}: expected {want}, got {got}. A worker's gradient was computed on the weights the "
              f"server sent right after that worker's previous update (the initial weights before its first, "
              f"e.g. update {first} is stale by {want[first]}).")
    return "staleness: all checks passed"


def check_loss_scale_update(fn, seed: int = 13) -> str:
    """Chapter 12: ``fn(scale, good_steps, found_inf) -> (scale, good_steps)``, one step of dynamic loss
    scaling with torch.amp.GradScaler's defaults (×2 after 2000 good steps, ×0.5 on inf/NaN)."""
    import random

    from .training.mixed_precision import LossScaler

    rng = random.Random(seed)
    for trial in range(20):
        ref = LossScaler(2.0 ** rng.randint(0, 24))
        scale, good = ref.scale, 0
        for step in range(rng.randint(1, 4500)):
            found_inf = rng.random() < (0.0005 if trial % 2 else 0.02)
            ref.update(found_inf)
            got = fn(scale, good, found_inf)
            if not isinstance(got, tuple) or len(got) != 2:
                _fail("return a tuple (new_scale, new_good_steps).")
            scale, good = float(got[0]), int(got[1])
            if scale != ref.scale or good != ref.good_steps:
                what = "an overflow halves the scale and resets the count" if found_inf else \
                    "a good step counts; the 2000th in a row doubles the scale and resets the count"
                _fail(f"step {step}: expected (scale {ref.scale}, good steps {ref.good_steps}), got "
                      f"({scale}, {good}): {what}.")
    return "dynamic loss scaling: all checks passed"


def check_underflow_fraction(fn, seed: int = 14) -> str:
    """Chapter 12: ``fn(grads, scale) -> float``, the fraction of non-zero gradient values that become
    zero when ``scale · g`` is stored in fp16."""
    from .training.mixed_precision import underflow_fraction

    gen = torch.Generator().manual_seed(seed)
    for trial in range(12):
        g = torch.randn(2000, generator=gen) * 10.0 ** torch.randint(-12, 0, (2000,), generator=gen).float()
        g[torch.rand(2000, generator=gen) < 0.1] = 0.0
        scale = 2.0 ** int(torch.randint(0, 24, (1,), generator=gen))
        got, want = float(fn(g.clone(), scale)), underflow_fraction(g, scale)
        if abs(got - want) > 1e-9:
            if abs(got - underflow_fraction(g[g != 0], 1.0 * scale) * (g != 0).float().mean()) < 1e-9:
                _fail("divide by the number of non-zero values: a gradient that is already 0 cannot underflow.")
            _fail(f"scale 2^{int(torch.log2(torch.tensor(scale)))}: expected {want:.4f}, got {got:.4f}; cast "
                  "scale · g to torch.float16 and count the values that became 0.")
    return "fp16 underflow: all checks passed"


def check_distillation_loss(fn, seed: int = 1313) -> str:
    """Chapter 13: ``fn(student_logits, teacher_logits, labels, temperature, alpha) -> scalar tensor``,
    Hinton et al.'s ``α · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α) · CE(s, y)`` (batch mean)."""
    import torch.nn.functional as F

    from .training.distillation import distillation_loss

    gen = torch.Generator().manual_seed(seed)
    for trial in range(12):
        batch, k = int(torch.randint(1, 40, (1,), generator=gen)), int(torch.randint(2, 12, (1,), generator=gen))
        temperature = [1.0, 2.0, 4.0, 8.0, 0.5, 20.0][trial % 6] * float(1 + torch.rand(1, generator=gen))
        alpha = [0.0, 1.0, 0.5, 0.9][trial % 4] if trial < 8 else float(torch.rand(1, generator=gen))
        s = (torch.randn(batch, k, generator=gen) * 3).requires_grad_(True)
        t = torch.randn(batch, k, generator=gen) * 5
        y = torch.randint(0, k, (batch,), generator=gen)
        want = distillation_loss(s, t, y, temperature=temperature, alpha=alpha)
        got = fn(s, t.clone(), y.clone(), temperature, alpha)
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            _fail("return the loss as a scalar tensor (so that .backward() works).")
        if not torch.allclose(got.detach().reshape(()), want.detach(), rtol=1e-4, atol=1e-6):
            log_p_s, p_t = F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1)
            kl_sum = (p_t * (p_t.log() - log_p_s)).sum()
            hard = F.cross_entropy(s, y)
            if alpha == 0:
                _fail("with alpha = 0 the loss is the plain cross-entropy of the student's logits (at T = 1).")
            if torch.allclose(got.detach(), alpha * kl_sum / batch + (1 - alpha) * hard, rtol=1e-4):
                _fail("multiply the soft term by T²: its gradient shrinks as 1/T² (Hinton et al., section 2).")
            if torch.allclose(got.detach(), alpha * temperature ** 2 * kl_sum + (1 - alpha) * hard, rtol=1e-4):
                _fail("average the KL divergence over the batch (batchmean), like the cross-entropy.")
            _fail(f"T = {temperature:.3g}, alpha = {alpha:.2f}: expected {float(want):.5f}, got {float(got):.5f}. "
                  "Soften both logits by T, take KL(teacher ‖ student), weight it α · T², add (1 − α) · CE.")
        if not got.requires_grad:
            _fail("the loss must stay differentiable: no .detach(), .item() or numpy on the student's logits.")
        if alpha > 0:
            g_want, = torch.autograd.grad(want, s)
            g_got, = torch.autograd.grad(got.reshape(()), s)
            if not torch.allclose(g_got, g_want, rtol=1e-3, atol=1e-6):
                _fail("the value is right but the gradient is not: compute the loss with differentiable torch "
                      "operations on the student's logits.")
    return "distillation loss: all checks passed"


def check_accuracy_stderr(fn, seed: int = 1515) -> str:
    """Chapter 15: ``fn(accuracy, n_images) -> float``, the binomial standard error in percentage points."""
    import math

    from .train import accuracy_stderr

    gen = torch.Generator().manual_seed(seed)
    for _ in range(6):
        acc = float(torch.empty(1).uniform_(50.0, 99.5, generator=gen))
        n = int(torch.randint(200, 20000, (1,), generator=gen))
        got = fn(acc, n)
        if not isinstance(got, (int, float)) or isinstance(got, bool) or not math.isfinite(got):
            _fail(f"return a finite number (percentage points); got {got!r}.")
        if not math.isclose(got, accuracy_stderr(acc, n), rel_tol=1e-6):
            if math.isclose(got, accuracy_stderr(acc, n) / 100, rel_tol=1e-6):
                _fail("work in percentage points: the accuracy comes in percent, so should the error.")
            _fail(f"for accuracy={acc:.2f} % on n_images={n} your value is off; "
                  "use the spread of a Bernoulli(p) mean over n draws.")
        if not math.isclose(fn(acc, 4 * n), got / 2, rel_tol=1e-6):
            _fail("four times as many test images must halve the standard error.")
        if not math.isclose(fn(100 - acc, n), got, rel_tol=1e-6):
            _fail("an accuracy of p and one of 100 − p must have the same standard error.")
    # against simulation: the spread of accuracies measured on fresh test sets
    p, n = 0.9, 1000
    draws = torch.bernoulli(torch.full((4000, n), p), generator=gen).mean(dim=1) * 100
    if abs(float(draws.std()) - fn(90.0, n)) > 0.05:
        _fail("your standard error does not match the spread of simulated test sets.")
    return "accuracy standard error: all checks passed"


def check_geomean_speedup(fn, seed: int = 1516) -> str:
    """Chapter 15: ``fn(baseline_times, new_times) -> float``, the geometric mean of baseline/new over layers."""
    import math

    gen = torch.Generator().manual_seed(seed)
    for n in (1, 3, 9):
        base = (torch.rand(n, generator=gen) * 1000 + 1).tolist()
        new = (torch.rand(n, generator=gen) * 10 + 0.1).tolist()
        got = fn(base, new)
        want = math.exp(sum(math.log(b / t) for b, t in zip(base, new)) / n)
        if not isinstance(got, (int, float)) or isinstance(got, bool) or not math.isclose(got, want, rel_tol=1e-9):
            _fail(f"for {n} layers your value is off: average the speedups' logarithms, then exponentiate.")
        if n > 1:
            order = torch.randperm(n, generator=gen).tolist()
            if not math.isclose(fn([base[i] for i in order], [new[i] for i in order]), got, rel_tol=1e-9):
                _fail("the order of the layers must not matter.")
            if got > sum(b / t for b, t in zip(base, new)) / n + 1e-9:
                _fail("a geometric mean is never above the arithmetic mean of the speedups.")
        if not math.isclose(fn([3 * b for b in base], new), 3 * got, rel_tol=1e-9):
            _fail("a baseline three times slower on every layer must give a speedup three times larger.")
    return "geometric-mean speedup: all checks passed"


def check_dsd_masks(fn, seed: int = 17) -> str:
    """Chapter 13: ``fn(model, sparsity, skip_first) -> {name: bool mask}``, DSD's sparse-phase masks:
    per layer, the ``round(sparsity · numel)`` smallest-|w| weights of every prunable weight
    (``effdl.pruning.prunable_parameters``), the first one left out when ``skip_first``."""
    from torch import nn

    gen = torch.Generator().manual_seed(seed)
    for trial in range(8):
        layers, width = [], int(torch.randint(2, 5, (1,), generator=gen))
        if trial % 2:                                            # a small CNN
            layers += [nn.Conv2d(1, width, 3), nn.ReLU(), nn.Flatten()]
            n_in = width * 4 * 4
        else:
            layers += [nn.Flatten()]
            n_in = 36
        for _ in range(int(torch.randint(1, 3, (1,), generator=gen))):
            n_out = int(torch.randint(5, 40, (1,), generator=gen))
            layers += [nn.Linear(n_in, n_out), nn.ReLU()]
            n_in = n_out
        model = nn.Sequential(*layers, nn.Linear(n_in, 3))
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        sparsity = [0.3, 0.5, float(torch.rand(1, generator=gen)) * 0.95][trial % 3]
        skip_first = bool(trial % 4 >= 2)
        masks = fn(model, sparsity, skip_first)
        weights = pruning.prunable_parameters(model)
        names = list(weights)
        want = names[1:] if skip_first else names
        if not isinstance(masks, dict) or sorted(masks) != sorted(want):
            _fail(f"return a dict keyed by the names of prunable_parameters(model); with skip_first={skip_first} "
                  f"expected keys {want}, got {sorted(masks) if isinstance(masks, dict) else type(masks).__name__}.")
        if any(not torch.equal(before[k], v) for k, v in model.state_dict().items()):
            _fail("compute the masks only: do not change the model's weights (applying them is apply_masks' job).")
        for name in want:
            m, w = masks[name], weights[name].detach()
            if not isinstance(m, torch.Tensor) or m.dtype != torch.bool or m.shape != w.shape:
                _fail(f"masks[{name!r}] must be a bool tensor of shape {tuple(w.shape)} (True = kept).")
            n_pruned = int((~m).sum())
            if n_pruned != round(sparsity * w.numel()):
                _fail(f"{name}: prune round(sparsity · numel) = {round(sparsity * w.numel())} weights of this "
                      f"layer (per layer, not globally); you pruned {n_pruned}.")
            if m.any() and (~m).any() and w[m].abs().min() < w[~m].abs().max():
                _fail(f"{name}: a kept weight is smaller in magnitude than a pruned one: rank by |w| within "
                      "the layer.")
    return "DSD masks: all checks passed"


# ------------------------------------------------------------ chapter 14: training hardware
def check_training_days(fn, seed: int = 1400) -> str:
    """Chapter 14: ``fn(total_flops, peak_tflops, utilization) -> days`` to train on one chip."""
    import math

    from .hardware import specs

    gen = torch.Generator().manual_seed(seed)
    for _ in range(20):
        flops = 10.0 ** float(torch.empty(1).uniform_(15, 23, generator=gen))
        peak = float(torch.empty(1).uniform_(1, 200, generator=gen))
        util = float(torch.empty(1).uniform_(0.05, 1.0, generator=gen))
        want = specs.training_time_s(flops, peak, util) / 86400
        got = fn(flops, peak, util)
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            _fail(f"return a number of days (a float); got {type(got).__name__}.")
        if not math.isclose(got, want, rel_tol=1e-9):
            if math.isclose(got, want * 86400, rel_tol=1e-9):
                _fail("that is seconds, not days: a day has 86,400 seconds.")
            _fail(f"for {flops:.3g} FLOPs on a {peak:.3g}-TFLOPS chip at utilization {util:.2f} the time is off: "
                  "divide the work by the rate the chip actually sustains (peak × 10¹² × utilization).")
    for bad in (0.0, -0.5, 1.5):
        try:
            fn(1e18, 10.0, bad)
        except ValueError:
            continue
        _fail(f"utilization must be in (0, 1]: raise ValueError for {bad}.")
    return "training days: all checks passed"


def check_tensor_core_fp32_mma(fn, seed: int = 1401) -> str:
    """Chapter 14: ``fn(a, b, c) -> d``, one 4×4×4 Tensor Core step: fp16 inputs, exact products, fp32 sums."""
    from .training import mixed_precision as mp

    gen = torch.Generator().manual_seed(seed)

    def call(a, b, c):
        d = fn(a.clone(), b.clone(), c.clone())
        if not isinstance(d, torch.Tensor) or d.shape != (4, 4):
            _fail("return a 4×4 tensor D = A·B + C.")
        return d.double()

    for _ in range(10):                                   # agrees with effdl's emulation on fresh inputs
        a, b, c = (torch.randn(4, 4, generator=gen) for _ in range(3))
        want = mp.tensor_core_mma(a, b, c).double()
        if not torch.allclose(call(a, b, c), want, rtol=1e-6, atol=1e-6):
            _fail("D differs from a Tensor Core's result on random inputs: round A and B to fp16, multiply, "
                  "and add the products to C in fp32.")
    a = torch.full((4, 4), 1.0 + 2.0 ** -13)              # not representable in fp16: rounds to 1.0
    b, c = torch.ones(4, 4), torch.zeros(4, 4)
    if torch.allclose(call(a, b, c), (a.double() @ b.double()), rtol=0, atol=1e-6):
        _fail("the inputs must be rounded to fp16 first (a Tensor Core reads fp16 A and B).")
    a = torch.full((4, 4), 0.25)
    b = torch.full((4, 4), 0.25)
    c = torch.full((4, 4), 2048.0)                         # fp16 spacing at 2048 is 2: the products vanish in fp16
    if not torch.allclose(call(a, b, c), torch.full((4, 4), 2048.25, dtype=torch.float64)):
        _fail("accumulate in fp32: 2048 + 4 × 0.0625 is 2048.25 in fp32 but 2048 if each sum is stored in fp16.")
    return "Tensor Core MMA with fp32 accumulation: all checks passed"


# ----------------------------------------------------------- chapter 16: measured on a GPU
def check_two_four_mask(fn, seed: int = 1600) -> str:
    """Chapter 16: ``fn(weight) -> bool mask`` keeping exactly 2 of every 4 consecutive weights by magnitude."""
    from .hardware import gpu_bench

    gen = torch.Generator().manual_seed(seed)
    for shape in [(8, 16), (3, 4, 8), (12,), (1, 4)]:
        w = torch.randn(shape, generator=gen)
        mask = fn(w.clone())
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.shape != w.shape:
            _fail(f"return a bool tensor of the weight's shape {tuple(w.shape)} (True = kept).")
        kept = mask.reshape(-1, 4).sum(dim=1)
        if not torch.all(kept == 2):
            _fail("keep exactly 2 of every group of 4 consecutive weights along the last dimension "
                  f"(found groups keeping {sorted(set(kept.tolist()))}).")
        groups, m = w.abs().reshape(-1, 4), mask.reshape(-1, 4)
        if torch.any(groups[m].reshape(-1, 2).min(dim=1).values < groups[~m].reshape(-1, 2).max(dim=1).values):
            _fail("in some group a kept weight is smaller in magnitude than a pruned one: rank by |w|.")
        if not torch.equal(mask, gpu_bench.two_four_mask(w)):
            _fail("your mask differs from the 2:4 rule on random weights.")
        if not torch.equal(fn(w * mask), mask):
            _fail("applying the mask and masking again must keep the same weights.")
    return "2:4 mask: all checks passed"


def check_matmul_intensity(fn, seed: int = 1601) -> str:
    """Chapter 16: ``fn(m, k, n, bytes_per_element) -> FLOP per DRAM byte`` of ``(m×k) @ (k×n)``."""
    import math

    from .hardware import roofline

    gen = torch.Generator().manual_seed(seed)
    for _ in range(20):
        m, k, n = (int(v) for v in torch.randint(1, 20000, (3,), generator=gen))
        nbytes = [1, 2, 4][int(torch.randint(0, 3, (1,), generator=gen))]
        want = roofline.fc_work(k, n, batch_size=m, weight_bits=8 * nbytes, act_bits=8 * nbytes).intensity("dram")
        got = fn(m, k, n, nbytes)
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            _fail(f"return a number (FLOP per byte); got {type(got).__name__}.")
        if not math.isclose(got, want, rel_tol=1e-9):
            _fail(f"for m={m}, k={k}, n={n} at {nbytes} byte(s) per element the intensity is off: count 2 FLOPs "
                  "per multiply-add, and read A and B and write C once each.")
    return "matmul intensity: all checks passed"
