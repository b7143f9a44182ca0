"""The step-by-step simulator: every PE's registers, cycle by cycle, for the three dataflows.

Part of :mod:`effdl.hardware.systolic` (chapter 9). Slow (a Python loop over
cycles, numpy over PEs) and exact: it multiplies real numbers, so its
product is checked against numpy, and it *observes* each fold's cycles
(the first and last results, the last multiply-add) rather than computing
them, so the tests can hold the closed form to it, cycle for cycle.

- **ws** — the weight tile W[k0:k1, n0:n1] is shifted in from the top
  (last row first), PE (i, j) keeps W[k0 + i, n0 + j]; row i receives
  X[m, k0 + i] at cycle m + i (the skew) and passes it right; partial sums
  flow down and leave the bottom of column j at cycle m + (R − 1) + j.
- **is** — the same machine with the roles swapped: the input tile
  PE (i, j) = X[m0 + j, k0 + i] stays, the columns of W stream through
  (T = N), Y[m0 + j, n] leaves the bottom of column j.
- **os** — PE (i, j) owns Y[m0 + i, n0 + j]: X[m0 + i, k] enters row i at
  cycle k + i and moves right, W[k, n0 + j] enters column j at cycle k + j
  and moves down; they meet at PE (i, j) at cycle k + i + j.

Under ``timing="scalesim"`` a partial fold is padded to the whole array
(empty PEs still pass data on, and the fold lasts until the padding has
drained) and the stationary tile loads for R cycles; the reported total
is the index of the last cycle.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from effdl.hardware.systolic.config import Gemm, SystolicConfig, random_gemm
from effdl.hardware.systolic.model import _traffic
from effdl.hardware.systolic.result import Folds, SystolicResult
from effdl.validation import Bool, Instance, Seed, Unchecked, validate_params

_KEYS = ("h", "h_tag", "v", "v_tag", "stay", "shadow", "mac", "feed", "feed_tag", "phase", "fold")


@dataclass(frozen=True)
class Trace:
    """Every PE's registers after each cycle of :func:`simulate` (T cycles, R × C PEs).

    ``h``/``h_tag``: the register moving right and the index it carries (ws:
    activation X[m, ·] and m; is: weight W[·, n] and n; os: X[m, k] and k;
    −1: empty); ``v``/``v_tag``: the register moving down (ws, is: partial
    sum; os: weight W[k, n] and k); ``stay``: the stationary register (ws:
    weight, is: input, os: accumulator); ``shadow``: the tile being shifted
    in; ``mac``: True where a PE did a useful multiply-add; ``feed`` /
    ``feed_tag`` (T, R): what entered each row from the left; ``phase``
    (T,): "load" or "compute"; ``fold`` (T,); ``outputs``: (cycle, m, n,
    value) for each (partial) result leaving the array, in order.

    Behind chapter 09, "The roofline and the TPU".
    """

    h: np.ndarray
    h_tag: np.ndarray
    v: np.ndarray
    v_tag: np.ndarray
    stay: np.ndarray
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


class _Loader:
    """The shift chain of the stationary tile: rows enter shadow registers from the top, last row first."""

    def __init__(self, config: SystolicConfig, tile: np.ndarray, rows: int):
        # rows: shifts needed (tile rows under "tpu", the whole array under "scalesim")
        self.tile, self.rows, self.cols = tile, rows, config.cols
        self.bw = (None if config.weight_bandwidth is None
                   else Fraction(config.weight_bandwidth).limit_denominator(10 ** 6))
        self.row_bytes = Fraction(tile.shape[1] * config.n_bits_weight, 8)
        self.credit, self.fed = Fraction(0), 0
        self.shadow = np.zeros((config.rows, config.cols), dtype=tile.dtype)

    @property
    def done(self) -> bool:
        return self.fed == self.rows

    def step(self) -> None:
        """One cycle: bytes arrive; with a whole row there, the shadow rows shift down and it enters row 0."""
        if self.done:
            return
        if self.bw is not None:
            self.credit += self.bw
            if self.credit < self.row_bytes:
                return
            self.credit -= self.row_bytes
        k = self.rows - 1 - self.fed                          # last row first: after the shifts row i holds tile[i]
        self.shadow[1:] = self.shadow[:-1].copy()
        self.shadow[0] = 0
        if k < self.tile.shape[0]:
            self.shadow[0, :self.tile.shape[1]] = self.tile[k]
        self.fed += 1


class _Recorder:
    def __init__(self, on: bool):
        self.on, self.rec, self.outputs = on, {k: [] for k in _KEYS}, []

    def __call__(self, **regs):
        if self.on:
            for key, val in regs.items():
                self.rec[key].append(val.copy() if isinstance(val, np.ndarray) else val)

    def trace(self) -> Trace | None:
        if not self.on:
            return None
        return Trace(*(np.array(self.rec[k]) for k in _KEYS), outputs=tuple(self.outputs))


def _stationary_run(config: SystolicConfig, a: np.ndarray, b: np.ndarray, out_index, rec: _Recorder):
    """ws on (stream a (T × S_r), stationary b (S_r × S_c)); is runs it on (Wᵀ, Xᵀ).

    ``out_index(t, j)`` maps stream vector t and column j to Y's (m, n).
    Returns (Z = a @ b as assembled from the bottom row, per-fold observations).
    """
    R, C, scalesim = config.rows, config.cols, config.timing == "scalesim"
    T, S_r = a.shape
    S_c = b.shape[1]
    plan = [(r0, min(r0 + R, S_r), c0, min(c0 + C, S_c)) for c0 in range(0, S_c, C) for r0 in range(0, S_r, R)]
    dtype = a.dtype
    z = np.zeros((T, S_c), dtype)
    h, h_tag = np.zeros((R, C), dtype), np.full((R, C), -1)
    v, v_tag = np.zeros((R, C), dtype), np.full((R, C), -1)
    col, rows = np.arange(C), np.arange(R)
    idle_mac, idle_feed, idle_tag, zeros = np.zeros((R, C), bool), np.zeros(R, dtype), np.full(R, -1), np.zeros((R, C), dtype)
    obs, cycle = [], 0

    def loader_for(p):
        return _Loader(config, b[p[0]:p[1], p[2]:p[3]], R if scalesim else p[1] - p[0])

    loader = loader_for(plan[0])
    for f, (r0, r1, c0, c1) in enumerate(plan):
        r_f, c_f = r1 - r0, c1 - c0
        start = cycle
        while not loader.done:                             # exposed load: the array waits for its tile
            loader.step()
            rec(h=h, h_tag=h_tag, v=v, v_tag=v_tag, stay=zeros if f == 0 else stay, shadow=loader.shadow,
                mac=idle_mac, feed=idle_feed, feed_tag=idle_tag, phase="load", fold=f)
            cycle += 1
        load = cycle - start
        stay = loader.shadow.copy()                        # swap shadow → active
        used = np.zeros((R, C), bool)
        used[:r_f, :c_f] = True
        nxt = loader_for(plan[f + 1]) if f + 1 < len(plan) else None
        background = nxt is not None and config.double_buffered and not scalesim
        watch = C if scalesim else c_f                     # the fold ends when these columns have drained
        t, first_out, col0_outs, last_col0, last_out, collected = 0, None, 0, None, None, 0
        while collected < T * watch:
            if background:
                nxt.step()                                 # the next tile shifts in behind the scenes
            m_idx = t - rows                               # the skew: row i gets a[t − i, r0 + i] at cycle t
            ok = (m_idx >= 0) & (m_idx < T) & (rows < r_f)
            feed = np.zeros(R, dtype)
            feed[ok] = a[m_idx[ok], r0 + np.flatnonzero(ok)]
            feed_tag = np.where(ok, m_idx, -1)
            a_in = np.concatenate([feed[:, None], h[:, :-1]], axis=1)      # every PE at once: from the left …
            a_tag = np.concatenate([feed_tag[:, None], h_tag[:, :-1]], axis=1)
            p_in = np.concatenate([np.zeros((1, C), dtype), v[:-1]], axis=0)  # … and from above
            p_tag = np.concatenate([a_tag[:1], v_tag[:-1]], axis=0)
            live = a_tag >= 0
            assert np.all(~live | (p_tag == a_tag)), "an input met another vector's partial sum"
            h, h_tag = a_in, a_tag
            v, v_tag = p_in + np.where(live, a_in * stay, 0), p_tag
            mac = live & used
            leaving = np.flatnonzero((v_tag[R - 1] >= 0) & (col < watch))
            if leaving.size:
                real = leaving[leaving < c_f]
                z[v_tag[R - 1, real], c0 + real] += v[R - 1, real]         # into the accumulators
                if rec.on:
                    rec.outputs.extend((cycle, *out_index(int(m), c0 + int(j)), v[R - 1, j].item())
                                       for m, j in zip(v_tag[R - 1, real], real))
                collected += leaving.size
                last_out = t
                if first_out is None:
                    first_out = t
                if leaving[0] == 0:
                    col0_outs, last_col0 = col0_outs + 1, t
            rec(h=h, h_tag=h_tag, v=v, v_tag=v_tag, stay=stay, shadow=nxt.shadow if background else zeros,
                mac=mac, feed=feed, feed_tag=feed_tag, phase="compute", fold=f)
            t += 1
            cycle += 1
        h[:], h_tag[:], v[:], v_tag[:] = 0, -1, 0, -1     # the fold is over: empty the pipeline registers
        obs.append((r0, r1, c0, c1, start, load, first_out, col0_outs, last_out - last_col0))
        assert first_out + col0_outs + (last_out - last_col0) == t
        loader = nxt
    return z, obs


def _os_run(config: SystolicConfig, x: np.ndarray, w: np.ndarray, rec: _Recorder):
    """Output-stationary: PE (i, j) accumulates Y[m0 + i, n0 + j] as X flows right and W flows down."""
    R, C, scalesim = config.rows, config.cols, config.timing == "scalesim"
    (M, K), N = x.shape, w.shape[1]
    plan = [(m0, min(m0 + R, M), n0, min(n0 + C, N)) for n0 in range(0, N, C) for m0 in range(0, M, R)]
    dtype = x.dtype
    y = np.zeros((M, N), dtype)
    rows, cols = np.arange(R), np.arange(C)
    obs, cycle = [], 0
    for f, (m0, m1, n0, n1) in enumerate(plan):
        m_f, n_f = m1 - m0, n1 - n0
        r_run, c_run = (R, C) if scalesim else (m_f, n_f)   # scalesim pads the tile to the whole array
        h, h_tag = np.zeros((R, C), dtype), np.full((R, C), -1)
        v, v_tag = np.zeros((R, C), dtype), np.full((R, C), -1)
        acc = np.zeros((R, C), dtype)
        used = np.zeros((R, C), bool)
        used[:m_f, :n_f] = True
        start, t, first_last_row, done = cycle, 0, None, False
        while not done:
            k_row = t - rows                                 # X[m0 + i, k] enters row i at cycle k + i
            ok_r = (k_row >= 0) & (k_row < K) & (rows < r_run)
            feed = np.zeros(R, dtype)
            real_r = ok_r & (rows < m_f)
            feed[real_r] = x[m0 + rows[real_r], k_row[real_r]]
            feed_tag = np.where(ok_r, k_row, -1)
            k_col = t - cols                                 # W[k, n0 + j] enters column j at cycle k + j
            ok_c = (k_col >= 0) & (k_col < K) & (cols < c_run)
            top = np.zeros(C, dtype)
            real_c = ok_c & (cols < n_f)
            top[real_c] = w[k_col[real_c], n0 + cols[real_c]]
            h = np.concatenate([feed[:, None], h[:, :-1]], axis=1)
            h_tag = np.concatenate([feed_tag[:, None], h_tag[:, :-1]], axis=1)
            v = np.concatenate([top[None, :], v[:-1]], axis=0)
            v_tag = np.concatenate([np.where(ok_c, k_col, -1)[None, :], v_tag[:-1]], axis=0)
            meet = (h_tag >= 0) & (v_tag >= 0)
            assert np.all(~meet | (h_tag == v_tag)), "an input met the wrong weight"
            acc = acc + np.where(meet, h * v, 0)
            mac = meet & used
            if first_last_row is None and meet[r_run - 1, 0]:
                first_last_row = t                          # the skew has filled the rows
            done = bool(meet[r_run - 1, c_run - 1] and v_tag[r_run - 1, c_run - 1] == K - 1)
            if done:                                         # outputs leave (overlapped with the next fold)
                y[m0:m1, n0:n1] = acc[:m_f, :n_f]
                if rec.on:
                    rec.outputs.extend((cycle, m0 + i, n0 + j, acc[i, j].item()) for i in range(m_f)
                                       for j in range(n_f))
            rec(h=h, h_tag=h_tag, v=v, v_tag=v_tag, stay=acc, shadow=np.zeros((R, C), dtype), mac=mac, feed=feed,
                feed_tag=feed_tag, phase="compute", fold=f)
            t += 1
            cycle += 1
        obs.append((m0, m1, n0, n1, start, 0, first_last_row, K, t - first_last_row - K))
    return y, obs


def _check_operand(name: str, a, shape: tuple[int, int]) -> np.ndarray:
    if isinstance(a, (bool, str)):
        raise TypeError(f"simulate: {name} must be a 2-D numeric array; got {a!r}.")
    arr = np.asarray(a)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"simulate: {name} must be a 2-D numeric array (integer or float); got dtype {arr.dtype}.")
    if arr.shape != shape:
        raise ValueError(f"simulate: {name} must have the gemm's shape {shape}; got shape {arr.shape}.")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"simulate: {name} must be finite; got {a!r}.")
    return arr


@validate_params(config=Instance(SystolicConfig, "a SystolicConfig"), gemm=Instance(Gemm, "a Gemm"),
                 x=Unchecked("None or an (M, K) array, checked against gemm"),
                 w=Unchecked("None or a (K, N) array, checked against gemm"), seed=Seed(), record_trace=Bool())
def simulate(config: SystolicConfig, gemm: Gemm, *, x=None, w=None, seed: int = 0,
             record_trace: bool = False) -> SystolicResult:
    """Run ``x @ w`` (one of ``gemm``'s ``count`` products) on the array cycle by cycle.

    ``x`` (M, K) and ``w`` (K, N) default to :func:`random_gemm` integers
    drawn with ``seed``. ``record_trace`` keeps every cycle's registers in
    ``result.trace`` (small arrays only: memory grows as cycles × R × C).
    The result's ``output`` is the product assembled from what left the
    array; its cycle counts are those observed. Only for ``count`` = 1.

    >>> r = simulate(SystolicConfig(rows=4, cols=4), Gemm(M=3, K=2, N=3),
    ...              x=np.arange(6).reshape(3, 2), w=np.ones((2, 3), dtype=int))
    >>> r.output.tolist(), r.cycles
    ([[1, 1, 1], [5, 5, 5], [9, 9, 9]], 10)

    Taught in chapter 09, "The roofline and the TPU".
    """
    if gemm.count != 1:
        raise ValueError(f"simulate: gemm.count must be 1 (simulate one product); got {gemm.count}.")
    if x is None or w is None:
        rx, rw = random_gemm(gemm, seed=seed)
        x, w = (rx if x is None else x), (rw if w is None else w)
    x = _check_operand("x", x, (gemm.M, gemm.K))
    w = _check_operand("w", w, (gemm.K, gemm.N))
    dtype = np.result_type(x.dtype, w.dtype, np.int64 if x.dtype.kind in "iu" and w.dtype.kind in "iu" else np.float64)
    x, w = x.astype(dtype), w.astype(dtype)
    rec = _Recorder(record_trace)
    if config.dataflow == "ws":
        y, obs = _stationary_run(config, x, w, lambda t, j: (t, j), rec)
    elif config.dataflow == "is":
        yt, obs = _stationary_run(config, np.ascontiguousarray(w.T), np.ascontiguousarray(x.T), lambda t, j: (j, t),
                                  rec)
        y = yt.T
    else:
        y, obs = _os_run(config, x, w, rec)
    cols = [np.array(c, dtype=np.int64) for c in zip(*obs)]
    folds = Folds(*cols)
    busy = int(folds.cycles.sum())
    cycles = busy - (config.timing == "scalesim")
    R, C = config.rows, config.cols
    used = (folds.r1 - folds.r0) * (folds.c1 - folds.c0)
    t_len = gemm.sizes(config.dataflow)[2]
    if config.timing == "scalesim":
        per = (2 * R + 2 * C + t_len - 3) if config.dataflow != "os" else (R + C + t_len - 2)
    else:
        per = folds.fill + folds.stream + folds.drain
    compute_util = float(np.mean(used * t_len / (R * C * per)))
    n_r, n_c = len(np.unique(folds.r0)), len(np.unique(folds.c0))
    traffic = _traffic(config, gemm, cycles, len(folds), n_r, n_c)
    return SystolicResult(config, gemm, cycles, int(folds.load.sum()), int(folds.fill.sum()), int(folds.stream.sum()),
                          int(folds.drain.sum()), len(folds), float(used.sum() / (len(folds) * R * C)), compute_util,
                          traffic, folds, y, rec.trace(), x, w)


__all__ = ["Trace", "simulate"]
