"""Chapter 10, EIE: the efficient inference engine: the checks of its graded exercises.

In ``chapters/10_eie.ipynb``:

- ``check_eie_storage`` tests the reader's ``my_pe_arrays``;
- ``check_eie_cycles`` tests the reader's ``my_cycles``.
"""
from __future__ import annotations

import numpy as np

from ..hardware import eie
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_eie_storage(fn, seed: int = 10) -> str:
    """Chapter 10: ``fn(weight, n_pes, pe, index_bits) -> (values, relative_index, column_pointer)``,
    PE ``pe``'s interleaved CSC arrays, each stored weight's value in ``values`` (0.0 for a filler).

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
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
            fail("return a tuple (values, relative_index, column_pointer).")
        values, rel, ptr = (np.asarray(g) for g in got)
        if ptr.shape != (weight.shape[1] + 1,):
            fail(f"column_pointer has one entry per column plus one: {weight.shape[1] + 1} for "
                  f"{weight.shape[1]} columns; you return {ptr.size}.")
        if not np.array_equal(ptr, want[2]):
            fail(f"column pointers differ for a {weight.shape} matrix, {n_pes} PEs, PE {pe}: PE {pe} owns rows "
                  f"{pe}, {pe} + {n_pes}, …; count each column's entries, fillers included.")
        if not np.array_equal(rel, want[1]):
            fail(f"relative indexes differ ({n_pes} PEs, PE {pe}, {index_bits}-bit index): count the zeros "
                  f"skipped since the previous entry *of the same column* (or the column's start), and bridge "
                  f"more than {2 ** index_bits - 1} zeros with a filler.")
        if not np.allclose(values, want[0]):
            fail("the stored values differ: one per entry, in column order, 0.0 for a filler.")
    return "EIE storage: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_eie_cycles(fn, seed: int = 11) -> str:
    """Chapter 10: ``fn(entries, queue_depth) -> int``, the cycles of EIE's matrix–vector phase
    for ``entries`` (n_pes, K): the stored entries of each PE in the column of each broadcast.

    Taught in chapter 10, "EIE: the efficient inference engine".
    """
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
            fail("with queues that never fill, each PE works from cycle 1 without a gap: the answer is 1 + the "
                  "largest per-PE sum of max(entries, 1) (an empty column still costs its pointer-read cycle).")
        fail(f"{n_pes} PEs, queue depth {depth}, {entries.shape[1]} broadcasts: expected {want} cycles, got {got}. "
              "Broadcast k happens at the earliest cycle after broadcast k − 1 at which every PE has popped "
              "activation k − depth; a PE pops k from the cycle after its broadcast, once it is free.")
    return "EIE cycle count: all checks passed"
