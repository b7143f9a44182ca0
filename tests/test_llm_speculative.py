"""Speculative decoding (effdl.llm.speculative): greedy equality, the target's distribution, the formulas."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from effdl import reproduce
from effdl.llm.decode import generate
from effdl.llm.speculative import (acceptance_probability, expected_speedup, expected_tokens_per_round,
                                   residual_distribution, speculative_generate)
from effdl.precompute.lm import load_lm, split_ids
from effdl.precompute.lm_distill import llm_decode_report, speculation_table
from effdl.transformer import TinyGPT, TransformerSpec


def _tiny(seed: int, *, vocab: int = 5, context: int = 16, scale: float = 0.5) -> TinyGPT:
    """A random TinyGPT with peaky output distributions (embeddings ~ N(0, scale²))."""
    torch.manual_seed(seed)
    model = TinyGPT(TransformerSpec("tiny", n_layer=1, d_model=8, n_head=2, n_kv_head=2, d_ff=16, vocab=vocab,
                                    context=context, bytes_per_value=4))
    with torch.no_grad():
        model.wte.weight.normal_(0.0, scale)
    return model.eval()


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return load_lm("lm"), load_lm("lm_draft")


@pytest.fixture(scope="module")
def prompts():
    ids = split_ids("test")
    return [ids[s:s + n] for s, n in ((0, 24), (4000, 1), (20000, 40))]


# --------------------------------------------------------------- greedy: the target's own text
@pytest.mark.parametrize("n_draft", [1, 3, 8])
def test_greedy_speculative_equals_greedy_target(models, prompts, n_draft):
    target, draft = models
    for prompt in prompts:
        result = speculative_generate(target, draft, prompt, 40, n_draft=n_draft)
        assert torch.equal(result.tokens, generate(target, prompt, 40))
        assert result.tokens.shape == (prompt.numel() + 40,)
        assert result.target_calls == result.rounds < 40                  # several tokens per target pass
        assert 0 < result.acceptance_rate < 1


def test_draft_equal_to_target_accepts_everything(models, prompts):
    target, _ = models
    result = speculative_generate(target, target, prompts[0], 30, n_draft=4)
    assert torch.equal(result.tokens, generate(target, prompts[0], 30))
    assert result.acceptance_rate == 1.0 and result.rejected == 0
    assert result.rounds == math.ceil(30 / 5)                             # k + 1 = 5 tokens per round
    assert all(r["bonus"] and r["accepted"] == len(r["drafted"]) for r in result.trace)


def test_random_draft_is_rarely_accepted_but_output_unchanged(models, prompts):
    target, _ = models
    random_draft = TinyGPT(load_lm("lm_draft").spec).eval()               # untrained: near-uniform guesses
    result = speculative_generate(target, random_draft, prompts[2], 30, n_draft=3)
    assert torch.equal(result.tokens, generate(target, prompts[2], 30))
    assert result.acceptance_rate < 0.2
    assert result.rounds >= 24                                            # about one token per target pass


def test_trace_and_counts_are_consistent(models, prompts):
    target, draft = models
    result = speculative_generate(target, draft, prompts[0], 25, n_draft=4, temperature=1.0, seed=3)
    new = result.tokens[prompts[0].numel():].tolist()
    rebuilt = list(itertools.chain.from_iterable(r["drafted"][:r["accepted"]] + [r["next"]] for r in result.trace))
    assert rebuilt[:25] == new and len(rebuilt) in (25, 26)               # a last bonus may overshoot by one
    assert result.drafted == sum(len(r["drafted"]) for r in result.trace)
    assert result.draft_calls == result.drafted
    assert result.accepted + result.rejected <= result.drafted
    stats = result.stats()
    assert stats["tokens_per_target_call"] == pytest.approx(25 / result.target_calls)


def test_sampling_is_seeded(models, prompts):
    target, draft = models
    a = speculative_generate(target, draft, prompts[0], 20, temperature=0.8, seed=5)
    b = speculative_generate(target, draft, prompts[0], 20, temperature=0.8, seed=5)
    assert torch.equal(a.tokens, b.tokens)


# --------------------------------------------------------------- sampling: the target's distribution
def _exact_two_token_distribution(model: TinyGPT, prompt: torch.Tensor) -> torch.Tensor:
    """P(x1, x2 | prompt) of ``model`` at temperature 1, shape (vocab, vocab)."""
    vocab = model.spec.vocab
    with torch.no_grad():
        p1 = torch.softmax(model(prompt[None])[0][0, -1].double(), -1)
        seqs = torch.cat([prompt.repeat(vocab, 1), torch.arange(vocab)[:, None]], dim=1)
        p2 = torch.softmax(model(seqs)[0][:, -1].double(), -1)          # (x1, x2)
    return p1[:, None] * p2


def _empirical(target, draft, prompt, n_samples: int) -> torch.Tensor:
    vocab = target.spec.vocab
    counts = torch.zeros(vocab, vocab, dtype=torch.float64)
    for seed in range(n_samples):
        x1, x2 = speculative_generate(target, draft, prompt, 2, n_draft=2, temperature=1.0, seed=seed).tokens[-2:]
        counts[x1, x2] += 1
    return counts / n_samples


def test_speculative_sampling_follows_the_targets_distribution_not_the_drafts():
    target, draft = _tiny(1), _tiny(2)
    prompt = torch.tensor([0, 3, 1])
    p = _exact_two_token_distribution(target, prompt)
    q = _exact_two_token_distribution(draft, prompt)
    empirical = _empirical(target, draft, prompt, 1200)
    tv = 0.5 * (empirical - p).abs().sum().item()
    # 25 outcomes, 1200 samples: E[TV] = ½ Σ √(2p(1 − p)/(πn)) ≈ 0.037 here; the draft is 0.42 away from p
    assert tv < 0.08
    tv_draft = 0.5 * (empirical - q).abs().sum().item()
    assert 0.5 * (p - q).abs().sum().item() > 0.3 and tv_draft > 0.2    # so the bound above can fail
    # the first token alone: within 4 binomial standard errors everywhere
    p1, e1 = p.sum(1), empirical.sum(1)
    assert torch.all((e1 - p1).abs() <= 4 * torch.sqrt(p1 * (1 - p1) / 1200) + 1e-9)


def test_sampling_from_the_draft_alone_fails_the_same_bound():
    target, draft = _tiny(1), _tiny(2)
    prompt = torch.tensor([0, 3, 1])
    p = _exact_two_token_distribution(target, prompt)
    # the draft's own samples (speculation with the draft as its own target) land far from the target's law
    empirical = _empirical(draft, draft, prompt, 400)
    assert 0.5 * (empirical - p).abs().sum().item() > 0.08


# --------------------------------------------------------------- one position's math
def test_residual_distribution_and_acceptance_probability():
    p, q = torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.6, 0.2])
    assert torch.allclose(residual_distribution(p, q), torch.tensor([1.0, 0.0, 0.0]))
    assert acceptance_probability(p, q).item() == pytest.approx(0.7)             # Σ min(p, q)
    assert torch.equal(residual_distribution(p, p), p)                            # nothing left: p itself
    # q·min(1, p/q) + (1 − β)·residual = p: the proof of correctness, on random rows
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(6, 10, generator=g), -1)
    q = torch.softmax(torch.randn(6, 10, generator=g), -1)
    beta = acceptance_probability(p, q)
    total = q * torch.clamp(p / q, max=1) + (1 - beta)[:, None] * residual_distribution(p, q)
    assert torch.allclose(total, p, atol=1e-6)


def test_expected_tokens_and_speedup_formulas():
    assert expected_tokens_per_round(0.0, 5) == 1.0
    assert expected_tokens_per_round(1.0, 5) == 6.0
    assert expected_tokens_per_round(1 - 1e-9, 5) == pytest.approx(6.0, rel=1e-6)   # continuous at α → 1
    assert expected_tokens_per_round(0.5, 2) == pytest.approx(1 + 0.5 + 0.25)
    assert expected_speedup(0.0, 4, 0.25) == pytest.approx(1 / 2)                # α = 0: only the cost
    assert expected_speedup(1.0, 3, 0.0) == 4.0
    assert expected_speedup(0.8, 4, 0.05) == pytest.approx((1 - 0.8 ** 5) / (0.2 * 1.2))
    # α = 0.8, k = 3, c = 0.05: (1 − 0.8⁴) / (0.2 · 1.15) ≈ 2.57
    assert 2.5 < expected_speedup(0.8, 3, 0.05) < 2.9


# --------------------------------------------------------------- bad input
def test_bad_input(models, prompts):
    target, draft = models
    with pytest.raises(ValueError, match="prompt must be non-empty"):
        speculative_generate(target, draft, torch.zeros(0, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="context"):
        speculative_generate(target, draft, prompts[2], 256 - 39)
    with pytest.raises(ValueError, match="vocabulary"):
        speculative_generate(target, _tiny(0), prompts[0], 5)
    with pytest.raises(ValueError, match="one sequence"):
        speculative_generate(target, draft, torch.zeros(2, 3, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="n_draft"):
        speculative_generate(target, draft, prompts[0], 5, n_draft=0)
    with pytest.raises(ValueError, match="temperature"):
        speculative_generate(target, draft, prompts[0], 5, temperature=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        expected_speedup(1.5, 4, 0.1)
    with pytest.raises(ValueError, match="q must have p's shape"):
        residual_distribution(torch.ones(3) / 3, torch.ones(4) / 4)


# --------------------------------------------------------------- the experiment layer (chapter 21's record)
def test_speculation_table_and_llm_decode_report(models, prompts):
    target, draft = models
    table = speculation_table(target, {"plain": draft, "self": target}, prompts[:1], n_drafts=[2], n_new=12,
                              timed=False)
    plain, self_row = table["rows"]
    assert plain["greedy_identical"] and self_row["greedy_identical"]
    assert self_row["greedy_acceptance"] == 1.0 and self_row["greedy_target_calls_per_token"] == pytest.approx(4 / 12, abs=1e-4)
    assert 0 < plain["greedy_acceptance"] < 1 and "measured_speedup" not in plain
    report = llm_decode_report(n_new=8)
    assert reproduce.shape_problems(report, reproduce.EXPERIMENTS["llm-decode"].keys) == []
    assert report["kv_bytes_per_token"] == report["kv_bytes_formula"] == target.spec.kv_bytes_per_token()
    assert report["spec"]["greedy_identical"] is True
