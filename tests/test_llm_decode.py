"""effdl.llm.decode (chapter 18): generation with and without a KV cache gives the same tokens."""
import pytest
import torch

from effdl.llm import decode as D
from effdl.transformer import TinyGPT, TransformerSpec

SPEC = TransformerSpec("t", n_layer=2, d_model=32, n_head=4, n_kv_head=2, d_ff=64, vocab=128, context=64)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return TinyGPT(SPEC).eval()


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_cache_and_no_cache_give_the_same_tokens(model, temperature):
    prompt = torch.tensor([10, 20, 30, 40])
    a = D.generate(model, prompt, 24, use_cache=True, temperature=temperature, seed=3)
    b = D.generate(model, prompt, 24, use_cache=False, temperature=temperature, seed=3)
    assert a.shape == (28,) and torch.equal(a, b) and torch.equal(a[:4], prompt)


def test_batched_prompts(model):
    prompt = torch.randint(0, 128, (3, 5))
    a = D.generate(model, prompt, 10)
    assert a.shape == (3, 15)
    assert torch.equal(a, D.generate(model, prompt, 10, use_cache=False))
    assert torch.equal(a[1], D.generate(model, prompt[1], 10))


def test_sampling_depends_on_the_seed(model):
    prompt = torch.tensor([1, 2])
    a = D.generate(model, prompt, 30, temperature=2.0, seed=0)
    assert torch.equal(a, D.generate(model, prompt, 30, temperature=2.0, seed=0))
    assert not torch.equal(a, D.generate(model, prompt, 30, temperature=2.0, seed=1))


def test_speed_helpers_return_positive_numbers(model):
    r = D.tokens_per_second(model, torch.tensor([1, 2, 3]), 5, repeats=2)
    assert r["tokens_per_s"] > 0 and len(r["all_seconds"]) == 2
    assert D.step_seconds(model, 20, repeats=2) > 0 and D.step_seconds(model, 1, use_cache=False, repeats=2) > 0


def test_bad_input(model):
    with pytest.raises(ValueError, match="prompt"):
        D.generate(model, torch.zeros(0, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="n_new"):
        D.generate(model, torch.tensor([1]), 0)
    with pytest.raises(ValueError, match="context"):
        D.generate(model, torch.tensor([1, 2]), 63)
    with pytest.raises(ValueError, match="t must"):
        D.step_seconds(model, 65)
    with pytest.raises(ValueError, match="temperature"):
        D.generate(model, torch.tensor([1]), 2, temperature=-1.0)
