"""effdl.transformer (chapter 18): TinyGPT, its KV cache, and the cost formulas of TransformerSpec.

Oracles: torch's own parameter count of the model built from a spec, torch's
FLOP counter (``torch.utils.flop_counter``) on a decode step and a prefill,
and the published parameter counts of GPT-2 small (124 M) and Llama-2-7B
(6.74 B, Touvron et al. 2023, Table 1 reports "7B"; the released
checkpoint has 6,738,415,616).
"""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from effdl import transformer as T
from effdl.llm.attention import standard_attention

SMALL = T.TransformerSpec("test", n_layer=2, d_model=32, n_head=4, n_kv_head=4, d_ff=64, vocab=128, context=48)


def test_formula_counts_the_parameters_torch_counts():
    for spec in (SMALL, T.LM_SPEC, T.DRAFT_SPEC,
                 T.TransformerSpec("gqa", n_layer=3, d_model=48, n_head=6, n_kv_head=2, d_ff=100, vocab=64,
                                   context=16, bias=False)):
        assert spec.params() == T.count_params(T.TinyGPT(spec))


def test_published_parameter_counts():
    assert T.PUBLISHED["gpt2"].params() == 124_439_808                       # "124M"
    assert round(T.PUBLISHED["llama-2-7b"].params() / 1e9, 2) == 6.74
    assert T.PUBLISHED["llama-2-7b"].params() == 6_738_415_616
    assert round(T.PUBLISHED["llama-2-13b"].params() / 1e9, 1) == 13.0
    assert round(T.PUBLISHED["llama-2-70b"].params() / 1e9, 1) == 69.0
    assert round(T.PUBLISHED["gpt2-medium"].params() / 1e6) == 355
    assert round(T.PUBLISHED["gpt2-large"].params() / 1e6) == 774
    assert round(T.PUBLISHED["gpt2-xl"].params() / 1e9, 2) == 1.56
    assert all(s.source for s in T.PUBLISHED.values())


def test_kv_bytes_per_token():
    # 2 (K and V) · layers · KV heads · head_dim · 2 bytes
    assert T.PUBLISHED["llama-2-7b"].kv_bytes_per_token() == 2 * 32 * 32 * 128 * 2 == 524_288
    assert T.PUBLISHED["llama-2-70b"].kv_bytes_per_token() == 2 * 80 * 8 * 128 * 2          # GQA: 8 KV heads
    assert T.PUBLISHED["gpt2"].kv_bytes_per_token() == 36_864


def test_kv_cache_holds_the_formulas_bytes():
    model = T.TinyGPT(SMALL)
    _, cache = model(torch.randint(0, 128, (1, 10)))
    stored = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in cache)
    spec4 = T.TransformerSpec(**{**SMALL.__dict__, "bytes_per_value": 4})
    assert stored == 10 * spec4.kv_bytes_per_token()


def _flops(model, *args):
    with FlopCounterMode(display=False) as counter:
        model(*args)
    return counter.get_total_flops()


def test_decode_flops_match_torchs_counter():
    torch.manual_seed(0)
    model = T.TinyGPT(SMALL).eval()
    with torch.inference_mode():
        _, cache = model(torch.randint(0, 128, (1, 19)))
        # torch's counter sees the matmuls (it does not count the CPU's fused attention kernel) ...
        assert _flops(model, torch.randint(0, 128, (1, 1)), cache) == 2 * SMALL.matmul_params()
    # ... and the attention term 4·n_layer·t·d is q·kᵀ plus p·v over t positions, counted on Algorithm 0
    q, k = torch.randn(1, 4, 1, 8), torch.randn(1, 4, 20, 8)
    with FlopCounterMode(display=False) as counter:
        standard_attention(q, k, k)
    assert SMALL.n_layer * counter.get_total_flops() == SMALL.decode_flops(20) - 2 * SMALL.matmul_params()


def test_prefill_flops_match_torchs_counter():
    model = T.TinyGPT(SMALL).eval()
    with torch.inference_mode():
        assert _flops(model, torch.randint(0, 128, (2, 24))) == 2 * 24 * 2 * SMALL.matmul_params()
    q = torch.randn(1, 4, 24, 8)
    with FlopCounterMode(display=False) as counter:
        standard_attention(q, q, q, causal=True)          # dense: the masked half is computed too
    attention = SMALL.prefill_flops(24, causal=False) - 2 * 24 * SMALL.matmul_params()
    assert SMALL.n_layer * counter.get_total_flops() == attention
    assert SMALL.prefill_flops(24) - 2 * 24 * SMALL.matmul_params() == attention * 25 // 48   # Σi = t(t+1)/2


def test_cache_gives_the_same_logits_as_a_full_pass():
    torch.manual_seed(1)
    model = T.TinyGPT(SMALL).eval()
    idx = torch.randint(0, 128, (2, 30))
    full, _ = model(idx)
    _, cache = model(idx[:, :17])
    part, cache = model(idx[:, 17:25], cache)          # several new positions at once
    assert torch.allclose(part, full[:, 17:25], atol=1e-5)
    last, cache = model(idx[:, 25:26], cache)          # then one
    assert torch.allclose(last, full[:, 25:26], atol=1e-5)
    assert cache[0][0].shape == (2, 4, 26, 8)


def test_gqa_model_runs_with_a_cache():
    spec = T.TransformerSpec("gqa", n_layer=2, d_model=32, n_head=4, n_kv_head=2, d_ff=64, vocab=128, context=32)
    model = T.TinyGPT(spec).eval()
    idx = torch.randint(0, 128, (1, 12))
    full, _ = model(idx)
    _, cache = model(idx[:, :11])
    last, cache = model(idx[:, 11:], cache)
    assert torch.allclose(last, full[:, 11:], atol=1e-5)
    assert cache[0][0].shape[1] == 2


def test_step_cost_intensity_grows_with_batch_in_decode():
    s = T.PUBLISHED["llama-2-7b"]
    one, many = s.step_cost("decode", 512, 1), s.step_cost("decode", 512, 64)
    assert 0.9 < one["intensity"] < 1.1            # batch-1 decode: about 2 FLOPs per 2-byte weight
    assert many["intensity"] > 10 * one["intensity"]
    assert s.step_cost("prefill", 512)["intensity"] > 100


def test_spec_table_rows():
    rows = T.spec_table(["gpt2", "llama-2-70b"], context=4096)
    assert rows[0]["context"] == 1024 and rows[1]["context"] == 4096
    assert rows[1]["kv_cache_bytes"] == 4096 * 327_680


@pytest.mark.parametrize("bad", [dict(d_model=30), dict(n_kv_head=3), dict(n_layer=0), dict(mlp="relu"),
                                 dict(vocab=True)])
def test_bad_specs_are_refused(bad):
    with pytest.raises((TypeError, ValueError), match="TransformerSpec"):
        T.TransformerSpec(**{**SMALL.__dict__, **bad})


def test_bad_model_input_is_refused():
    model = T.TinyGPT(SMALL)
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(1, 0, dtype=torch.long))
    with pytest.raises(ValueError, match="context"):
        model(torch.zeros(1, 49, dtype=torch.long))
    with pytest.raises(ValueError, match="spec"):
        T.TinyGPT(T.PUBLISHED["llama-2-7b"])
    with pytest.raises(ValueError, match="t must"):
        SMALL.decode_flops(0)


def test_encode_round_trip():
    ids = T.encode("To be, or not to be")
    assert ids.dtype == torch.long and T.decode_bytes(ids) == "To be, or not to be"
    with pytest.raises(ValueError, match="vocab"):
        T.encode("\x7f", vocab=100)
