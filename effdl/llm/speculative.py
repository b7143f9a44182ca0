"""Speculative decoding: a small draft model proposes, the target model verifies several tokens in one pass.

Taught in chapter 21. After Leviathan, Kalman & Matias, *Fast Inference from
Transformers via Speculative Decoding* (ICML 2023) and Chen et al.,
*Accelerating Large Language Model Decoding with Speculative Sampling*
(2023). One **round**:

1. the draft model ``q`` proposes ``n_draft`` (the papers' γ or K) tokens one
   after the other, ``x_i ~ q_i``, each a cheap forward pass with its KV cache;
2. the target model ``p`` runs **once** over the pending token and the ``n_draft``
   proposals, which gives its distributions ``p_1 … p_{n_draft+1}`` at every
   proposed position (a pass over ``k + 1`` positions costs about as much as
   one at batch 1, where decoding is memory-bound);
3. left to right, ``x_i`` is accepted with probability ``min(1, p_i(x_i) / q_i(x_i))``;
   at the first rejection the round ends with a token drawn from the
   residual ``norm(max(0, p_i − q_i))``; if all are accepted, one **bonus**
   token is drawn from ``p_{n_draft+1}``.

Each round emits between 1 and ``n_draft + 1`` tokens for one target pass,
and the emitted text is distributed exactly as the target's own samples
(Leviathan et al. 2023, Appendix A.1; Chen et al. 2023, Theorem 1). At
temperature 0 the rule becomes "accept iff the draft's token is the target's
argmax" and the output equals the target's greedy text token for token.

Rejected positions are dropped from both KV caches by slicing the positions
axis (a cache is a list of per-layer ``(keys, values)``, each shaped
(batch, kv_heads, positions, head_dim)).

:func:`expected_tokens_per_round` and :func:`expected_speedup` are the
paper's analysis with acceptance rate ``α`` (Leviathan et al. 2023,
Eq. 1, and Theorem 3.8): ``(1 − α^{k+1}) / (1 − α)`` tokens per round
and a wall-clock improvement of ``(1 − α^{k+1}) / ((1 − α)(k·c + 1))``, where
``c`` is the cost of a draft pass relative to a target pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..validation import Fraction, Interval, PositiveInt, Seed, Tensor, validate_params
from .decode import MODEL, PROMPT, TEMPERATURE

PROBS = Tensor(convert=False, ndim=(1, 2))     # (vocab,) or (rows, vocab): non-negative, each row sums to 1


@dataclass(frozen=True)
class SpeculativeResult:
    """What :func:`speculative_generate` produced and what it cost.

    ``tokens``: the prompt followed by the ``n_new`` new tokens (1-D).
    ``trace``: one dict per round — ``start`` (position of the round's first
    new token), ``drafted`` (the draft's proposals), ``accepted`` (how many
    of them were kept), ``next`` (the target's token that ends the round:
    the correction after a rejection or the bonus) and ``bonus`` (True when
    every proposal was accepted).
    ``target_calls`` / ``draft_calls`` count forward passes after the prompt's
    prefill (one per model, not counted).

    Taught in chapter 21, "Decoding faster".
    """

    tokens: torch.Tensor
    n_new: int
    rounds: int
    drafted: int
    accepted: int
    target_calls: int
    draft_calls: int
    trace: list = field(default_factory=list, repr=False)

    @property
    def rejected(self) -> int:
        """Rounds that ended at a rejected proposal (the others ended with a bonus token)."""
        return sum(not r["bonus"] for r in self.trace)

    @property
    def acceptance_rate(self) -> float:
        """The measured α: accepted proposals over proposals that were tested.

        Proposals after a rejection are never tested (they are discarded
        unseen), so this is ``accepted / (accepted + rejected)``, the
        per-position acceptance probability of Leviathan et al.'s analysis;
        ``accepted / drafted`` (:attr:`kept_fraction`) is lower.
        """
        tested = self.accepted + self.rejected
        return self.accepted / tested if tested else 0.0

    @property
    def kept_fraction(self) -> float:
        """Fraction of all drafted tokens that ended up in the text."""
        return self.accepted / self.drafted if self.drafted else 0.0

    @property
    def tokens_per_target_call(self) -> float:
        """New tokens per target forward pass (1 for the target alone)."""
        return self.n_new / self.target_calls

    def stats(self) -> dict:
        """The counts as a JSON-able dict."""
        return {"n_new": self.n_new, "rounds": self.rounds, "drafted": self.drafted, "accepted": self.accepted,
                "rejected": self.rejected, "acceptance_rate": self.acceptance_rate,
                "kept_fraction": self.kept_fraction, "target_calls": self.target_calls,
                "draft_calls": self.draft_calls, "tokens_per_target_call": self.tokens_per_target_call}


# ============================================================== the math of one position
@validate_params(p=PROBS, q=PROBS)
def residual_distribution(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``norm(max(0, p − q))``: where a rejected draft token's replacement is drawn from.

    ``p`` (target) and ``q`` (draft) are probability vectors over the last
    dimension. Where ``p = q`` exactly (no mass left) the result is ``p``
    itself; that row is never reached by a rejection.

    >>> residual_distribution(torch.tensor([0.5, 0.3, 0.2]), torch.tensor([0.2, 0.6, 0.2]))
    tensor([1., 0., 0.])

    Taught in chapter 21, "Decoding faster".
    """
    if p.shape != q.shape:
        raise ValueError(f"residual_distribution: q must have p's shape {tuple(p.shape)}; got {tuple(q.shape)}.")
    return _residual(p, q)


def _residual(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    r = (p - q).clamp_min(0)                                      # max(0, p − q)
    total = r.sum(-1, keepdim=True)
    return torch.where(total > 0, r / total.clamp_min(1e-30), p)  # norm(·); p where nothing is left


@validate_params(p=PROBS, q=PROBS)
def acceptance_probability(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``β = Σ_x min(p(x), q(x))``: the chance that a token drawn from ``q`` is accepted (per row).

    Leviathan et al. 2023, Definition 3.1 (β) and Corollary 3.6 (β = 1 − the
    total-variation distance between ``p`` and ``q``); the acceptance rate α
    is its expectation over positions.

    Taught in chapter 21, "Decoding faster".
    """
    if p.shape != q.shape:
        raise ValueError(f"acceptance_probability: q must have p's shape {tuple(p.shape)}; got {tuple(q.shape)}.")
    return torch.minimum(p, q).sum(-1)


@validate_params(alpha=Fraction(), n_draft=PositiveInt())
def expected_tokens_per_round(alpha: float, n_draft: int) -> float:
    """Expected tokens one round emits: ``(1 − α^{k+1}) / (1 − α)`` (``k + 1`` at α = 1).

    Leviathan et al. 2023, Eq. 1 (``k`` = γ, the draft tokens per
    round), assuming each proposal is accepted independently with
    probability α.

    Taught in chapter 21, "Decoding faster".
    """
    if alpha == 1.0:
        return float(n_draft + 1)
    return (1 - alpha ** (n_draft + 1)) / (1 - alpha)


@validate_params(alpha=Fraction(), n_draft=PositiveInt(), cost_ratio=Interval(float, 0, None))
def expected_speedup(alpha: float, n_draft: int, cost_ratio: float) -> float:
    """Expected wall-clock speed-up over the target alone: ``(1 − α^{k+1}) / ((1 − α)(k·c + 1))``.

    Leviathan et al. 2023, Theorem 3.8: a round costs ``k`` draft
    passes at ``c`` target passes each plus one target pass, and emits
    :func:`expected_tokens_per_round` tokens. At α = 0 it is
    ``1 / (k·c + 1)`` (a slow-down), at α = 1 ``(k + 1) / (k·c + 1)``.
    It assumes a target pass over ``k + 1`` positions costs what a pass over
    one does (memory-bound decoding).

    >>> expected_speedup(0.0, 4, 0.1)
    0.7142857142857143
    >>> expected_speedup(1.0, 4, 0.0)
    5.0

    Taught in chapter 21, "Decoding faster".
    """
    return expected_tokens_per_round(alpha, n_draft) / (n_draft * cost_ratio + 1)


# ============================================================== the decoding loop
def _probs(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.softmax(logits.float() / temperature, dim=-1)


def _trim(cache: list, length: int) -> list:
    """The cache's first ``length`` positions (rolling back rejected tokens)."""
    return [(k[:, :, :length], v[:, :, :length]) for k, v in cache]


@validate_params(target=MODEL, draft=MODEL, prompt=PROMPT, n_new=PositiveInt(), n_draft=PositiveInt(),
                 temperature=TEMPERATURE, seed=Seed())
def speculative_generate(target: nn.Module, draft: nn.Module, prompt: torch.Tensor, n_new: int, *,
                         n_draft: int = 4, temperature: float = 0.0, seed: int = 0) -> SpeculativeResult:
    """``n_new`` tokens after ``prompt`` from ``target``, proposed ``n_draft`` at a time by ``draft``.

    ``prompt``: 1-D token ids (or shape (1, t)); both models must share the
    vocabulary and fit ``len(prompt) + n_new`` positions in their context.
    ``temperature = 0`` is greedy (identical to
    :func:`effdl.llm.decode.generate` on the target); above 0 both models'
    logits are divided by it and the modified rejection sampling keeps the
    output distributed as the target's (random numbers from a generator
    seeded by ``seed``). Returns a :class:`SpeculativeResult`.

    Taught in chapter 21, "Decoding faster".
    """
    name = "speculative_generate"
    if prompt.ndim == 2 and prompt.shape[0] != 1:
        raise ValueError(f"{name}: prompt must be 1-D or of shape (1, t) (one sequence); got {tuple(prompt.shape)}.")
    seq = prompt.reshape(-1).long()
    if seq.numel() == 0:
        raise ValueError(f"{name}: prompt must hold at least one token; got an empty prompt.")
    if target.spec.vocab != draft.spec.vocab:
        raise ValueError(f"{name}: draft must share the target's vocabulary ({target.spec.vocab}); "
                         f"got {draft.spec.vocab}.")
    context = min(target.spec.context, draft.spec.context)
    if seq.numel() + n_new > context:
        raise ValueError(f"{name}: prompt length + n_new must be at most both models' context ({context}); "
                         f"got {seq.numel()} + {n_new}.")
    if int(seq.max()) >= target.spec.vocab or int(seq.min()) < 0:
        raise ValueError(f"{name}: prompt must hold token ids in [0, {target.spec.vocab - 1}]; "
                         f"got values from {int(seq.min())} to {int(seq.max())}.")
    target.eval()
    draft.eval()
    with torch.inference_mode():
        return _speculate(target, draft, seq, n_new, n_draft, temperature, seed)


def _speculate(target, draft, seq, n_new, n_draft, temperature, seed) -> SpeculativeResult:
    greedy = temperature == 0.0
    gen = None if greedy else torch.Generator().manual_seed(seed)
    tokens = seq.tolist()
    # Invariant: the target's cache holds every token but the last ("pending"); the draft's the first d_len.
    t_cache = target(seq[None, :-1])[1] if len(tokens) > 1 else None
    d_cache = draft(seq[None, :-1])[1] if len(tokens) > 1 else None
    t_len = d_len = len(tokens) - 1
    trace, target_calls, draft_calls = [], 0, 0
    end = len(tokens) + n_new
    while len(tokens) < end:
        start, k = len(tokens), min(n_draft, end - len(tokens))
        # 1. draft k tokens, one cached pass each; the first pass also feeds what the draft has not seen yet
        drafted, q_rows = [], []
        feed = torch.tensor(tokens[d_len:])[None]                            # (1, ≥ 1)
        for _ in range(k):
            logits, d_cache = draft(feed, d_cache)
            draft_calls += 1
            d_len += feed.shape[1]
            if greedy:
                x = int(logits[0, -1].argmax())
            else:
                q = _probs(logits[0, -1], temperature)                      # (vocab,)
                x = int(torch.multinomial(q, 1, generator=gen))
                q_rows.append(q)
            drafted.append(x)
            feed = torch.tensor([[x]])
        # 2. one target pass over the pending token and the k proposals: k + 1 next-token distributions
        logits, t_cache = target(torch.tensor([tokens[t_len:] + drafted]), t_cache)
        target_calls += 1
        rows = logits[0, -(k + 1):]                                          # (k + 1, vocab)
        # 3. accept left to right
        n_ok = 0
        if greedy:
            best = rows.argmax(-1).tolist()                                  # the target's greedy choices
            while n_ok < k and drafted[n_ok] == best[n_ok]:                  # accept iff x_i = argmax p_i
                n_ok += 1
            nxt = best[n_ok]                                                 # correction, or bonus if n_ok = k
        else:
            p = _probs(rows, temperature)                                    # (k + 1, vocab)
            u = torch.rand(k, generator=gen)
            while n_ok < k and u[n_ok] * q_rows[n_ok][drafted[n_ok]] < p[n_ok, drafted[n_ok]]:
                n_ok += 1                                                    # u < p(x)/q(x): accept
            dist = p[k] if n_ok == k else _residual(p[n_ok], q_rows[n_ok])   # bonus ~ p, else norm(max(0, p − q))
            nxt = int(torch.multinomial(dist, 1, generator=gen))
        trace.append({"start": start, "drafted": drafted, "accepted": n_ok, "next": nxt, "bonus": n_ok == k})
        tokens += drafted[:n_ok] + [nxt]
        # 4. roll back: both caches keep only positions of accepted tokens (the new pending token is fed next)
        t_len = len(tokens) - 1
        t_cache = _trim(t_cache, t_len)
        d_len = min(d_len, t_len)
        d_cache = _trim(d_cache, d_len)
    del tokens[end:]                                                         # a last bonus may overshoot
    drafted_total = sum(len(r["drafted"]) for r in trace)
    accepted_total = sum(r["accepted"] for r in trace)
    return SpeculativeResult(torch.tensor(tokens), n_new, len(trace), drafted_total, accepted_total,
                             target_calls, draft_calls, trace)
