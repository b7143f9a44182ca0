"""Chapter 18, Where the time goes in a transformer: the checks of its graded exercises.

In ``chapters/18_transformer_costs.ipynb``:

- ``check_kv_cache_bytes`` tests the reader's ``my_kv_cache_bytes``;
- ``check_online_softmax`` tests the reader's ``my_online_softmax``.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch

from ._common import fail
from ..transformer import TransformerSpec
from ..validation import Callable, Seed, validate_params


@validate_params(fn=Callable(), seed=Seed())
def check_kv_cache_bytes(fn, seed: int = 0) -> str:
    """Chapter 18: ``fn(spec, context, batch_size) -> int``, the bytes of the KV cache of ``batch_size``
    sequences of ``context`` tokens for a ``TransformerSpec`` (grouped-query attention included).

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    rng = np.random.default_rng(seed)
    for i in range(15):
        head_dim = int(rng.choice([32, 64, 128]))
        n_kv_head = int(rng.choice([1, 2, 4, 8]))
        n_head = n_kv_head * int(rng.choice([1, 1, 2, 4, 8]))       # multi-head or grouped-query
        spec = TransformerSpec(f"random {i}", n_layer=int(rng.integers(1, 81)), d_model=n_head * head_dim,
                               n_head=n_head, n_kv_head=n_kv_head, d_ff=4 * n_head * head_dim, vocab=1000,
                               context=8192, bytes_per_value=int(rng.choice([1, 2, 4])))
        context, batch = int(rng.integers(1, 8193)), int(rng.integers(1, 65))
        got = fn(spec, context, batch)
        if not isinstance(got, numbers.Integral) or isinstance(got, bool):
            fail(f"return the number of bytes as an int; got {type(got).__name__}.")
        want = 2 * spec.n_layer * spec.n_kv_head * spec.head_dim * spec.bytes_per_value * context * batch
        if got != want:
            hint = ("the cache stores n_kv_head heads, not n_head" if got * spec.n_kv_head == want * spec.n_head
                    else "each layer caches a key and a value per token and KV head, head_dim values each, "
                         "bytes_per_value bytes each")
            fail(f"for n_layer={spec.n_layer}, n_head={spec.n_head}, n_kv_head={spec.n_kv_head}, "
                 f"head_dim={spec.head_dim}, bytes_per_value={spec.bytes_per_value}, context={context}, "
                 f"batch_size={batch} you return {got}: {hint}.")
    return "KV-cache bytes: correct on 15 random configurations"


@validate_params(fn=Callable(), seed=Seed())
def check_online_softmax(fn, seed: int = 0) -> str:
    """Chapter 18: ``fn(q, k, v, block) -> out``, ``softmax(k·q/√d)ᵀ·v`` for one query ``q`` (d,) over
    keys ``k`` and values ``v`` (N, d), reading the keys ``block`` rows at a time with a running maximum
    and sum (never all N scores at once). float32 tensors in, a (d,) tensor out.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    for scale in (1.0, 1.0, 60.0):                         # 60: scores in the hundreds, exp() overflows in fp32
        for _ in range(4):
            n, d, block = int(rng.integers(1, 70)), int(rng.choice([4, 8, 16])), int(rng.integers(1, 17))
            q = torch.randn(d, generator=gen) * scale
            k, v = torch.randn(n, d, generator=gen), torch.randn(n, d, generator=gen)
            want = torch.softmax(k.double() @ q.double() / d ** 0.5, dim=0) @ v.double()
            got = fn(q.clone(), k.clone(), v.clone(), block)
            if not isinstance(got, torch.Tensor) or got.shape != (d,):
                fail(f"return a tensor of shape ({d},); got {getattr(got, 'shape', type(got).__name__)}.")
            if not torch.isfinite(got).all():
                fail("your output has inf or NaN when the scores are large: subtract the running maximum "
                     "before exp(), and rescale the sums kept so far when the maximum grows.")
            if not torch.allclose(got.double(), want, atol=1e-4, rtol=1e-4):
                fail(f"for N={n}, d={d}, block={block} your output differs from softmax(k·q/√d)·v: when the "
                     "maximum grows from m to m', multiply the running sum and the running output by "
                     "exp(m − m'); divide by the sum only at the end. Is the last, partial block included?")
    return "online softmax: correct on 12 random cases, large scores included"
