"""Chapter 6, Binary and ternary nets: the checks of its graded exercises.

In ``chapters/06_binary_ternary.ipynb``:

- ``check_twn_quantizer`` tests the reader's ``my_twn``;
- ``check_ttq_gradients`` tests the reader's ``my_ttq_gradients``.
"""
from __future__ import annotations

import torch

from .. import ternary
from ._common import fail
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_twn_quantizer(fn, seed: int = 606) -> str:
    """Chapter 6: ``fn(weight) -> tensor``, TWN's ternary weights (Δ = 0.7 · E|w|, one scale α).

    Taught in chapter 06, "Binary and ternary nets".
    """
    gen = torch.Generator().manual_seed(seed)
    for shape in [(50, 40), (20, 1, 5, 5), (9,)]:
        w = 0.1 * torch.randn(shape, generator=gen)
        before = w.clone()
        q = fn(w)
        if not torch.equal(w, before):
            fail("do not change the weight tensor in place: return a new tensor.")
        if not isinstance(q, torch.Tensor) or q.shape != w.shape:
            fail(f"return a tensor of the weight's shape {tuple(w.shape)}.")
        values = torch.unique(q)
        if len(values) > 3 or not torch.allclose(values.abs().max() * torch.sign(q), q):
            fail("a ternary tensor takes at most three values, −α, 0 and +α, with one α for the layer.")
        delta = 0.7 * w.abs().mean()
        if not torch.equal(q == 0, w.abs() <= delta):
            fail("the zeros must be exactly the weights with |w| ≤ Δ = 0.7 · mean |w| of the layer.")
        if not torch.equal(torch.sign(q[q != 0]), torch.sign(w[q != 0])):
            fail("a weight kept non-zero keeps its sign.")
        alpha = float(values.abs().max())
        codes = torch.sign(q)
        err = lambda a: float(((w - a * codes) ** 2).sum())  # noqa: E731
        if err(alpha) > min(err(alpha * 0.98), err(alpha * 1.02)):
            fail("α is not the best scale for your codes: the least-squares α is the mean of the kept |w|.")
        if not torch.allclose(fn(3 * w), 3 * q, rtol=1e-5, atol=1e-7):
            fail("scaling the weights by 3 must scale the ternary weights by 3 (Δ and α are relative).")
        if not torch.allclose(q, ternary.twn_weights(w), rtol=1e-5, atol=1e-7):
            fail("on fresh random weights your result differs from effdl.ternary.twn_weights.")
    return "TWN quantizer: all checks passed"


@validate_params(fn=Callable(), seed=Seed())
def check_ttq_gradients(fn, seed: int = 707) -> str:
    """Chapter 6: ``fn(latent, grad, wp, wn, t) -> (grad_latent, grad_wp, grad_wn)``, TTQ's gradient rules.

    Taught in chapter 06, "Binary and ternary nets".
    """
    gen = torch.Generator().manual_seed(seed)
    for shape, t in [((30, 20), 0.05), ((8, 4, 3, 3), 0.05), ((200,), 0.3)]:
        latent = torch.randn(shape, generator=gen)
        grad = torch.randn(shape, generator=gen)
        wp, wn = 0.5 + torch.rand((), generator=gen).item(), 0.5 + torch.rand((), generator=gen).item()
        out = fn(latent.clone(), grad.clone(), wp, wn, t)
        if not isinstance(out, tuple) or len(out) != 3:
            fail("return three things: the latent weights' gradient, ∂L/∂Wp and ∂L/∂Wn.")
        g_latent, g_wp, g_wn = torch.as_tensor(out[0], dtype=torch.float32), float(out[1]), float(out[2])
        if g_latent.shape != latent.shape:
            fail(f"the latent gradient has the weight's shape {tuple(latent.shape)}.")
        delta = t * latent.abs().max()
        zero = latent.abs() <= delta
        if not torch.allclose(g_latent[zero], grad[zero]):
            fail("where the ternary weight is 0 (|w̃| ≤ Δ) the gradient passes unchanged (factor 1).")
        # autograd through the ternary weights gives the scales' gradients: compare on this loss
        wp_t, wn_t = torch.tensor(wp, requires_grad=True), torch.tensor(wn, requires_grad=True)
        (grad * ternary.ttq_weights(latent, wp_t, wn_t, t)).sum().backward()
        if abs(g_wp - wp_t.grad.item()) > 1e-3 * (1 + abs(wp_t.grad.item())):
            fail("∂L/∂Wp: add up ∂L/∂w_t over the weights above +Δ.")
        if abs(g_wn - wn_t.grad.item()) > 1e-3 * (1 + abs(wn_t.grad.item())):
            if abs(g_wn + wn_t.grad.item()) <= 1e-3 * (1 + abs(wn_t.grad.item())):
                fail("∂L/∂Wn has the wrong sign: those weights equal −Wn, so the chain rule brings a minus.")
            fail("∂L/∂Wn: add up ∂L/∂w_t over the weights below −Δ (mind the sign).")
        reference = ternary.ttq_gradients(latent, grad, wp, wn, t)[0]
        if not torch.allclose(g_latent, reference, rtol=1e-5, atol=1e-6):
            fail("the latent gradient is scaled: Wp · g above +Δ, 1 · g in between, Wn · g below −Δ.")
    return "TTQ gradients: all checks passed"
