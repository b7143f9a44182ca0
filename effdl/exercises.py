"""Checks for the chapters' exercises.

Each ``check_*`` takes the reader's function, calls it on fresh random
inputs and tests *properties* the right answer must have (exact counts,
invariances, agreement with ``effdl`` on inputs the reader never saw). A
failed property raises ``AssertionError`` with a hint, never the answer;
success returns a short confirmation string.
"""
from __future__ import annotations

import torch

from . import pruning


def _fail(message: str):
    raise AssertionError(message)


def check_magnitude_mask(fn) -> str:
    """Chapter 2: ``fn(weight, sparsity) -> bool mask`` pruning the smallest magnitudes."""
    gen = torch.Generator().manual_seed(2024)
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


def check_threshold_mask(fn) -> str:
    """Chapter 2: ``fn(weight, quality) -> bool mask`` keeping |w| > quality × std(w)."""
    gen = torch.Generator().manual_seed(7)
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


def check_centroid_gradient(fn) -> str:
    """Chapter 3: ``fn(grad, index, n_clusters) -> (n_clusters,)`` gradients summed per cluster."""
    import numpy as np

    from . import sharing

    rng = np.random.default_rng(33)
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


def check_twn_quantizer(fn) -> str:
    """Chapter 6: ``fn(weight) -> tensor``, TWN's ternary weights (Δ = 0.7 · E|w|, one scale α)."""
    from . import ternary

    gen = torch.Generator().manual_seed(606)
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


def check_ttq_gradients(fn) -> str:
    """Chapter 6: ``fn(latent, grad, wp, wn, t) -> (grad_latent, grad_wp, grad_wn)``, TTQ's gradient rules."""
    from . import ternary

    gen = torch.Generator().manual_seed(707)
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


def check_huffman_code(fn) -> str:
    """Chapter 4: ``fn(counts: dict symbol -> count) -> dict symbol -> '0'/'1' string``, an optimal prefix code."""
    import numpy as np

    from . import coding

    rng = np.random.default_rng(404)
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


def check_relative_index(fn) -> str:
    """Chapter 4: ``fn(weight_1d, index_bits) -> (gaps, values)`` with filler zeros, as Deep Compression."""
    import numpy as np

    from . import coding

    rng = np.random.default_rng(505)
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


def check_fc_intensity(fn) -> str:
    """Chapter 9: ``fn(n_in, n_out, batch_size, weight_bits) -> ops per weight byte`` of an FC layer
    (a multiply-add counts as 2 operations; weights fetched once per batch)."""
    import numpy as np

    from .hardware import roofline

    rng = np.random.default_rng(909)
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


def check_fold_cycles(fn) -> str:
    """Chapter 9: ``fn(rows, cols, m, k, n) -> cycles`` of an (M×K)@(K×N) GEMM on a double-buffered
    weight-stationary array with unlimited weight bandwidth (effdl.hardware.systolic's model)."""
    import numpy as np

    from .hardware import systolic

    rng = np.random.default_rng(990)
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
def check_fixed_point_frac_bits(fn) -> str:
    """Chapter 5: ``fn(x, n_bits) -> int``, the radix point of a signed ``n_bits`` word for tensor ``x``.

    The answer is the largest number of fraction bits whose format still
    covers ``[min(x), max(x)]`` (it may be negative, or exceed the word).
    """
    from . import quantization as Q

    gen = torch.Generator().manual_seed(55)
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


def check_fake_quantize_ste(fn) -> str:
    """Chapter 5: ``fn(x, scale, zero_point, qmin, qmax)`` fake quantization with a straight-through gradient.

    Forward: ``(clamp(round(x / scale) + zero_point, qmin, qmax) − zero_point) · scale``.
    Backward: 1 for values inside the representable range, 0 for values that saturate.
    """
    from . import quantization as Q

    gen = torch.Generator().manual_seed(5)
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


def check_rounding_shift(fn) -> str:
    """Chapter 5: ``fn(v, shift)``: ``round(v / 2**shift)``, ties to even, with integer operations only."""
    gen = torch.Generator().manual_seed(31)
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


def check_eie_storage(fn) -> str:
    """Chapter 10: ``fn(weight, n_pes, pe, index_bits) -> (values, relative_index, column_pointer)``,
    PE ``pe``'s interleaved CSC arrays, each stored weight's value in ``values`` (0.0 for a filler)."""
    import numpy as np

    from .hardware import eie

    rng = np.random.default_rng(10)
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


def check_eie_cycles(fn) -> str:
    """Chapter 10: ``fn(entries, queue_depth) -> int``, the cycles of EIE's matrix–vector phase
    for ``entries`` (n_pes, K): the stored entries of each PE in the column of each broadcast."""
    import numpy as np

    from .hardware import eie

    rng = np.random.default_rng(11)
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


def check_split_ranges(fn) -> str:
    """Chapter 11: ``fn(n, world_size) -> [(start, stop), …]``, the outputs each process of a
    model-parallel layer computes: contiguous, covering ``range(n)``, sizes differing by at most 1."""
    import random

    from .training.parallel import split_ranges

    rng = random.Random(11)
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


def check_staleness(fn) -> str:
    """Chapter 11: ``fn(order) -> [staleness of each update]`` for an asynchronous parameter server,
    ``order`` the worker id of each update in the order the server applied them."""
    import random

    from .training.parallel import staleness_of

    rng = random.Random(12)
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


def check_loss_scale_update(fn) -> str:
    """Chapter 12: ``fn(scale, good_steps, found_inf) -> (scale, good_steps)``, one step of dynamic loss
    scaling with torch.amp.GradScaler's defaults (×2 after 2000 good steps, ×0.5 on inf/NaN)."""
    import random

    from .training.mixed_precision import LossScaler

    rng = random.Random(13)
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


def check_underflow_fraction(fn) -> str:
    """Chapter 12: ``fn(grads, scale) -> float``, the fraction of non-zero gradient values that become
    zero when ``scale · g`` is stored in fp16."""
    from .training.mixed_precision import underflow_fraction

    gen = torch.Generator().manual_seed(14)
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
