"""EIE, the efficient inference engine, simulated cycle by cycle — chapter 10.

Implements Han, Liu, Mao, Pu, Pedram, Horowitz & Dally, "EIE: Efficient
Inference Engine on Compressed Deep Neural Network", ISCA 2016: a sparse
matrix × sparse vector engine that computes one fully connected layer
``b = ReLU(W a)`` straight from the Deep Compression format, skipping the
zero weights (static sparsity) and the zero activations (dynamic sparsity).
The pieces follow STYLE.md's simulator shape: a frozen, self-validating
:class:`EIEConfig`; a workload (an :class:`EIELayer` from :func:`encode` and
an activation vector); a pure :func:`simulate` returning a :class:`Result`
that carries the trace; :func:`energy` from the result's action counts.

**Storage** (:func:`encode`, the paper's §III-B and Figs. 2–3). Row ``i`` of
``W`` belongs to PE ``i mod N``; PE ``p`` stores its rows ``p, p+N, p+2N, …``
(its *local* rows ``0, 1, 2, …``) as compressed sparse columns of three
arrays: ``virtual_weight`` (``weight_bits``-bit indexes into a shared
codebook whose entry 0 is the value 0), ``relative_index`` (the number of
zero local rows skipped before each entry, counted afresh in every column;
a gap longer than ``2**index_bits − 1`` is bridged by a *filler* entry of
virtual weight 0) and ``column_pointer`` (``cols + 1`` entry offsets:
column ``j`` is entries ``column_pointer[j] : column_pointer[j+1]``). The
relative indexes and fillers follow
:func:`effdl.coding.relative_index_encode` (Deep Compression's §4 rule),
restarted in every column; float weights are clustered by :func:`effdl.sharing.kmeans_1d`. The lecture's
example (:func:`dataflow_example`, 8×4 over 4 PEs), PE 0:

>>> w, a = dataflow_example()
>>> layer = encode(w, EIEConfig(n_pes=4))
>>> layer.codebook[layer.virtual_weight[0]].tolist()     # w0,0 w0,1 w4,2 w0,3 w4,3
[1.0, -0.5, -1.5, 1.5, 0.5]
>>> layer.relative_index[0].tolist(), layer.column_pointer[0].tolist()
([0, 0, 1, 0, 0], [0, 1, 2, 3, 5])

**Cycle model** (:func:`simulate`). Per cycle:

1. every PE that has no column in progress pops the head of its activation
   queue (if any), reads the column's two pointers (one access: even/odd
   banks) and, in the same cycle, handles the column's first entry; a PE
   with a column in progress handles its next entry. One entry per cycle:
   a multiply-accumulate ``b[row] += codebook[v] × a_j`` — a filler is a
   multiply by zero and costs its cycle too. A column with no entries in
   this PE costs one cycle (the pointer read finds it empty).
2. the leading-non-zero detector (LNZD) offers the next non-zero activation
   ``(a_j, j)``, in column order, one per cycle; it is broadcast into every
   PE's queue at the end of the cycle unless some queue is still full after
   this cycle's pops (depth ``queue_depth``) — then the broadcast is
   *blocked*. A broadcast value can be popped from the next cycle on.
3. a PE with nothing to do is *stalled* in a cycle whose broadcast is
   blocked (it starves because another PE is behind) and *idle* otherwise
   (waiting for the first broadcast, or finished before the others).

After the last PE finishes, every PE applies ReLU to its rows and writes
them as the next layer's activations, one row per cycle (``ceil(rows / N)``
cycles). ``load_balance`` is the fraction of PE-cycles of the matrix–vector
phase in which the PE worked (entries and empty-column cycles).

Two implementations of the same model: ``method="step"`` walks it cycle by
cycle with explicit queues and records every PE's action per cycle (the
animation reads that trace); ``method="event"`` computes the same schedule
from the recurrence, one step per broadcast and vectorised over the PEs::

    B_k    = max(B_{k−1} + 1, max_p S[p, k − D])      broadcast cycle of activation k
    S[p,k] = max(F[p, k−1], B_k + 1)                  PE p starts it
    F[p,k] = S[p,k] + max(entries[p, j_k], 1)         and is free again

It agrees with the step path exactly (the tests check cycles, schedules and
counts) and simulates the paper's largest layers in a fraction of a second.

Simplifications, stated where the numbers are shown: the LNZD finds the
next non-zero with no scan latency; pointer reads are pipelined behind the
previous column; a weight SRAM word shared by two columns is read once per
column; arithmetic is float64, not the chip's 16-bit fixed point (the
functional check is against the decoded weights, exactly).

Longer than 600 lines because the storage format, the step and event cycle models (which must agree
cycle for cycle) and the energy and benchmark accounting share one set of definitions (chapter 10).
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from .. import sharing
from .._validate import _fail, check_int
from ..validation import (Instance, Interval, Options, PositiveInt, Seed, Unchecked, check_fields,
                          validate_params)
from . import energy as _energy

__all__ = ["EIEConfig", "EIELayer", "encode", "dataflow_example", "random_layer", "random_activations",
           "simulate", "Result", "Cycle", "PECycle", "ACTION_ENERGY_PJ", "action_energy_pj", "energy", "dense_energy",
           "BenchmarkLayer", "BENCHMARK_LAYERS", "benchmark_layer", "benchmark_row", "benchmark", "geomean_speedups",
           "eie_report"]

METHODS = ("event", "step")
POINTER_BITS = 16               # column pointers are 16-bit (paper §IV)
_STEP_LIMIT = 5_000_000         # PE-cycles the step path will walk (it keeps a Python trace)


# ------------------------------------------------------------------ config
@dataclass(frozen=True)
class EIEConfig:
    """One EIE design point; validates itself on construction.

    Parameters
    ----------
    n_pes : int >= 1, default 64
        Processing elements; row ``i`` belongs to PE ``i mod n_pes``.
    queue_depth : int >= 1, default 8
        Activation queue entries per PE (the paper chose 8 from a 1–256 sweep).
    index_bits : int in [1, 8], default 4
        Width of a relative row index; gaps over ``2**index_bits − 1`` need fillers.
    weight_bits : int in [1, 8], default 4
        Width of a virtual weight: the codebook has ``2**weight_bits`` entries,
        entry 0 being the value 0 (fillers and pruned weights).
    clock_mhz : float > 0, default 800.0
    sram_width_bits : int, default 64
        Width of one weight SRAM read; it holds ``sram_width_bits // (weight_bits
        + index_bits)`` entries (8 for the paper's 64-bit SRAM and 8-bit entries).

    Taught in chapter 10, "EIE: the efficient inference engine".
    """

    n_pes: int = 64
    queue_depth: int = 8
    index_bits: int = 4
    weight_bits: int = 4
    clock_mhz: float = 800.0
    sram_width_bits: int = 64

    def __post_init__(self):
        check_fields(self, n_pes=Interval(int, 1, 65_536), queue_depth=Interval(int, 1, 1_000_000),
                     index_bits=Interval(int, 1, 8), weight_bits=Interval(int, 1, 8),
                     clock_mhz=Interval(float, 0, None, closed="neither"))
        check_fields(self, sram_width_bits=Interval(int, self.entry_bits, 4096))

    @property
    def entry_bits(self) -> int:
        """Bits of one stored entry: a virtual weight and a relative index."""
        return self.weight_bits + self.index_bits

    @property
    def entries_per_read(self) -> int:
        return self.sram_width_bits // self.entry_bits


CONFIG = Instance(EIEConfig, "an effdl.hardware.eie.EIEConfig", optional=True)   # None: the paper's design
DENSITY = Interval(float, 0, 1, closed="right")


# ----------------------------------------------------------------- storage
@dataclass(frozen=True, eq=False)
class EIELayer:
    """A layer in EIE's storage: per PE, interleaved CSC with virtual weights and relative indexes.

    ``virtual_weight[p]``, ``relative_index[p]`` (uint8, one per stored entry,
    fillers included) and ``column_pointer[p]`` (int64, ``cols + 1``) are PE
    ``p``'s arrays; ``codebook`` (float64) maps a virtual weight to its value,
    ``codebook[0] == 0``. Build one with :func:`encode` or :func:`random_layer`.

    Behind chapter 10, "EIE: the efficient inference engine".
    """

    shape: tuple[int, int]
    n_pes: int
    index_bits: int
    weight_bits: int
    codebook: np.ndarray
    virtual_weight: tuple[np.ndarray, ...]
    relative_index: tuple[np.ndarray, ...]
    column_pointer: tuple[np.ndarray, ...]

    @property
    def rows(self) -> int:
        return self.shape[0]

    @property
    def cols(self) -> int:
        return self.shape[1]

    def pe_rows(self, pe: int) -> np.ndarray:
        """Global rows owned by PE ``pe``: ``pe, pe + N, pe + 2N, …``."""
        pe = check_int("pe", pe, min=0, max=self.n_pes - 1)
        return np.arange(pe, self.rows, self.n_pes)

    def entries_per_column(self) -> np.ndarray:
        """(n_pes, cols) stored entries (fillers included) of each PE's columns."""
        return np.stack([np.diff(ptr) for ptr in self.column_pointer])

    def entry_columns(self, pe: int) -> np.ndarray:
        """Column of each of PE ``pe``'s entries (expanded from the column pointers; read-only)."""
        pe = check_int("pe", pe, min=0, max=self.n_pes - 1)
        return self._decoded[pe][1]

    def entry_rows(self, pe: int) -> np.ndarray:
        """Global row of each of PE ``pe``'s entries, decoded from the relative indexes (read-only)."""
        pe = check_int("pe", pe, min=0, max=self.n_pes - 1)
        return self._decoded[pe][0]

    @cached_property
    def _decoded(self) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        """Per PE, (global row, column) of every entry; decoded once, then kept.

        Within a column, entry ``k`` sits at local row ``prev + relative_index + 1``
        (``prev = −1`` at the column's start): a cumulative sum restarted per column.
        """
        out = []
        for pe, (ptr, rel) in enumerate(zip(self.column_pointer, self.relative_index)):
            cols = np.repeat(np.arange(self.cols, dtype=np.int32), np.diff(ptr))
            steps = np.concatenate([[0], np.cumsum(rel.astype(np.int64) + 1)])
            rows = ((steps[1:] - steps[ptr[cols]] - 1) * self.n_pes + pe).astype(np.int32)
            rows.flags.writeable = cols.flags.writeable = False
            out.append((rows, cols))
        return tuple(out)

    @property
    def n_entries(self) -> int:
        return int(sum(v.size for v in self.virtual_weight))

    @property
    def n_fillers(self) -> int:
        return int(sum(np.count_nonzero(v == 0) for v in self.virtual_weight))

    @property
    def n_nonzeros(self) -> int:
        return self.n_entries - self.n_fillers

    def to_dense(self) -> np.ndarray:
        """The decoded weight matrix (rows, cols), float64: ``codebook[virtual_weight]`` in place."""
        w = np.zeros(self.shape)
        for p in range(self.n_pes):
            w[self.entry_rows(p), self.entry_columns(p)] += self.codebook[self.virtual_weight[p]]
        return w

    def storage_bits(self) -> dict:
        """Bits held in SRAM: entries (virtual weight + relative index), pointers, codebook."""
        entries = self.n_entries * (self.weight_bits + self.index_bits)
        pointers = self.n_pes * (self.cols + 1) * POINTER_BITS
        codebook = self.codebook.size * 16            # 16-bit fixed-point values
        return {"entries": entries, "pointers": pointers, "codebook": codebook,
                "total": entries + pointers + codebook, "dense_fp32": 32 * self.rows * self.cols}


def _interleaved_csc(group, local, vw, n_pes: int, cols: int, index_bits: int):
    """Every PE's arrays from the non-zeros sorted by ``group = pe · cols + column``, then local row.

    Deep Compression's relative-index rule (:func:`effdl.coding.relative_index_encode`:
    store the zeros skipped, bridge a gap of ``g >= 2**index_bits`` zeros with
    ``g // 2**index_bits`` fillers), applied to each PE's column separately:
    the count restarts at every column and trailing zeros cost nothing. The
    tests check it column by column against ``relative_index_encode``.
    """
    span = 1 << index_bits
    previous = np.empty_like(local)                                    # local row of the entry before
    previous[1:] = local[:-1]
    previous[np.flatnonzero(np.diff(group)) + 1] = -1                  # … unless a new column starts
    previous[:1] = -1
    gap = local - previous - 1                                         # zeros skipped within the column
    fillers = gap // span
    where = np.cumsum(fillers + 1) - 1                                 # entry index of each non-zero
    relative = np.full(int(where[-1]) + 1 if where.size else 0, span - 1, dtype=np.uint8)
    relative[where] = gap - fillers * span
    virtual = np.zeros(relative.size, dtype=np.uint8)                  # fillers: virtual weight 0
    virtual[where] = vw
    per_column = np.bincount(group, minlength=n_pes * cols) + np.bincount(group, weights=fillers,
                                                                          minlength=n_pes * cols).astype(np.int64)
    pointers = np.zeros((n_pes, cols + 1), dtype=np.int64)
    np.cumsum(per_column.reshape(n_pes, cols), axis=1, out=pointers[:, 1:])
    bounds = np.r_[0, np.cumsum(pointers[:, -1])]
    return (tuple(virtual[i:j] for i, j in zip(bounds[:-1], bounds[1:])),
            tuple(relative[i:j] for i, j in zip(bounds[:-1], bounds[1:])), tuple(pointers))


def _from_coo(shape, row, col, vw, codebook, config: EIEConfig) -> EIELayer:
    """EIELayer from non-zero triplets (``vw`` in 1 … len(codebook) − 1, no repeated position)."""
    rows, cols = shape
    n = config.n_pes
    row, col = row.astype(np.int64, copy=False), col.astype(np.int64, copy=False)
    group = row % n * cols + col                                       # (PE, column)
    local = row // n
    order = np.argsort(group * -(-rows // n) + local)                  # by PE, column, local row
    vws, rels, ptrs = _interleaved_csc(group[order], local[order], vw[order], n, cols, config.index_bits)
    return EIELayer((rows, cols), n, config.index_bits, config.weight_bits,
                    np.asarray(codebook, dtype=np.float64), vws, rels, ptrs)


def _as_matrix(weight: Any):
    """(shape, row, col, values) of a 2-D weight given as an array, tensor or scipy.sparse matrix."""
    try:
        import scipy.sparse as sp  # deferred: scipy.sparse imports slowly; only a sparse input needs it
        if sp.issparse(weight):
            coo = sp.coo_array(weight)
            if coo.ndim != 2 or coo.dtype.kind not in "iuf":
                _fail(TypeError, "weight", "a 2-D matrix of real numbers", weight)
            coo.sum_duplicates()
            keep = coo.data != 0
            return coo.shape, coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), \
                coo.data[keep].astype(np.float64)
    except ImportError:  # pragma: no cover - scipy is a dependency
        pass
    if hasattr(weight, "detach"):
        weight = weight.detach().cpu().numpy()
    arr = np.asarray(weight)
    if arr.dtype.kind not in "iuf":
        _fail(TypeError, "weight", "a 2-D array of real numbers (not bool)", weight)
    if arr.ndim != 2 or 0 in arr.shape:
        _fail(ValueError, "weight", "a non-empty 2-D matrix (rows = outputs, cols = inputs)", arr.shape)
    row, col = np.nonzero(arr)
    return arr.shape, row.astype(np.int64), col.astype(np.int64), arr[row, col].astype(np.float64)


@validate_params(weight=Unchecked("an array, tensor, scipy.sparse matrix, SharedLayer or EIELayer; checked in the body"),
                 config=CONFIG, seed=Seed())
def encode(weight: Any, config: EIEConfig | None = None, *, seed: int = 0) -> EIELayer:
    """Store a fully connected layer the way EIE does.

    Parameters
    ----------
    weight : 2-D array, torch tensor, scipy.sparse matrix, SharedLayer or EIELayer
        Shape ``(rows, cols)`` = (outputs, inputs), as ``nn.Linear.weight``;
        zeros are pruned. Real values are clustered by 1-D k-means
        (:func:`effdl.sharing.kmeans_1d`, linear initialisation) into at most
        ``2**weight_bits − 1`` centroids beside the reserved zero. An
        :class:`effdl.sharing.SharedLayer` keeps its codebook and indexes, an
        :class:`EIELayer` its codebook (re-interleaved for ``config``); either
        must fit in ``weight_bits``.
    config : EIEConfig, default EIEConfig()
        ``n_pes``, ``index_bits`` and ``weight_bits`` fix the format.
    seed : int
        Passed to the k-means (it only matters for ``init="random"``).

    Returns
    -------
    EIELayer

    Taught in chapter 10, "EIE: the efficient inference engine".
    """

    config = EIEConfig() if config is None else config
    size = 1 << config.weight_bits
    if isinstance(weight, EIELayer):                  # re-interleave: same codebook, other PEs or widths
        if weight.codebook.size > size:
            _fail(ValueError, "weight", f"an EIELayer with at most {size} codebook entries for "
                  f"weight_bits={config.weight_bits}", weight.codebook.size)
        row, col, vw = (np.concatenate(parts) for parts in zip(*[
            (weight.entry_rows(p), weight.entry_columns(p), weight.virtual_weight[p].astype(np.int64))
            for p in range(weight.n_pes)]))
        real = vw != 0                                # fillers belong to the old format
        return _from_coo(weight.shape, row[real], col[real], vw[real], weight.codebook, config)
    if isinstance(weight, sharing.SharedLayer):
        if len(weight.shape) != 2:
            _fail(ValueError, "weight", "a 2-D (fully connected) SharedLayer", weight.shape)
        codebook = weight.codebook.astype(np.float64)
        index = weight.index
        if not weight.reserves_zero:                  # dense layer: make room for EIE's zero
            codebook, index = np.concatenate([[0.0], codebook]), index + 1
        if codebook.size > size:
            _fail(ValueError, "weight", f"a SharedLayer with at most {size} codebook entries for "
                  f"weight_bits={config.weight_bits} (the zero included)", codebook.size)
        row, col = np.nonzero(index)
        return _from_coo(weight.shape, row.astype(np.int64), col.astype(np.int64),
                         index[row, col], codebook, config)
    shape, row, col, values = _as_matrix(weight)
    if not np.isfinite(values).all():
        _fail(ValueError, "weight", "finite (no NaN or inf)", weight)
    if values.size == 0:
        return _from_coo(shape, row, col, values.astype(np.int64), np.zeros(1), config)
    k = min(size - 1, np.unique(values).size)
    centroids, labels = sharing.kmeans_1d(values, k, seed=seed)
    return _from_coo(shape, row, col, labels + 1, np.concatenate([[0.0], centroids]), config)


@validate_params()
def dataflow_example() -> tuple[np.ndarray, np.ndarray]:
    """The lecture's worked example: an 8×4 layer over 4 PEs and ``a = (0, a1, 0, a3)``.

    The sparsity pattern is the lecture's (non-zeros w0,0 w0,1 w0,3 w1,2 w2,1
    w2,3 w4,2 w4,3 w5,0 w6,3 w7,1); the values, ``a1 = 2`` and ``a3 = 1`` are
    ours, picked so that one output goes negative and ReLU matters.

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    w = np.zeros((8, 4))
    for (i, j), v in {(0, 0): 1.0, (0, 1): -0.5, (0, 3): 1.5, (1, 2): 0.5, (2, 1): 1.0, (2, 3): -1.0,
                      (4, 2): -1.5, (4, 3): 0.5, (5, 0): 2.0, (6, 3): 1.0, (7, 1): -1.0}.items():
        w[i, j] = v
    return w, np.array([0.0, 2.0, 0.0, 1.0])


@validate_params(rows=PositiveInt(), cols=PositiveInt(), weight_density=DENSITY, config=CONFIG, seed=Seed())
def random_layer(rows: int, cols: int, weight_density: float, config: EIEConfig | None = None, *,
                 seed: int = 0) -> EIELayer:
    """A pruned, weight-shared layer with ``round(weight_density · rows · cols)`` non-zeros.

    Positions are uniform without replacement; values are N(0, 1) mapped to
    the nearest of 15 (``2**weight_bits − 1``) centroids that
    :func:`effdl.sharing.kmeans_1d` fits to 65,536 of them. Builds no dense
    matrix, so the paper's VGG-6 (4096 × 25088, 4.1 M non-zeros) takes about a second.

    Behind chapter 10, "EIE: the efficient inference engine".
    """

    config = EIEConfig() if config is None else config
    seed = check_int("seed", seed, min=0)
    rng = np.random.default_rng(seed)
    total = rows * cols
    nnz = max(1, round(weight_density * total))
    flat = _sample_without_replacement(rng, total, nnz)
    values = rng.standard_normal(nnz)
    k = (1 << config.weight_bits) - 1
    centroids, _ = sharing.kmeans_1d(values[:65_536], min(k, nnz))
    edges = (centroids[1:] + centroids[:-1]) / 2                 # nearest centroid = between midpoints
    vw = np.searchsorted(edges, values) + 1
    return _from_coo((rows, cols), flat // cols, flat % cols, vw, np.concatenate([[0.0], centroids]), config)


def _sample_without_replacement(rng: np.random.Generator, total: int, k: int) -> np.ndarray:
    """``k`` distinct sorted integers in [0, total): draw with replacement, drop repeats, trim at random.

    ``Generator.choice(replace=False)`` permutes all ``total`` candidates,
    seconds for VGG-6's 103 M; the expected repeats are only ``k² / 2 total``.
    """
    if 2 * k > total:
        return np.sort(rng.permutation(total)[:k])
    picked = np.empty(0, dtype=np.int64)
    while picked.size < k:
        extra = int(1.1 * (k - picked.size) + k * k / total) + 16
        picked = np.sort(np.concatenate([picked, rng.integers(0, total, extra)]))
        picked = picked[np.r_[True, picked[1:] != picked[:-1]]]          # drop repeats (sorted)
    return np.sort(rng.permutation(picked)[:k])


@validate_params(cols=PositiveInt(), act_density=DENSITY, seed=Seed())
def random_activations(cols: int, act_density: float, *, seed: int = 0) -> np.ndarray:
    """A post-ReLU activation vector: ``max(1, round(act_density · cols))`` positive entries |N(0, 1)|.

    Behind chapter 10, "EIE: the efficient inference engine".
    """
    rng = np.random.default_rng(seed)
    a = np.zeros(cols)
    where = rng.permutation(cols)[:max(1, round(act_density * cols))]
    a[where] = np.abs(rng.standard_normal(where.size)) + 1e-3       # + 1e-3: never an exact zero
    return a


# --------------------------------------------------------------- simulator
@dataclass(frozen=True)
class PECycle:
    """What one PE did in one cycle (the step path's trace).

    ``state``: ``"mac"``, ``"filler"``, ``"pointer"`` (an empty column),
    ``"idle"`` or ``"stall"``; ``column``/``entry``/``row`` are -1 and
    ``weight``/``psum`` NaN when they do not apply. ``psum`` is the row's
    accumulator after the cycle; ``queue`` the queue occupancy at the end of
    the cycle (after the broadcast).

    Behind chapter 10, "EIE: the efficient inference engine".
    """

    state: str
    column: int = -1
    entry: int = -1
    row: int = -1
    weight: float = math.nan
    psum: float = math.nan
    queue: int = 0


@dataclass(frozen=True)
class Cycle:
    """One cycle: the broadcast (column and value, or None), whether it was blocked, every PE.

    Behind chapter 10, "EIE: the efficient inference engine".
    """

    t: int
    broadcast: int | None
    value: float | None
    blocked: bool
    pes: tuple[PECycle, ...]


@dataclass(frozen=True, eq=False)
class Result:
    """What :func:`simulate` returns.

    ``output`` is ReLU(W a + bias) (rows,); ``cycles = matvec_cycles +
    relu_cycles``; ``busy``/``idle``/``stall`` (n_pes,) count the
    matrix–vector phase's cycles per PE (they sum to ``matvec_cycles``);
    ``actions`` counts what the energy model charges; ``broadcast_cycle``
    (K,) and ``start_cycle`` (K, n_pes) are the schedule of the K non-zero
    activations; ``trace`` is the per-cycle record (``method="step"`` only).
    ``layer``, ``activations`` (cols,) and ``bias`` (rows,; zeros when none
    was given) are the workload simulated, so that a view needs nothing but
    the result.

    Behind chapter 10, "EIE: the efficient inference engine".
    """

    config: EIEConfig
    method: str
    output: np.ndarray
    preactivation: np.ndarray
    matvec_cycles: int
    relu_cycles: int
    busy: np.ndarray
    idle: np.ndarray
    stall: np.ndarray
    actions: dict
    broadcast_cycle: np.ndarray
    start_cycle: np.ndarray
    trace: tuple[Cycle, ...] | None = field(default=None, repr=False)
    layer: EIELayer | None = field(default=None, repr=False)
    activations: np.ndarray | None = field(default=None, repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)

    @property
    def cycles(self) -> int:
        return self.matvec_cycles + self.relu_cycles

    @property
    def latency_us(self) -> float:
        return self.cycles / self.config.clock_mhz

    @property
    def load_balance(self) -> float:
        """Fraction of PE-cycles of the matrix–vector phase spent working (1.0: perfect)."""
        if self.matvec_cycles == 0:
            return 1.0
        return float(self.busy.sum() / (self.config.n_pes * self.matvec_cycles))

    @property
    def ideal_cycles(self) -> float:
        """The paper's "theoretical" time: the work (PE-cycles) divided evenly over the PEs."""
        return float(self.busy.sum() / self.config.n_pes)


def _check_workload(config: EIEConfig, layer: Any, activations: Any, bias: Any):
    for name in ("n_pes", "index_bits", "weight_bits"):
        if getattr(layer, name) != getattr(config, name):
            _fail(ValueError, "layer", f"encoded with the config's {name}={getattr(config, name)}",
                  f"{name}={getattr(layer, name)}")
    a = _vector("activations", activations, layer.cols, "the layer's cols")
    b = np.zeros(layer.rows) if bias is None else _vector("bias", bias, layer.rows, "the layer's rows")
    return a, b


def _vector(name: str, value: Any, n: int, what: str) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        _fail(TypeError, name, "a 1-D array of real numbers (not bool)", value)
    if arr.shape != (n,):
        _fail(ValueError, name, f"a vector of length {n} ({what})", arr.shape)
    if not np.isfinite(arr).all():
        _fail(ValueError, name, "finite (no NaN or inf)", value)
    return arr.astype(np.float64)


def _words(lo: np.ndarray, hi: np.ndarray, per_read: int) -> np.ndarray:
    """SRAM words of ``per_read`` entries touched by entries lo … hi − 1 (0 when empty)."""
    return np.where(hi > lo, (np.maximum(hi, 1) - 1) // per_read - lo // per_read + 1, 0)


@validate_params(config=Instance(EIEConfig, "an effdl.hardware.eie.EIEConfig"),
                 layer=Instance(EIELayer, "an effdl.hardware.eie.EIELayer (see encode)"),
                 activations=Unchecked("a 1-D array of the layer's cols; checked against the layer in the body"),
                 bias=Unchecked("None or a 1-D array of the layer's rows; checked against the layer in the body"),
                 method=Options(METHODS))
def simulate(config: EIEConfig, layer: EIELayer, activations: Any, *, bias: Any = None,
             method: str = "event") -> Result:
    """Run one layer ``ReLU(W a + bias)`` on EIE; see the module docstring for the model.

    Parameters
    ----------
    config : EIEConfig
    layer : EIELayer
        Encoded with the config's ``n_pes``, ``index_bits`` and ``weight_bits``.
    activations : 1-D array (cols,)
        The input vector; only its non-zeros are broadcast.
    bias : 1-D array (rows,), optional
        Loaded into the accumulators before the first MAC.
    method : {"event", "step"}
        ``"step"`` walks every cycle and keeps a trace (small layers);
        ``"event"`` computes the same schedule per broadcast (any size).

    Returns
    -------
    Result

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    a, b0 = _check_workload(config, layer, activations, bias)
    nz = np.flatnonzero(a)
    entries = layer.entries_per_column()[:, nz]                    # (N, K) entries per popped column
    cost = np.maximum(entries, 1)                                  # an empty column still costs a cycle
    if method == "step":
        if cost.sum(axis=1).max(initial=0) * config.n_pes > _STEP_LIMIT:
            _fail(ValueError, "method", f"'event' for a layer this large (the step path walks at most "
                  f"{_STEP_LIMIT:,} PE-cycles)", method)
        result = _simulate_step(config, layer, a, b0, nz)
    else:
        result = _simulate_event(config, layer, a, b0, nz, entries, cost)
    return replace(result, layer=layer, activations=a, bias=b0)


def _relu_cycles(layer: EIELayer) -> int:
    return -(-layer.rows // layer.n_pes)


def _entry_table(layer: EIELayer):
    """Per PE: global row, column and codebook value of every entry."""
    return [(layer.entry_rows(p), layer.entry_columns(p), layer.codebook[layer.virtual_weight[p]])
            for p in range(layer.n_pes)]


def _base_actions(config: EIEConfig, layer: EIELayer, n_active: int) -> dict:
    n = config.n_pes
    return {"activations_scanned": layer.cols, "broadcasts": n_active, "queue_pushes": n * n_active,
            "queue_pops": n * n_active, "pointer_reads": n * n_active, "output_writes": layer.rows}


def _simulate_event(config, layer, a, b0, nz, entries, cost) -> Result:
    n, depth = config.n_pes, config.queue_depth
    k_total = nz.size
    cost_t = np.ascontiguousarray(cost.T)                          # (K, N) cycles per activation and PE
    broadcast = np.zeros(k_total, dtype=np.int64)                  # B_k
    start = np.zeros((k_total, n), dtype=np.int64)                 # S[k, p]: PE p pops activation k
    free = np.zeros((k_total + 1, n), dtype=np.int64)              # free[k]: F[p, k−1], first free cycle
    latest = np.zeros(k_total, dtype=np.int64)                     # max_p S[k, p]
    last = -1
    for k in range(k_total):
        bk = last + 1                                              # one broadcast per cycle
        if k >= depth:
            bk = max(bk, latest[k - depth])                        # every queue has room after its pops
        np.maximum(free[k], bk + 1, out=start[k])
        np.add(start[k], cost_t[k], out=free[k + 1])
        latest[k] = start[k].max()
        broadcast[k] = last = bk
    matvec = int(free[-1].max()) if k_total else 0
    # A PE free at F ≤ B_k waits for activation k: in cycles F … B_k − 1 the broadcast is
    # blocked by a full queue elsewhere (it stalls), in cycle B_k the value is on its way (idle).
    waiting = free[:-1] <= broadcast[:, None]                      # (K, N)
    stall = np.where(waiting, broadcast[:, None] - free[:-1], 0).sum(axis=0)
    idle = waiting.sum(axis=0) + matvec - free[-1]                # + done before the slowest PE
    busy = cost.sum(axis=1).astype(np.int64)

    # functional result and action counts from the stored arrays
    pre = b0.copy()
    active = np.zeros(layer.cols, dtype=bool)
    active[nz] = True
    processed = fillers = words = 0
    for p, (rows, cols, values) in enumerate(_entry_table(layer)):
        pre += np.bincount(rows, weights=values * a[cols], minlength=layer.rows)   # b += W_p a
        used = active[cols]                                        # entries of broadcast columns
        processed += int(np.count_nonzero(used))
        fillers += int(np.count_nonzero(used & (layer.virtual_weight[p] == 0)))
        ptr = layer.column_pointer[p]
        words += int(_words(ptr[nz], ptr[nz + 1], config.entries_per_read).sum())
    actions = _base_actions(config, layer, k_total)
    actions.update(_entry_actions(processed - fillers, fillers, int(np.count_nonzero(entries == 0)), words))
    return Result(config, "event", np.maximum(pre, 0.0), pre, matvec, _relu_cycles(layer), busy, idle, stall,
                  actions, broadcast, start, None)


def _entry_actions(macs: int, fillers: int, empty: int, words: int) -> dict:
    return {"macs": macs, "filler_macs": fillers, "empty_columns": empty, "weight_sram_reads": words,
            "codebook_lookups": macs + fillers, "accumulator_accesses": 2 * (macs + fillers)}


def _simulate_step(config, layer, a, b0, nz) -> Result:
    n, depth = config.n_pes, config.queue_depth
    table = _entry_table(layer)
    k_total = nz.size
    acc = b0.copy()
    queues = [deque() for _ in range(n)]
    current = [None] * n                                           # [k, next entry, end] per PE
    broadcast = np.zeros(k_total, dtype=np.int64)
    start = np.zeros((k_total, n), dtype=np.int64)
    counts = {s: np.zeros(n, dtype=np.int64) for s in ("mac", "filler", "pointer", "idle", "stall")}
    words = 0
    trace = []
    k_next, t = 0, 0
    while k_next < k_total or any(queues) or any(c is not None for c in current):
        records: list[Any] = [None] * n
        for p in range(n):
            if current[p] is None and queues[p]:                   # pop, read the pointer pair
                k = queues[p].popleft()
                start[k, p] = t
                ptr = layer.column_pointer[p]
                lo, hi = int(ptr[nz[k]]), int(ptr[nz[k] + 1])
                words += int(_words(np.array(lo), np.array(hi), config.entries_per_read))
                if lo == hi:
                    records[p] = ("pointer", int(nz[k]), -1, -1, math.nan, math.nan)
                    continue
                current[p] = [k, lo, hi]
            if current[p] is not None:                             # one entry: b[row] += w × a_j
                k, e, hi = current[p]
                rows, cols, values = table[p]
                row, col, w = int(rows[e]), int(cols[e]), float(values[e])
                acc[row] += w * a[col]
                state = "filler" if layer.virtual_weight[p][e] == 0 else "mac"
                records[p] = (state, col, e, row, w, float(acc[row]))
                current[p] = None if e + 1 == hi else [k, e + 1, hi]
        value, column, blocked = None, None, False
        if k_next < k_total:                                       # LNZD: broadcast unless a queue is full
            if all(len(q) < depth for q in queues):
                for q in queues:
                    q.append(k_next)
                column, value = int(nz[k_next]), float(a[nz[k_next]])
                broadcast[k_next] = t
                k_next += 1
            else:
                blocked = True
        pes = []
        for p, rec in enumerate(records):
            if rec is None:
                rec = ("stall" if blocked else "idle", -1, -1, -1, math.nan, math.nan)
            counts[rec[0]][p] += 1
            pes.append(PECycle(*rec, queue=len(queues[p])))
        trace.append(Cycle(t, column, value, blocked, tuple(pes)))
        t += 1
    busy = counts["mac"] + counts["filler"] + counts["pointer"]
    actions = _base_actions(config, layer, k_total)
    actions.update(_entry_actions(int(counts["mac"].sum()), int(counts["filler"].sum()),
                                  int(counts["pointer"].sum()), words))
    return Result(config, "step", np.maximum(acc, 0.0), acc, t, _relu_cycles(layer), busy, counts["idle"],
                  counts["stall"], actions, broadcast, start, tuple(trace))


# ------------------------------------------------------------------- energy
# Per-action energies in pJ, 45 nm. Sources: Horowitz, ISSCC 2014 (his energy
# table, via effdl.hardware.energy) and Han et al., NIPS 2015, Fig. 1, which
# rounds a register-file access to 1 pJ. The table has no 16-bit integer
# multiplier: we scale the 32-bit one by (16/32)², an array multiplier's
# area and energy growing with the square of its width — an estimate, not a
# measured number. SRAM reads are the table's 8 KB array (5 pJ per 32 bits);
# EIE's 128 KB weight SRAM costs more per access, so the SRAM terms are a
# lower bound.
REGISTER_FILE_PJ = 1.0


@validate_params(config=CONFIG)
def action_energy_pj(config: EIEConfig | None = None) -> dict[str, float]:
    """Energy of one of each counted action (pJ) for ``config``'s SRAM width.

    Behind chapter 10, "EIE: the efficient inference engine".
    """
    config = EIEConfig() if config is None else config
    sram32 = _energy.operation_energy("sram_read_32b")
    mac = _energy.operation_energy("int32_mult") * (16 / 32) ** 2 + _energy.operation_energy("int16_add")
    return {
        "activations_scanned": REGISTER_FILE_PJ,      # the LNZD reads every source activation
        "queue_pushes": REGISTER_FILE_PJ,
        "queue_pops": REGISTER_FILE_PJ,
        "pointer_reads": sram32,                      # both 16-bit pointers: one 32-bit access (even/odd banks)
        "weight_sram_reads": sram32 * config.sram_width_bits / 32,
        "codebook_lookups": REGISTER_FILE_PJ,         # 16-entry table: virtual weight → 16-bit value
        "macs": mac,                                  # 16-bit multiply + 16-bit add
        "filler_macs": mac,                           # a multiply by zero costs the same
        "accumulator_accesses": REGISTER_FILE_PJ,     # read and write of the row's partial sum
        "output_writes": REGISTER_FILE_PJ,            # ReLU result into the destination register file
    }


ACTION_ENERGY_PJ = action_energy_pj()


@validate_params(result=Instance(Result, "an effdl.hardware.eie.Result"))
def energy(result: Result) -> dict:
    """Energy of one simulated layer: action counts × :func:`action_energy_pj`.

    Returns ``{"breakdown_uj": {action: µJ}, "total_uj": float, "pj_per_mac": float}``
    (``pj_per_mac`` per useful MAC). Everything stays on chip: no DRAM term.

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    per = action_energy_pj(result.config)
    breakdown = {k: result.actions.get(k, 0) * pj * 1e-6 for k, pj in per.items()}   # 1 pJ = 1e-6 µJ
    total = sum(breakdown.values())
    return {"breakdown_uj": breakdown, "total_uj": total,
            "pj_per_mac": total * 1e6 / result.actions["macs"] if result.actions["macs"] else math.nan}


@validate_params(rows=PositiveInt(), cols=PositiveInt())
def dense_energy(rows: int, cols: int) -> dict:
    """The dense baseline: every fp32 weight read from DRAM and used in one fp32 MAC.

    :func:`effdl.hardware.energy.inference_energy` with ``rows · cols`` MACs
    and weight reads (640 pJ per 32-bit DRAM read, 4.6 pJ per fp32 MAC).

    Behind chapter 10, "EIE: the efficient inference engine".
    """
    return _energy.inference_energy(rows * cols, rows * cols, arithmetic="fp32", weight_memory="dram")


# --------------------------------------------------------------- benchmarks
@dataclass(frozen=True)
class BenchmarkLayer:
    """One of the paper's nine benchmark layers (Table III) with its baseline times (Table IV, µs).

    Behind chapter 10, "EIE: the efficient inference engine".
    """

    name: str
    inputs: int
    outputs: int
    weight_density: float
    act_density: float
    cpu_dense_us: float
    cpu_sparse_us: float
    gpu_dense_us: float
    gpu_sparse_us: float


# Han et al., ISCA 2016, Table III (size, weight and activation density) and
# Table IV (batch-1 wall-clock times: Core i7-5930k with MKL, Titan X with
# cuBLAS / cuSPARSE).
BENCHMARK_LAYERS = (
    BenchmarkLayer("Alex-6", 9216, 4096, 0.09, 0.351, 7516.2, 3066.5, 541.5, 134.8),
    BenchmarkLayer("Alex-7", 4096, 4096, 0.09, 0.353, 6187.1, 1282.1, 243.0, 65.8),
    BenchmarkLayer("Alex-8", 4096, 1000, 0.25, 0.375, 1134.9, 890.5, 80.5, 54.6),
    BenchmarkLayer("VGG-6", 25088, 4096, 0.04, 0.183, 35022.8, 3774.3, 1467.8, 167.0),
    BenchmarkLayer("VGG-7", 4096, 4096, 0.04, 0.375, 5372.8, 545.1, 243.0, 39.8),
    BenchmarkLayer("VGG-8", 4096, 1000, 0.23, 0.411, 774.2, 777.3, 80.5, 48.0),
    BenchmarkLayer("NT-We", 4096, 600, 0.10, 1.0, 605.0, 261.2, 65.0, 17.7),
    BenchmarkLayer("NT-Wd", 600, 8791, 0.11, 1.0, 1361.4, 437.4, 90.1, 41.1),
    BenchmarkLayer("NT-LSTM", 1201, 2400, 0.10, 1.0, 470.5, 260.0, 51.9, 18.5),
)
_BY_NAME = {b.name: b for b in BENCHMARK_LAYERS}
BASELINES = ("cpu_dense", "gpu_dense", "cpu_sparse", "gpu_sparse")


@validate_params(name=Options(lambda: _BY_NAME), config=CONFIG, seed=Seed())
def benchmark_layer(name: str, config: EIEConfig | None = None, *, seed: int = 0):
    """A random layer and activation vector with the size and densities of the paper's layer ``name``.

    Returns ``(EIELayer, activations)``; the weight is ``(outputs, inputs)``.

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    config = EIEConfig() if config is None else config
    spec = _BY_NAME[name]
    i = list(_BY_NAME).index(name)
    layer = random_layer(spec.outputs, spec.inputs, spec.weight_density, config, seed=seed + i)
    return layer, random_activations(spec.inputs, spec.act_density, seed=seed + 1000 + i)


@validate_params(name=Options(lambda: _BY_NAME), result=Instance(Result, "an effdl.hardware.eie.Result"))
def benchmark_row(name: str, result: Result) -> dict:
    """The table row of one simulated benchmark layer: sizes, cycles, µs, energy, speedups.

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    spec = _BY_NAME[name]
    return {"name": name, "rows": spec.outputs, "cols": spec.inputs, "weight_density": spec.weight_density,
            "act_density": spec.act_density, "cycles": result.cycles, "latency_us": result.latency_us,
            "load_balance": result.load_balance, "energy_uj": energy(result)["total_uj"],
            "dense_energy_uj": dense_energy(spec.outputs, spec.inputs)["total_uj"],
            **{f"speedup_{b}": getattr(spec, f"{b}_us") / result.latency_us for b in BASELINES}}


@validate_params(config=CONFIG, seed=Seed())
def benchmark(config: EIEConfig | None = None, *, seed: int = 0) -> list[dict]:
    """Simulate the nine benchmark layers (:data:`BENCHMARK_LAYERS`); one :func:`benchmark_row` each.

    Behind chapter 10, "EIE: the efficient inference engine".
    """
    config = EIEConfig() if config is None else config
    rows = []
    for spec in BENCHMARK_LAYERS:
        layer, a = benchmark_layer(spec.name, config, seed=seed)
        rows.append(benchmark_row(spec.name, simulate(config, layer, a)))
    return rows


@validate_params(rows=Instance(list, "a list of benchmark rows"))
def geomean_speedups(rows: list[dict]) -> dict[str, float]:
    """Geometric mean over ``rows`` of the speedup against each baseline (CPU/GPU, dense/sparse).

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
    if not rows:
        _fail(ValueError, "rows", "a non-empty list of benchmark rows", rows)
    return {b: float(np.exp(np.mean(np.log([r[f"speedup_{b}"] for r in rows])))) for b in BASELINES}


@validate_params(config=CONFIG, seed=Seed())
def eie_report(config: EIEConfig | None = None, *, seed: int = 0) -> dict:
    """``effdl reproduce eie``: the nine layers at 64 PEs / 800 MHz, and the geometric-mean speedups.

    Behind chapter 10, "EIE: the efficient inference engine".
    """
    config = EIEConfig() if config is None else config
    rows = benchmark(config, seed=seed)
    keys = ("rows", "cols", "weight_density", "act_density", "cycles", "latency_us", "load_balance", "energy_uj")
    return {"n_pes": config.n_pes, "clock_mhz": config.clock_mhz, "queue_depth": config.queue_depth,
            "layers": {r["name"]: {k: round(r[k], 4) if isinstance(r[k], float) else r[k] for k in keys}
                       for r in rows},
            "geomean_speedup": {k: round(v, 2) for k, v in geomean_speedups(rows).items()}}
