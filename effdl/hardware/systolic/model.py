"""The closed form: cycles, utilisation and memory traffic of a GEMM on an R × C array, in microseconds.

Part of :mod:`effdl.hardware.systolic` (chapter 9). A GEMM larger than the
array runs as *folds*: tiles of the dimensions mapped on the array's rows
(size ``Sr``) and columns (``Sc``), ⌈Sr/R⌉ · ⌈Sc/C⌉ of them, column tiles
outer and row tiles inner; each streams ``T`` vectors through
(:data:`~effdl.hardware.systolic.config.MAPPING` gives Sr, Sc, T per dataflow).

A fold using r × c PEs costs ``load + fill + stream + drain`` cycles:

================  ================================  ===================================
                  ``timing="tpu"``                  ``timing="scalesim"``
================  ================================  ===================================
load (ws, is)     r rows shifted in (or the weight  R — the whole array's rows, every
                  bandwidth's limit); hidden behind fold, never overlapped
                  the previous fold when double-
                  buffered, only the rest stalls
load (os)         0 (nothing is preloaded)          0
fill              R − 1 (ws, is); r − 1 (os)        R − 1
stream            T                                 T
drain             c − 1 (the columns used)          C − 1 (the whole array)
total             Σ folds                           Σ folds − 1 (SCALE-Sim counts from 0)
================  ================================  ===================================

``"tpu"`` is what a double-buffered TPU-like array does with a partial
tile (Jouppi et al., ISCA 2017); ``"scalesim"`` reproduces SCALE-Sim v2's
accounting cycle for cycle (its compute modules pad a partial fold to the
whole array and charge an R-cycle weight load per fold). Mapping efficiency
and SCALE-Sim's "compute utilisation" are its per-fold means; the latter
divides by 2R + 2C + T − 3 cycles per fold for ws and is and by
R + C + T − 2 for os (its definition, reproduced as is).

Folds differ only in whether their row and column tiles are full or the
partial last one, so every sum here runs over at most four *classes* of
folds with their counts — exact, and independent of the number of folds
(a GEMV with K = 9,216 on an 8 × 8 array has 589,824 folds).
:func:`fold_table` gives the per-fold numpy arrays (the step simulator's
observed folds are compared with it).

Memory traffic (in words; ``word_bytes`` per word): the SRAM reads and
writes are SCALE-Sim's counts — each fold reads its streamed and stationary
operands from SRAM and writes its (partial) outputs; for os SCALE-Sim
also adds R + C writes per fold, reproduced under ``timing="scalesim"``.
DRAM: an operand whose words fit in the active half of its
double-buffered SRAM (50 sets of ⌊words / 100⌋, SCALE-Sim's layout) is fetched once; otherwise every SRAM read of it
misses (an upper bound — SCALE-Sim's trace-level buffer keeps a window of
recent words, so it lies between); outputs are all written back.
``bandwidth_needed`` = DRAM words ÷ cycles; at a lower ``dram_bandwidth``
the layer takes ⌈words ÷ bandwidth⌉ cycles (stalls are the difference),
a roofline-style bound rather than SCALE-Sim's trace-driven stalls.
"""
from __future__ import annotations

import math
from dataclasses import replace
from fractions import Fraction

import numpy as np

from effdl.hardware.systolic.config import DATAFLOWS, Gemm, SystolicConfig
from effdl.hardware.systolic.result import Folds, NetworkResult, SystolicResult, Traffic
from effdl.validation import Instance, ListOf, Options, PositiveInt, validate_params

_CONFIG = Instance(SystolicConfig, "a SystolicConfig")
_GEMM = Instance(Gemm, "a Gemm")


def _runs(total: int, size: int) -> list[tuple[int, int]]:
    """Tiles of ``total`` by ``size`` as (length, count) runs, in order: the full ones, then the partial one."""
    full, rest = divmod(total, size)
    return [(size, full)] * bool(full) + [(rest, 1)] * bool(rest)


def _n_tiles(total: int, size: int) -> int:
    return -(-total // size)


def _load_cycles(config: SystolicConfig, r, c):
    """Cycles to shift an r × c stationary tile in (``"tpu"`` timing): r rows, one per cycle, or
    ⌈r · c · n_bits_weight / 8 / weight_bandwidth⌉ when the weight bandwidth is the limit (arrays allowed)."""
    if config.weight_bandwidth is None:
        return r
    r = np.asarray(r, dtype=np.int64)
    # exact arithmetic so the step simulator and the closed form count the same cycles: bw = p / q
    bw = Fraction(config.weight_bandwidth).limit_denominator(10 ** 6)
    num = r * np.asarray(c, dtype=np.int64) * config.n_bits_weight * bw.denominator
    return np.maximum(r, -(-num // (8 * bw.numerator)))


def _parts(config: SystolicConfig, r, c, t: int):
    """(load, fill, stream, drain) of one fold using r × c PEs, before any overlap (numpy-friendly)."""
    R, C = config.rows, config.cols
    preload = config.dataflow != "os"
    if config.timing == "scalesim":
        return (R if preload else 0), R - 1, t, C - 1
    load = _load_cycles(config, r, c) if preload else 0 * r
    fill = R - 1 if preload else r - 1
    return load, fill, t, c - 1


def _exposed_loads(config: SystolicConfig, rows: list, cols: list, t: int) -> int:
    """Σ exposed load cycles over all folds (``"tpu"`` timing, ws/is), by classes of folds."""
    def load(r, c):
        return int(_load_cycles(config, r, c))

    def compute(r, c):
        _, fill, stream, drain = _parts(config, r, c, t)
        return int(fill + stream + drain)

    n_r = sum(n for _, n in rows)
    if not config.double_buffered:
        return sum(nr * nc * load(r, c) for r, nr in rows for c, nc in cols)
    first_r = rows[0][0]
    last_r = rows[-1][0]
    later_rows = [(rows[0][0], rows[0][1] - 1)] + rows[1:]           # row tiles 1 … n_r − 1 of a column tile
    total = load(first_r, cols[0][0])                                 # the very first load stalls
    if n_r > 1:     # within a column tile, tile i loads while tile i − 1 computes
        total += sum(nc * nr * max(0, load(r, c) - compute(r, c)) for c, nc in cols for r, nr in later_rows if nr)
    # the first row tile of column tile j loads while the last row tile of column tile j − 1 computes
    pairs = {}
    full_c, n_full = cols[0]
    if n_full > 1:
        pairs[(full_c, full_c)] = n_full - 1
    if len(cols) == 2:
        pairs[(full_c, cols[1][0])] = 1
    total += sum(n * max(0, load(first_r, c) - compute(last_r, prev)) for (prev, c), n in pairs.items())
    return total


def _traffic(config: SystolicConfig, gemm: Gemm, cycles: int, n_folds: int, n_row_tiles: int,
             n_col_tiles: int) -> Traffic:
    M, K, N, df = gemm.M, gemm.K, gemm.N, config.dataflow
    if df == "ws":          # rows = K, cols = N, time = M
        ifmap, filt, ofmap = M * K * n_col_tiles, K * N, M * N * n_row_tiles
    elif df == "os":        # rows = M, cols = N, time = K
        ifmap, filt, ofmap = M * K * n_col_tiles, K * N * n_row_tiles, M * N
    else:                   # is: rows = K, cols = M, time = N
        ifmap, filt, ofmap = M * K, K * N * n_col_tiles, M * N * n_row_tiles
    ofmap_sram = ofmap + (n_folds * (config.rows + config.cols) if df == "os" and config.timing == "scalesim" else 0)
    # double-buffered: half is active, held (as in SCALE-Sim's buffer) as 50 sets of ⌊words / 100⌋ words
    active = [50 * (int(kb * 1024) // config.word_bytes // 100) for kb in config.sram_kb]
    d_ifmap = M * K if M * K <= active[0] else ifmap
    d_filter = K * N if K * N <= active[1] else filt
    c = gemm.count
    words = c * (d_ifmap + d_filter + ofmap)
    total = c * cycles
    needed = words / max(total, 1)
    stalls = 0 if config.dram_bandwidth is None else max(0, math.ceil(words / config.dram_bandwidth) - total)
    return Traffic(c * ifmap, c * filt, c * ofmap_sram, c * d_ifmap, c * d_filter, c * ofmap, config.word_bytes,
                   needed, stalls)


@validate_params(config=_CONFIG, gemm=_GEMM)
def estimate(config: SystolicConfig, gemm: Gemm) -> SystolicResult:
    """The closed-form cycles, utilisation and memory traffic of ``gemm`` on the array.

    >>> r = estimate(SystolicConfig(), Gemm(M=200, K=9216, N=4096))   # AlexNet fc6, batch 200, 256 × 256
    >>> r.n_folds, r.cycles, round(r.utilization, 3)
    (576, 409216, 0.282)
    >>> estimate(SystolicConfig(rows=32, cols=32, timing="scalesim"), Gemm(M=256, K=256, N=256)).cycles
    22399

    Taught in chapter 09, "The roofline and the TPU".
    """
    R, C = config.rows, config.cols
    s_r, s_c, t = gemm.sizes(config.dataflow)
    rows, cols = _runs(s_r, R), _runs(s_c, C)
    n_r, n_c = _n_tiles(s_r, R), _n_tiles(s_c, C)
    n_folds = n_r * n_c
    fill = stream = drain = 0
    util_sum = 0.0
    for r, nr in rows:
        for c, nc in cols:
            _, f, s, d = _parts(config, r, c, t)
            n = nr * nc
            fill, stream, drain = fill + n * int(f), stream + n * int(s), drain + n * int(d)
            if config.timing == "scalesim":   # SCALE-Sim's per-fold cycles in its compute utilisation
                per = (2 * R + 2 * C + t - 3) if config.dataflow != "os" else (R + C + t - 2)
            else:
                per = int(f + s + d)
            util_sum += n * r * c * t / (R * C * per)
    if config.dataflow == "os":
        load = 0
    elif config.timing == "scalesim":
        load = n_folds * R
    else:
        load = _exposed_loads(config, rows, cols, t)
    one = load + fill + stream + drain - (config.timing == "scalesim")
    k = gemm.count
    traffic = _traffic(config, gemm, one, n_folds, n_r, n_c)
    return SystolicResult(config, gemm, k * one, k * load, k * fill, k * stream, k * drain, n_folds,
                          s_r * s_c / (n_folds * R * C), util_sum / n_folds, traffic)


@validate_params(config=_CONFIG, gemms=ListOf(_GEMM))
def estimate_network(config: SystolicConfig, gemms: list[Gemm]) -> NetworkResult:
    """The closed form over many GEMMs (a network's layers, run one after the other).

    Taught in chapter 09, "The roofline and the TPU".
    """
    return NetworkResult(config, tuple(estimate(config, g) for g in gemms))


@validate_params(config=_CONFIG, gemm=_GEMM)
def fold_table(config: SystolicConfig, gemm: Gemm) -> Folds:
    """Every fold of one GEMM (its first of ``count``) as numpy arrays, computed fold by fold.

    The per-fold view of :func:`estimate` (whose sums it must give); memory
    grows with the number of folds.

    Taught in chapter 09, "The roofline and the TPU".
    """
    R, C = config.rows, config.cols
    s_r, s_c, t = gemm.sizes(config.dataflow)
    n_r, n_c = _n_tiles(s_r, R), _n_tiles(s_c, C)
    r0 = np.tile(np.arange(n_r) * R, n_c)                     # column tiles outer, row tiles inner
    c0 = np.repeat(np.arange(n_c) * C, n_r)
    r1, c1 = np.minimum(r0 + R, s_r), np.minimum(c0 + C, s_c)
    load, fill, stream, drain = (np.broadcast_to(np.asarray(v, dtype=np.int64), r0.shape).copy()
                                 for v in _parts(config, r1 - r0, c1 - c0, t))
    if config.timing == "tpu" and config.dataflow != "os" and config.double_buffered:
        compute = fill + stream + drain
        load[1:] = np.maximum(0, load[1:] - compute[:-1])     # fold f + 1 loads while fold f computes
    start = np.concatenate([[0], np.cumsum(load + fill + stream + drain)[:-1]])
    return Folds(r0, r1, c0, c1, start, load, fill, stream, drain)


@validate_params(config=_CONFIG, gemms=ListOf(_GEMM), sizes=ListOf(PositiveInt()),
                 dataflows=ListOf(Options(DATAFLOWS)))
def sweep_array_sizes(config: SystolicConfig, gemms: list[Gemm], *, sizes: list[int],
                      dataflows: list[str] = DATAFLOWS) -> dict[str, list[NetworkResult]]:
    """The network on square arrays of each size, under each dataflow (the config's other fields kept).

    Returns ``{dataflow: [NetworkResult per size]}``.

    Taught in chapter 09, "The roofline and the TPU".
    """
    return {df: [estimate_network(replace(config, rows=s, cols=s, dataflow=df), gemms) for s in sizes]
            for df in dataflows}


__all__ = ["estimate", "estimate_network", "fold_table", "sweep_array_sizes"]
