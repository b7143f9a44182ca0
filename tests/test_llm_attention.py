"""effdl.llm.attention (chapter 18): FlashAttention's tiled online-softmax attention against torch's
scaled_dot_product_attention, and its counted HBM traffic against the closed forms (Dao et al. 2022)."""
import math

import pytest
import torch
import torch.nn.functional as F

from effdl.llm import attention as A


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("n,d,sram", [(1, 8, 64), (7, 8, 64), (33, 16, 300), (64, 16, 4096), (100, 32, 1000)])
def test_flash_attention_equals_sdpa(causal, n, d, sram):
    g = torch.Generator().manual_seed(n)
    q, k, v = (torch.randn(2, 3, n, d, generator=g, dtype=torch.float64) for _ in range(3))
    out, _ = A.flash_attention(q, k, v, causal=causal, sram=sram)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    assert torch.allclose(out, ref, atol=1e-12)
    assert torch.allclose(A.standard_attention(q, k, v, causal=causal), ref, atol=1e-12)


def test_flash_attention_with_more_keys_than_queries_and_large_scores():
    g = torch.Generator().manual_seed(0)
    q, k, v = torch.randn(5, 8, generator=g) * 30, torch.randn(19, 8, generator=g) * 30, torch.randn(19, 8)
    out, _ = A.flash_attention(q, k, v, sram=100)          # scores ~ 300: the running max keeps exp finite
    assert torch.isfinite(out).all()
    assert torch.allclose(out, F.scaled_dot_product_attention(q[None], k[None], v[None])[0], atol=1e-5)


@pytest.mark.parametrize("n,d,sram", [(5, 8, 64), (37, 16, 300), (64, 16, 4096), (128, 32, 1000)])
def test_counted_io_equals_the_closed_form(n, d, sram):
    q = torch.randn(n, d)
    _, io = A.flash_attention(q, q, q, sram=sram)
    assert io == A.flash_attention_io(n, d, sram)


def test_causal_skips_blocks_above_the_diagonal():
    q = torch.randn(128, 16)
    _, dense = A.flash_attention(q, q, q, sram=512)
    _, causal = A.flash_attention(q, q, q, causal=True, sram=512)
    assert causal["total"] < 0.75 * dense["total"]


def test_block_sizes_follow_algorithm_1():
    assert A.block_sizes(64, 25_000) == (64, math.ceil(25_000 / 256))
    assert A.block_sizes(128, 1024) == (2, 2)


def test_theorem_2_scaling():
    # standard: Θ(N d + N²); flash: Θ(N² d² / M) — quadrupling M divides flash's N² term by ~4
    d, n = 64, 8192
    std = A.standard_attention_io(n, d)
    assert std["total"] == 4 * n * d + 4 * n * n
    small, big = A.flash_attention_io(n, d, 25_000)["total"], A.flash_attention_io(n, d, 100_000)["total"]
    assert 3.0 < small / big < 4.2
    assert 0.8 < big / (12 * n * n * d * d / 100_000) < 1.3
    assert A.io_ratio(n, d, 100_000) > 5


def test_bad_shapes_are_refused():
    q = torch.randn(4, 8)
    with pytest.raises(ValueError, match="k and v"):
        A.flash_attention(q, torch.randn(4, 6), torch.randn(4, 6))
    with pytest.raises(ValueError, match="sram"):
        A.flash_attention(q, q, q, sram=1)
    with pytest.raises(ValueError, match="n"):
        A.standard_attention_io(0, 8)
