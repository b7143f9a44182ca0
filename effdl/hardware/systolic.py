"""A weight-stationary systolic array, the TPU's matrix unit, in two models that must agree.

Taught in chapter 9. The array is the 256×256 matrix multiply unit of Jouppi
et al., "In-Datacenter Performance Analysis of a Tensor Processing Unit",
ISCA 2017 (any size here); systolic arrays are Kung and Leiserson's (1978).

It computes ``Y = X @ W`` with ``X`` of shape (M, K) (M input vectors, e.g. a
batch) and ``W`` of shape (K, N) (the weights):

- **weights preloaded**: a tile of at most ``rows × cols`` weights is shifted
  into the array from the top, one row per cycle (or slower when the weight
  bandwidth from off-chip memory is the limit), into shadow registers; with
  double buffering the next tile loads while the current one computes.
  PE (i, j) holds W[k0 + i, n0 + j];
- **activations flow right**: row i receives X[m, k0 + i] at cycle m + i (the
  input is *skewed*), and passes it to its right neighbour each cycle;
- **partial sums flow down**: PE (i, j) adds its product to the sum from
  above; the sum leaving the bottom of column j at cycle m + (rows − 1) + j
  is Y[m, n0 + j] for this tile, added into an accumulator outside the array;
- **folding**: a GEMM larger than the array runs as ⌈K/rows⌉ · ⌈N/cols⌉
  tiles ("folds"), N-tiles outer and K-tiles inner, partial results summed in
  the accumulators.

One fold of M vectors using n_f columns takes

    compute = M + (rows − 1) + (n_f − 1) cycles
            = stream (M: one vector enters per cycle)
            + fill   (rows − 1: the first sum travels down the array)
            + drain  (n_f − 1: the last vector crosses to the last column)

plus the exposed part of its weight load. Utilisation = MACs ÷ (cycles ×
PEs); mapping efficiency = weights placed ÷ (folds × PEs), the part of the
array the tiles fill.

:func:`simulate` steps the registers of every PE cycle by cycle and records a
trace (chapter 9's animation reads it); :func:`estimate` and
:func:`estimate_gemms` are the closed form, vectorised over folds, fast enough
for a 256×256 array on whole networks. Tests check that they agree.

>>> cfg = SystolicConfig(rows=4, cols=4)
>>> r = simulate(cfg, np.arange(6).reshape(3, 2), np.ones((2, 3), dtype=int))
>>> r.output.tolist(), r.cycles, estimate(cfg, 3, 2, 3).cycles
([[1, 1, 1], [5, 5, 5], [9, 9, 9]], 10, 10)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from effdl._validate import check_bool, check_float, check_int, check_type


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class SystolicConfig:
    """A weight-stationary array of ``rows × cols`` PEs.

    Parameters
    ----------
    rows, cols : int
        PEs along K (rows) and along N (columns); the TPU's is 256 × 256.
    double_buffered : bool
        Load the next tile's weights into shadow registers while the current
        tile computes (the TPU does). Otherwise every load stalls the array.
    weight_bandwidth : float or None
        Bytes per cycle from off-chip memory into the weight shift chain.
        ``None``: unlimited, one row per cycle. The TPU's 34 GB/s at 700 MHz
        is ~48.6 bytes per cycle (:meth:`tpu`).
    weight_bits : int
        Bits per weight (for the bandwidth); the TPU's are 8.
    clock_mhz : float
        Clock for converting cycles to seconds.
    """

    rows: int = 256
    cols: int = 256
    double_buffered: bool = True
    weight_bandwidth: float | None = None
    weight_bits: int = 8
    clock_mhz: float = 700.0

    def __post_init__(self):
        check_int("rows", self.rows, min=1)
        check_int("cols", self.cols, min=1)
        check_bool("double_buffered", self.double_buffered)
        if self.weight_bandwidth is not None:
            check_float("weight_bandwidth", self.weight_bandwidth, min=0, min_open=True)
        check_int("weight_bits", self.weight_bits, min=1, max=64)
        check_float("clock_mhz", self.clock_mhz, min=0, min_open=True)

    @classmethod
    def tpu(cls) -> SystolicConfig:
        """The TPU's matrix unit: 256 × 256 8-bit MACs at 700 MHz, weights from 34 GB/s DDR3
        (Jouppi et al., Table 2)."""
        from effdl.hardware.specs import get_chip

        chip = get_chip("TPU")
        return cls(256, 256, True, chip.bandwidth_gbs * 1e9 / (chip.clock_mhz * 1e6), 8, chip.clock_mhz)

    @property
    def n_pes(self) -> int:
        return self.rows * self.cols

    def _bandwidth(self) -> Fraction | None:
        # exact arithmetic so the simulator and the closed form count the same cycles
        return None if self.weight_bandwidth is None else Fraction(self.weight_bandwidth).limit_denominator(10 ** 6)


def _load_cycles(config: SystolicConfig, k_f, n_f):
    """Cycles to shift a k_f × n_f tile in: max(k_f, ⌈k_f · n_f · bits / 8 / bandwidth⌉) (arrays allowed)."""
    k_f = np.asarray(k_f, dtype=np.int64)
    bw = config._bandwidth()
    if bw is None:
        return k_f
    # ceil(k·n·bits / (8·bw)) with bw = p/q:  ceil(k·n·bits·q / (8·p))
    num = k_f * np.asarray(n_f, dtype=np.int64) * config.weight_bits * bw.denominator
    den = 8 * bw.numerator
    return np.maximum(k_f, -(-num // den))


# --------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Fold:
    """One tile of the GEMM on the array: W[k0:k1, n0:n1], with its cycle counts."""

    index: int
    k0: int
    k1: int
    n0: int
    n1: int
    start_cycle: int
    load_cycles: int            # exposed (stalling) load cycles before this fold computes
    fill_cycles: int
    stream_cycles: int
    drain_cycles: int

    @property
    def compute_cycles(self) -> int:
        return self.fill_cycles + self.stream_cycles + self.drain_cycles


@dataclass(frozen=True)
class Trace:
    """Every PE's registers after each cycle of :func:`simulate` (T cycles, R × C PEs).

    ``act``/``act_tag``: activation register and the index m of the input
    vector it belongs to (−1: empty); ``psum``/``psum_tag``: partial-sum
    register and its m; ``weight``: active weights; ``shadow``: the weights
    being shifted in; ``mac``: True where the PE did a useful multiply-add;
    ``feed``/``feed_tag`` (T, R): what entered each row from the left;
    ``phase`` (T,): "load" (array stalled) or "compute"; ``fold`` (T,);
    ``outputs``: (cycle, m, n, value) for each partial result leaving the
    bottom, in order.
    """

    act: np.ndarray
    act_tag: np.ndarray
    psum: np.ndarray
    psum_tag: np.ndarray
    weight: np.ndarray
    shadow: np.ndarray
    mac: np.ndarray
    feed: np.ndarray
    feed_tag: np.ndarray
    phase: np.ndarray
    fold: np.ndarray
    outputs: tuple

    @property
    def n_cycles(self) -> int:
        return len(self.phase)


@dataclass(frozen=True)
class SystolicResult:
    """What :func:`simulate` (step by step) or :func:`estimate` (closed form) found for one GEMM.

    ``output`` and ``trace`` are ``None`` for the closed form. Cycle totals:
    ``cycles = load_cycles + fill_cycles + stream_cycles + drain_cycles``.
    ``x`` (M, K) and ``w`` (K, N) are the GEMM's operands as simulated (in
    the dtype computed with), so that a view needs nothing but the result;
    ``None`` for the closed form.
    """

    config: SystolicConfig
    m: int
    k: int
    n: int
    cycles: int
    load_cycles: int
    fill_cycles: int
    stream_cycles: int
    drain_cycles: int
    n_folds: int
    macs: int
    weights_placed: int
    folds: tuple[Fold, ...] = field(default=(), repr=False)
    output: np.ndarray | None = field(default=None, repr=False)
    trace: Trace | None = field(default=None, repr=False)
    x: np.ndarray | None = field(default=None, repr=False)
    w: np.ndarray | None = field(default=None, repr=False)

    @property
    def utilization(self) -> float:
        """MACs ÷ (cycles × PEs)."""
        return self.macs / (self.cycles * self.config.n_pes)

    @property
    def mapping_efficiency(self) -> float:
        """Weights placed ÷ (folds × PEs): how full the tiles keep the array."""
        return self.weights_placed / (self.n_folds * self.config.n_pes)

    @property
    def seconds(self) -> float:
        return self.cycles / (self.config.clock_mhz * 1e6)


# --------------------------------------------------------------------------- the step-by-step simulator
def _fold_plan(config: SystolicConfig, k: int, n: int) -> list[tuple[int, int, int, int]]:
    """(k0, k1, n0, n1) for every fold: N-tiles outer, K-tiles inner."""
    R, C = config.rows, config.cols
    return [(k0, min(k0 + R, k), n0, min(n0 + C, n)) for n0 in range(0, n, C) for k0 in range(0, k, R)]


def _check_matrix(name: str, a) -> np.ndarray:
    if isinstance(a, (bool, str)) or a is None:
        raise TypeError(f"{name} must be a 2-D numeric array; got {a!r}.")
    arr = np.asarray(a)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a 2-D numeric array (integer or float); got dtype {arr.dtype}.")
    if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"{name} must be a non-empty 2-D array; got shape {arr.shape}.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; got {a!r}.")
    return arr


class _Loader:
    """The weight shift chain: rows of the next tile enter the shadow registers from the top."""

    def __init__(self, config: SystolicConfig, tile: np.ndarray):
        self.tile, self.bw = tile, config._bandwidth()       # tile: (k_f, n_f)
        self.row_bytes = Fraction(tile.shape[1] * config.weight_bits, 8)
        self.credit = Fraction(0)
        self.fed = 0                                          # rows fed so far (last row first)
        self.shadow = np.zeros((config.rows, config.cols), dtype=tile.dtype)

    @property
    def done(self) -> bool:
        return self.fed == self.tile.shape[0]

    def step(self) -> None:
        """One cycle: bytes arrive; if a whole row is there, every shadow row shifts down and it enters row 0."""
        if self.done:
            return
        if self.bw is not None:
            self.credit += self.bw
            if self.credit < self.row_bytes:
                return
            self.credit -= self.row_bytes
        k_f, n_f = self.tile.shape
        self.shadow[1:] = self.shadow[:-1].copy()
        self.shadow[0] = 0
        self.shadow[0, :n_f] = self.tile[k_f - 1 - self.fed]  # last row first: after k_f shifts row i is W[i]
        self.fed += 1


def simulate(config: SystolicConfig, x, w, *, record_trace: bool = False) -> SystolicResult:
    """Run ``x @ w`` on the array cycle by cycle, tracking every PE's registers.

    Parameters
    ----------
    config : SystolicConfig
    x : array (M, K)
        Input vectors, one per row (integers are computed exactly).
    w : array (K, N)
        Weights.
    record_trace : bool
        Keep every cycle's registers in ``result.trace`` (small arrays only:
        memory grows as cycles × rows × cols).

    Returns
    -------
    SystolicResult
        ``output`` is the (M, N) product assembled from what left the array;
        cycle counts are those observed (first and last result of each fold),
        not computed from the formula.
    """
    check_type("config", config, SystolicConfig, "a SystolicConfig")
    x, w = _check_matrix("x", x), _check_matrix("w", w)
    if x.shape[1] != w.shape[0]:
        raise ValueError(f"w must have as many rows as x has columns ({x.shape[1]}); got shape {w.shape}.")
    check_bool("record_trace", record_trace)
    dtype = np.result_type(x.dtype, w.dtype, np.int64 if x.dtype.kind in "iu" and w.dtype.kind in "iu" else np.float64)
    x, w = x.astype(dtype), w.astype(dtype)
    M, K = x.shape
    N = w.shape[1]
    R, C = config.rows, config.cols
    plan = _fold_plan(config, K, N)

    weight = np.zeros((R, C), dtype)
    act, act_tag = np.zeros((R, C), dtype), np.full((R, C), -1)
    psum, psum_tag = np.zeros((R, C), dtype), np.full((R, C), -1)
    y = np.zeros((M, N), dtype)
    rec: dict[str, list] = {key: [] for key in ("act", "act_tag", "psum", "psum_tag", "weight", "shadow", "mac",
                                                  "feed", "feed_tag", "phase", "fold")}
    outputs, folds = [], []
    cycle, macs = 0, 0
    col = np.arange(C)

    def record(phase, f, shadow, mac, feed, feed_tag):
        if record_trace:
            for key, val in (("act", act), ("act_tag", act_tag), ("psum", psum), ("psum_tag", psum_tag),
                             ("weight", weight), ("shadow", shadow), ("mac", mac), ("feed", feed),
                             ("feed_tag", feed_tag)):
                rec[key].append(val.copy())
            rec["phase"].append(phase)
            rec["fold"].append(f)

    idle_mac, idle_feed, idle_tag = np.zeros((R, C), bool), np.zeros(R, dtype), np.full(R, -1)
    loader = _Loader(config, w[plan[0][0]:plan[0][1], plan[0][2]:plan[0][3]])
    for f, (k0, k1, n0, n1) in enumerate(plan):
        k_f, n_f = k1 - k0, n1 - n0
        start = cycle
        while not loader.done:                           # exposed load: the array waits for its weights
            loader.step()
            record("load", f, loader.shadow, idle_mac, idle_feed, idle_tag)
            cycle += 1
        load = cycle - start
        weight = loader.shadow.copy()                    # swap shadow → active
        used = np.zeros((R, C), bool)
        used[:k_f, :n_f] = True
        nxt = plan[f + 1] if f + 1 < len(plan) else None
        loader = _Loader(config, w[nxt[0]:nxt[1], nxt[2]:nxt[3]]) if nxt else None
        t, first_out, col0_outs, last_col0, last_out, collected = 0, None, 0, None, None, 0
        while collected < M * n_f:
            if loader is not None and config.double_buffered:
                loader.step()                            # the next tile shifts in behind the scenes
            # the skewed input: row i gets x[t - i, k0 + i] at cycle t of the fold
            m_idx = t - np.arange(R)
            ok = (m_idx >= 0) & (m_idx < M) & (np.arange(R) < k_f)
            feed = np.zeros(R, dtype)
            feed[ok] = x[m_idx[ok], k0 + np.flatnonzero(ok)]
            feed_tag = np.where(ok, m_idx, -1)
            # every PE at once: activation from the left, partial sum from above
            a_in = np.concatenate([feed[:, None], act[:, :-1]], axis=1)
            a_tag = np.concatenate([feed_tag[:, None], act_tag[:, :-1]], axis=1)
            p_in = np.concatenate([np.zeros((1, C), dtype), psum[:-1]], axis=0)
            p_tag = np.concatenate([a_tag[:1], psum_tag[:-1]], axis=0)
            live = a_tag >= 0
            assert np.all(~live | (p_tag == a_tag)), "an activation met another vector's partial sum"
            act, act_tag = a_in, a_tag
            psum = p_in + np.where(live, a_in * weight, 0)
            psum_tag = p_tag
            mac = live & used
            macs += int(mac.sum())
            # what leaves the bottom row this cycle, in the columns this fold uses
            leaving = np.flatnonzero((psum_tag[R - 1] >= 0) & (col < n_f))
            if leaving.size:
                m_out = psum_tag[R - 1, leaving]
                y[m_out, n0 + leaving] += psum[R - 1, leaving]       # into the accumulators
                if record_trace:
                    outputs.extend((cycle, int(m), n0 + int(j), psum[R - 1, j].item())
                                   for m, j in zip(m_out, leaving))
                collected += leaving.size
                last_out = t
                if first_out is None:
                    first_out = t
                if leaving[0] == 0:
                    col0_outs, last_col0 = col0_outs + 1, t
            record("compute", f, loader.shadow if loader is not None else np.zeros((R, C), dtype),
                   mac, feed, feed_tag)
            t += 1
            cycle += 1
        # the fold is over when its last result has left; empty the pipeline registers
        act[:], act_tag[:], psum[:], psum_tag[:] = 0, -1, 0, -1
        folds.append(Fold(f, k0, k1, n0, n1, start, load, first_out, col0_outs, last_out - last_col0))
        assert first_out + col0_outs + (last_out - last_col0) == t

    result_folds = tuple(folds)
    trace = None
    if record_trace:
        trace = Trace(*(np.array(rec[key]) for key in ("act", "act_tag", "psum", "psum_tag", "weight", "shadow",
                                                         "mac", "feed", "feed_tag", "phase", "fold")),
                      outputs=tuple(outputs))
    return SystolicResult(config, M, K, N, cycle, sum(fd.load_cycles for fd in folds),
                          sum(fd.fill_cycles for fd in folds), sum(fd.stream_cycles for fd in folds),
                          sum(fd.drain_cycles for fd in folds), len(folds), macs,
                          sum((fd.k1 - fd.k0) * (fd.n1 - fd.n0) for fd in folds), result_folds, y, trace, x, w)


# --------------------------------------------------------------------------- the closed form
def _fold_cycles(config: SystolicConfig, m: int, k: int, n: int) -> dict:
    """Per-fold arrays of the closed form (N-tiles outer, K-tiles inner)."""
    R, C = config.rows, config.cols
    n_k, n_n = -(-k // R), -(-n // C)
    k_f = np.tile(np.minimum(R, k - R * np.arange(n_k)), n_n)               # (folds,)
    n_f = np.repeat(np.minimum(C, n - C * np.arange(n_n)), n_k)
    fill = np.full(k_f.shape, R - 1)
    stream = np.full(k_f.shape, m)
    drain = n_f - 1
    compute = fill + stream + drain                                          # M + (R-1) + (n_f-1)
    load = _load_cycles(config, k_f, n_f)
    if config.double_buffered:
        # fold f+1 loads while fold f computes; only what is left over stalls the array
        exposed = np.concatenate([load[:1], np.maximum(0, load[1:] - compute[:-1])])
    else:
        exposed = load
    return {"k_f": k_f, "n_f": n_f, "load": exposed, "fill": fill, "stream": stream, "drain": drain,
            "compute": compute}


def _check_dims(m, k, n) -> tuple[int, int, int]:
    return check_int("M", m, min=1), check_int("K", k, min=1), check_int("N", n, min=1)


def estimate(config: SystolicConfig, m: int, k: int, n: int) -> SystolicResult:
    """The closed-form cycle count of an (M × K) @ (K × N) GEMM, with the same totals as :func:`simulate`.

    cycles = Σ_folds [exposed load + (M) + (rows − 1) + (n_f − 1)].

    >>> r = estimate(SystolicConfig(), 200, 9216, 4096)        # AlexNet fc6 at batch 200, 256×256
    >>> r.n_folds, r.cycles, round(r.utilization, 3)
    (576, 409216, 0.282)
    """
    check_type("config", config, SystolicConfig, "a SystolicConfig")
    m, k, n = _check_dims(m, k, n)
    fc = _fold_cycles(config, m, k, n)
    starts = np.concatenate([[0], np.cumsum(fc["load"] + fc["compute"])[:-1]])
    folds = tuple(Fold(i, k0, k1, n0, n1, int(starts[i]), int(fc["load"][i]), int(fc["fill"][i]),
                       int(fc["stream"][i]), int(fc["drain"][i]))
                  for i, (k0, k1, n0, n1) in enumerate(_fold_plan(config, k, n)))
    totals = {key: int(fc[key].sum()) for key in ("load", "fill", "stream", "drain")}
    return SystolicResult(config, m, k, n, sum(totals.values()), totals["load"], totals["fill"], totals["stream"],
                          totals["drain"], len(fc["k_f"]), m * k * n, k * n, folds)


# --------------------------------------------------------------------------- whole networks
@dataclass(frozen=True)
class Gemm:
    """One layer as GEMMs: ``count`` independent (M × K) @ (K × N) products (``count`` > 1 for grouped convs)."""

    name: str
    m: int
    k: int
    n: int
    count: int = 1

    def __post_init__(self):
        check_type("name", self.name, str, "a string")
        _check_dims(self.m, self.k, self.n)
        check_int("count", self.count, min=1)

    @property
    def macs(self) -> int:
        return self.count * self.m * self.k * self.n


def network_gemms(spec, batch_size: int = 1) -> list[Gemm]:
    """The conv and fc layers of an architecture as GEMMs (convs by im2col).

    FC: M = batch, K = inputs, N = outputs. Conv: M = batch · OH · OW,
    K = (C_in / groups) · k · k, N = C_out / groups, ``count`` = groups.
    ``spec``: a name from ``effdl.architectures`` (``"alexnet"``, ``"vgg16"`` …) or an Architecture.
    """
    from effdl.architectures import Conv2d, get_architecture, layer_table

    arch = get_architecture(spec) if isinstance(spec, str) else spec
    b = check_int("batch_size", batch_size, min=1)
    groups = {leaf.name: leaf.groups for leaf in arch.spec._leaves() if isinstance(leaf, Conv2d)}
    gemms = []
    for r in layer_table(arch):
        if r.kind == "fc":
            gemms.append(Gemm(r.name, b, r.input_shape[0], r.output_shape[0]))
        else:
            g = groups.get(r.name, 1)
            c_out, oh, ow = r.output_shape
            gemms.append(Gemm(r.name, b * oh * ow, r.weights // c_out, c_out // g, g))
    return gemms


def estimate_gemms(config: SystolicConfig, gemms) -> dict:
    """The closed form over many GEMMs (a whole network).

    Returns ``{"layers": [row per GEMM: name, M, K, N, count, folds, cycles,
    utilization, mapping_efficiency, seconds], "cycles", "macs", "utilization",
    "seconds"}``; a GEMM with ``count`` > 1 runs ``count`` times in a row.
    """
    check_type("config", config, SystolicConfig, "a SystolicConfig")
    gemms = list(gemms)
    if not gemms or not all(isinstance(g, Gemm) for g in gemms):
        raise TypeError(f"gemms must be a non-empty sequence of Gemm; got {gemms!r}.")
    rows, total_cycles, total_macs = [], 0, 0
    for g in gemms:
        fc = _fold_cycles(config, g.m, g.k, g.n)            # numpy over folds, no per-fold objects
        one = int(fc["load"].sum() + fc["compute"].sum())
        n_folds = len(fc["k_f"])
        cycles = g.count * one
        rows.append({"name": g.name, "M": g.m, "K": g.k, "N": g.n, "count": g.count,
                     "folds": g.count * n_folds, "cycles": cycles,
                     "utilization": g.macs / (cycles * config.n_pes),
                     "mapping_efficiency": g.k * g.n / (n_folds * config.n_pes),
                     "seconds": cycles / (config.clock_mhz * 1e6)})
        total_cycles += cycles
        total_macs += g.macs
    return {"layers": rows, "cycles": total_cycles, "macs": total_macs,
            "utilization": total_macs / (total_cycles * config.n_pes),
            "seconds": total_cycles / (config.clock_mhz * 1e6)}


def random_gemm(m: int, k: int, n: int, *, seed: int = 0, low: int = -8, high: int = 8):
    """Random integer (M × K) and (K × N) matrices in [low, high) for exact checks of :func:`simulate`."""
    m, k, n = _check_dims(m, k, n)
    rng = np.random.default_rng(check_int("seed", seed))
    low = check_int("low", low)
    high = check_int("high", high, min=low + 1)
    return rng.integers(low, high, size=(m, k)), rng.integers(low, high, size=(k, n))


__all__ = [
    "Fold",
    "Gemm",
    "SystolicConfig",
    "SystolicResult",
    "Trace",
    "estimate",
    "estimate_gemms",
    "network_gemms",
    "random_gemm",
    "simulate",
]
