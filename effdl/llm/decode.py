"""Generating text one token at a time, with and without a KV cache, and how fast.

Taught in chapter 18. Without a cache every new token re-runs the model over
the whole sequence so far (``t`` positions of prefill work per token); with
a cache (:class:`effdl.transformer.TinyGPT`'s ``cache``) each step runs one
position and reads the keys and values stored by the steps before. The two
give the same tokens (tested): the cache only avoids recomputation.
"""
from __future__ import annotations

import statistics
import time

import torch
from torch import nn

from ..validation import Bool, Instance, Interval, PositiveInt, Seed, Tensor, validate_params

MODEL = Instance(nn.Module, "a TinyGPT (an nn.Module with forward(idx, cache) -> (logits, cache) and .spec)")
PROMPT = Tensor(dtype="int", ndim=(1, 2))
TEMPERATURE = Interval(float, 0, None)


def _check_lengths(model, prompt: torch.Tensor, n_new: int) -> torch.Tensor:
    prompt = prompt.long()
    if prompt.ndim == 1:
        prompt = prompt.unsqueeze(0)                      # (1, t)
    if prompt.shape[-1] == 0:
        raise ValueError("generate: prompt must hold at least one token; got an empty prompt.")
    context = model.spec.context
    if prompt.shape[-1] + n_new > context:
        raise ValueError(f"generate: prompt length + n_new must be at most the model's context ({context}); "
                         f"got {prompt.shape[-1]} + {n_new}.")
    return prompt


def _pick(logits: torch.Tensor, temperature: float, gen: torch.Generator | None) -> torch.Tensor:
    """Next token from the last position's logits (batch, vocab): argmax, or a sample at ``temperature``."""
    if temperature == 0.0:
        return logits.argmax(dim=-1, keepdim=True)                       # (batch, 1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=gen)                   # (batch, 1)


@validate_params(model=MODEL, prompt=PROMPT, n_new=PositiveInt(), use_cache=Bool(), temperature=TEMPERATURE,
                 seed=Seed())
def generate(model: nn.Module, prompt: torch.Tensor, n_new: int, *, use_cache: bool = True,
             temperature: float = 0.0, seed: int = 0) -> torch.Tensor:
    """``n_new`` tokens after ``prompt`` (1-D or (batch, t) token ids), greedy or sampled.

    ``temperature = 0`` takes the most likely token (greedy); above 0 it
    samples from ``softmax(logits / temperature)`` with a generator seeded by
    ``seed``, so that the same call gives the same text. ``use_cache=False``
    re-runs the whole sequence for every token. Returns the prompt followed
    by the new tokens, shaped like ``prompt``. Prompt plus new tokens must
    fit the model's context.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    one_d = prompt.ndim == 1
    idx = _check_lengths(model, prompt, n_new)
    gen = torch.Generator().manual_seed(seed) if temperature > 0 else None
    model.eval()
    with torch.inference_mode():
        if use_cache:
            logits, cache = model(idx)                                  # prefill: the whole prompt at once
            for _ in range(n_new):
                nxt = _pick(logits[:, -1], temperature, gen)
                idx = torch.cat([idx, nxt], dim=1)
                logits, cache = model(nxt, cache)                       # decode: one position, cache grows
        else:
            for _ in range(n_new):
                logits, _ = model(idx)                                  # the whole sequence, every time
                idx = torch.cat([idx, _pick(logits[:, -1], temperature, gen)], dim=1)
    return idx[0] if one_d else idx


@validate_params(model=MODEL, prompt=PROMPT, n_new=PositiveInt(), use_cache=Bool(), repeats=PositiveInt())
def tokens_per_second(model: nn.Module, prompt: torch.Tensor, n_new: int, *, use_cache: bool = True,
                      repeats: int = 5) -> dict:
    """Greedy generation speed: median over ``repeats`` runs (after one warm-up) of ``n_new`` tokens.

    Returns ``{"tokens_per_s", "seconds", "all_seconds"}`` where ``seconds``
    is the median wall time of one run (prefill included) on the current
    torch thread setting.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    _check_lengths(model, prompt, n_new)
    generate(model, prompt, n_new, use_cache=use_cache)                # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        generate(model, prompt, n_new, use_cache=use_cache)
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {"tokens_per_s": n_new / median, "seconds": median, "all_seconds": times}


@validate_params(model=MODEL, t=PositiveInt(), use_cache=Bool(), batch_size=PositiveInt(), repeats=PositiveInt())
def step_seconds(model: nn.Module, t: int, *, use_cache: bool = True, batch_size: int = 1,
                 repeats: int = 20) -> float:
    """Median wall time (s) of producing the token at position ``t`` (1-based), with or without a cache.

    With the cache, one position is run against ``t − 1`` cached ones (the
    cache is built once, outside the timing); without, all ``t`` positions.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    if t > model.spec.context:
        raise ValueError(f"step_seconds: t must be at most the model's context ({model.spec.context}); got {t!r}.")
    gen = torch.Generator().manual_seed(0)
    idx = torch.randint(0, model.spec.vocab, (batch_size, t), generator=gen)
    model.eval()
    times = []
    with torch.inference_mode():
        cache = model(idx[:, :-1])[1] if use_cache and t > 1 else None
        last = idx[:, -1:] if use_cache else idx
        for _ in range(repeats + 2):
            start = time.perf_counter()
            model(last, cache)
            times.append(time.perf_counter() - start)
    return statistics.median(times[2:])
