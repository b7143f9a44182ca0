"""A draft model distilled from the book's language model, and how well each draft speculates (``effdl precompute lm_distill``).

Behind chapter 21. The draft architecture (:data:`effdl.transformer.DRAFT_SPEC`,
125 k parameters) is trained again on the **train** split with the same
recipe, learning rate and step budget as the plain draft of
:mod:`effdl.precompute.lm` (``DRAFT_STEPS``), but with chapter 13's loss
(:func:`effdl.training.distillation.distillation_loss`, Hinton et al. 2015)
against the target model's logits on the same windows: the draft learns the
target's whole next-byte distribution, which is what speculative decoding's
acceptance rewards (DistillSpec, Zhou et al. 2024). The temperature ``T``
and the weight ``alpha`` of the soft term are chosen from :data:`GRID` by
short runs (:data:`GRID_STEPS` steps), scored on the **validation** split by
the mean acceptance probability ``Σ_x min(p(x), q(x))`` at sampling
temperature 1 (Leviathan et al. 2023, Definition 3.1) over fixed windows.

Then, once, on the **test** split: bits per byte of both drafts; their
acceptance against the target per position (greedy: same argmax; sampled:
``Σ min(p, q)``); and speculative decoding on fixed test prompts for each
``n_draft`` in :data:`N_DRAFTS`: measured acceptance, target passes per
token, tokens per second of the target alone and with each draft, the cost
ratio ``c`` of a draft pass to a target pass, and the expected speed-up of
Leviathan et al.'s Theorem 3.8 next to the measured one. One thread
throughout; timings are those of the machine that wrote the record.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path

import torch

from ..llm.decode import MODEL, PROMPT, generate, step_seconds
from ..llm.speculative import expected_speedup, speculative_generate
from ..train import threads
from ..transformer import DRAFT_SPEC
from ..training.distillation import distillation_loss, soft_targets
from ..validation import Bool, Dict, Instance, ListOf, PositiveInt, validate_params
from . import load_record
from .lm import DRAFT_STEPS, EVAL_WINDOWS, _save, _train, _windows, load_lm, loss_per_byte, split_ids

SEED = 0
GRID = [{"temperature": t, "alpha": a} for t in (1.0, 2.0) for a in (0.5, 1.0)]
GRID_STEPS = 100
N_DRAFTS = [1, 2, 4, 8]
PROMPT_LEN = 32
N_NEW = 96
N_PROMPTS = 8
TEST_WINDOWS = 200              # test windows for the per-position acceptance
COST_AT = 128                   # context length at which a decode step's time is measured
REPEATS = 3


def _distill_loss(teacher, temperature: float, alpha: float):
    """``loss_fn(logits, batch)`` for :func:`effdl.precompute.lm._train`: chapter 13's loss on every position."""
    def loss_fn(logits, batch):
        with torch.no_grad():
            teacher_logits, _ = teacher(batch[:, :-1])                     # (batch, seq, vocab)
        vocab = logits.shape[-1]
        return distillation_loss(logits.reshape(-1, vocab), teacher_logits.reshape(-1, vocab),
                                 batch[:, 1:].reshape(-1), temperature=temperature, alpha=alpha)
    return loss_fn


def _target_probs(target, windows: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """The target's next-byte distributions at temperature 1 on ``windows``: (n, seq, vocab)."""
    with torch.inference_mode():
        return torch.cat([soft_targets(target(windows[i:i + batch_size, :-1])[0], 1.0)
                          for i in range(0, len(windows), batch_size)])


def _per_position_acceptance(draft, windows: torch.Tensor, p: torch.Tensor, batch_size: int = 16) -> dict:
    """Greedy (same argmax) and sampled (``Σ min(p, q)``) acceptance of ``draft`` against ``p``, per position."""
    same, beta = [], []
    draft.eval()
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            q = soft_targets(draft(windows[i:i + batch_size, :-1])[0], 1.0)
            pi = p[i:i + batch_size]
            same.append((q.argmax(-1) == pi.argmax(-1)).double().mean())
            beta.append(torch.minimum(pi, q).sum(-1).double().mean())
    return {"greedy": round(float(torch.stack(same).mean()), 4), "sampled": round(float(torch.stack(beta).mean()), 4)}


def _prompts() -> list[torch.Tensor]:
    """Fixed prompts: ``N_PROMPTS`` windows of ``PROMPT_LEN`` bytes spread evenly over the test split."""
    ids = split_ids("test")
    step = (ids.numel() - PROMPT_LEN - N_NEW) // N_PROMPTS
    return [ids[i * step:i * step + PROMPT_LEN] for i in range(N_PROMPTS)]


def _seconds(fn) -> float:
    """Median wall time of ``fn()`` over ``REPEATS`` runs after one warm-up."""
    fn()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _paired_seconds(reference, candidate) -> tuple[float, float]:
    """Best wall times of ``reference()`` and ``candidate()``, timed in turns ``REPEATS`` times after a warm-up.

    Taking turns puts both under the same load (the machine is shared); the
    best of the repeats is the least disturbed estimate of each.
    """
    reference(), candidate()
    ref, cand = [], []
    for _ in range(REPEATS):
        for fn, times in ((reference, ref), (candidate, cand)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return min(ref), min(cand)


@validate_params(target=MODEL, drafts=Dict(), prompts=ListOf(PROMPT), n_drafts=ListOf(PositiveInt()),
                 n_new=PositiveInt(), timed=Bool())
def speculation_table(target, drafts: dict, prompts: list, *, n_drafts=tuple(N_DRAFTS), n_new: int = N_NEW,
                      timed: bool = True) -> dict:
    """Speculative decoding of every prompt with every draft and ``n_draft``: acceptance, calls, tokens/s.

    Returns ``{"target_tokens_per_s", "cost_ratio": {draft: c}, "rows": [...]}``
    with one row per (draft, n_draft): greedy and sampled (T = 1) measured
    acceptance α, target passes per new token, whether greedy output equals
    the target's, and (``timed``) measured and expected speed-up
    (Leviathan et al. 2023, Theorem 3.8, at the measured ``c`` and at ``c = 0``).

    Behind chapter 21, "Decoding faster".
    """
    refs = [generate(target, pr, n_new) for pr in prompts]
    total = n_new * len(prompts)
    out = {"rows": [], "cost_ratio": {}}
    def run_alone():
        return [generate(target, pr, n_new) for pr in prompts]

    if timed:
        out["target_tokens_per_s"] = round(total / _paired_seconds(run_alone, run_alone)[0], 1)
    for name, draft in drafts.items():
        if timed:                     # c: one draft decode step over one target step, measured in turns, median of 5
            out["cost_ratio"][name] = round(statistics.median(
                step_seconds(draft, COST_AT, repeats=30) / step_seconds(target, COST_AT, repeats=30)
                for _ in range(5)), 4)
        for k in n_drafts:
            row = {"draft": name, "n_draft": k}
            for mode, temp in (("greedy", 0.0), ("sampled", 1.0)):
                runs = [speculative_generate(target, draft, pr, n_new, n_draft=k, temperature=temp, seed=i)
                        for i, pr in enumerate(prompts)]
                accepted = sum(r.accepted for r in runs)
                row[f"{mode}_acceptance"] = round(accepted / max(1, accepted + sum(r.rejected for r in runs)), 4)
                row[f"{mode}_target_calls_per_token"] = round(sum(r.target_calls for r in runs) / total, 4)
                if mode == "greedy":
                    row["greedy_identical"] = all(torch.equal(r.tokens, ref) for r, ref in zip(runs, refs))
            if timed:                 # the target alone and speculation in turns: the same load for both
                alone, spec = _paired_seconds(run_alone, lambda: [
                    speculative_generate(target, draft, pr, n_new, n_draft=k) for pr in prompts])
                row["tokens_per_s"] = round(total / spec, 1)
                row["target_tokens_per_s"] = round(total / alone, 1)
                row["measured_speedup"] = round(alone / spec, 3)
                row["expected_speedup"] = round(expected_speedup(row["greedy_acceptance"], k,
                                                                 out["cost_ratio"][name]), 3)
                row["expected_speedup_c0"] = round(expected_speedup(row["greedy_acceptance"], k, 0.0), 3)
            out["rows"].append(row)
    return out


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Distil the draft (T and alpha chosen on validation), save it, measure both drafts; return the record.

    Taught in chapter 21, "Decoding faster".
    """
    with threads(1):                  # one thread: the same arithmetic order on every machine
        return _run(Path(out_dir))


def _run(out_dir: Path) -> dict:
    start = time.perf_counter()
    target, plain = load_lm("lm"), load_lm("lm_draft")
    for p in target.parameters():
        p.requires_grad_(False)
    lr = load_record("lm")["lr"]
    train_ids, val_ids, test_ids = (split_ids(s) for s in ("train", "val", "test"))
    val_windows = _windows(val_ids, DRAFT_SPEC.context)[:EVAL_WINDOWS]
    p_val = _target_probs(target, val_windows)
    grid = []
    for setting in GRID:
        t0 = time.perf_counter()
        model, _, val = _train(DRAFT_SPEC, train_ids, val_ids, lr=lr, steps=GRID_STEPS, curve=False,
                               loss_fn=_distill_loss(target, **setting))
        acc = _per_position_acceptance(model, val_windows, p_val)
        grid.append({**setting, "val_loss": round(val, 4), "val_acceptance": acc,
                     "seconds": round(time.perf_counter() - t0)})
        print(f"grid {setting}: val loss {val:.4f}, acceptance {acc}", flush=True)
    best = max(grid, key=lambda row: (row["val_acceptance"]["sampled"], -row["temperature"], -row["alpha"]))
    t0 = time.perf_counter()
    distilled, curve, _ = _train(DRAFT_SPEC, train_ids, val_ids, lr=lr, steps=DRAFT_STEPS, curve=True,
                                 loss_fn=_distill_loss(target, best["temperature"], best["alpha"]))
    train_seconds = time.perf_counter() - t0
    _save(distilled, "lm_draft_distilled", out_dir)
    distilled.eval()
    drafts = {"plain": plain, "distilled": distilled}
    test_windows = _windows(test_ids, DRAFT_SPEC.context)[:TEST_WINDOWS]
    p_test = _target_probs(target, test_windows)
    models = {}
    for name, model in drafts.items():
        test = loss_per_byte(model, test_ids)
        models[name] = {"test_loss": round(test, 4), "test_bits_per_byte": round(test / math.log(2), 4),
                        "test_acceptance_per_position": _per_position_acceptance(model, test_windows, p_test)}
    models["distilled"].update(train_seconds=round(train_seconds), curve=curve, steps=DRAFT_STEPS)
    print(models, flush=True)
    spec = speculation_table(target, drafts, _prompts())
    return {"models": models, "grid": grid, "chosen": {"temperature": best["temperature"], "alpha": best["alpha"]},
            "lr": lr, "grid_steps": GRID_STEPS, "steps": DRAFT_STEPS, "seed": SEED, "threads": 1,
            "speculation": spec,
            "prompts": {"n": N_PROMPTS, "length": PROMPT_LEN, "n_new": N_NEW, "split": "test"},
            "selection": "temperature and alpha by mean acceptance probability sum(min(p, q)) at T = 1 on the "
                         "first EVAL_WINDOWS validation windows after GRID_STEPS steps; test evaluated once",
            "cost_ratio_at": COST_AT, "timing_repeats": REPEATS,
            "stage_seconds": round(time.perf_counter() - start),
            "timing": "one thread, on the machine that wrote the record (2 cores shared with other jobs): each "
                      "speed-up is the target alone vs speculation timed in turns, best of timing_repeats each; "
                      "cost ratios: median of 5 ratios of median decode-step times"}


def _best_row(record: dict, draft: str) -> dict:
    """The record's row of ``draft`` with the highest measured speed-up (ties: fewer drafted tokens)."""
    rows = [r for r in record["speculation"]["rows"] if r["draft"] == draft]
    return max(rows, key=lambda r: (r["measured_speedup"], -r["n_draft"]))


@validate_params(record=Dict(optional=True), n_new=PositiveInt())
def llm_decode_report(record: dict | None = None, *, n_new: int = 32) -> dict:
    """Chapter 18's and 21's decoding numbers as one JSON-able dict (``effdl reproduce llm-decode``).

    Live and short: greedy tokens per second of the target without and with
    its KV cache (``n_new`` tokens after a 32-byte test prompt; this machine,
    one thread), the cache's bytes per token read from the tensors of that
    run next to :meth:`effdl.transformer.TransformerSpec.kv_bytes_per_token`,
    and whether speculative decoding with the distilled draft returns the
    target's greedy text on two test prompts. From the record (``effdl
    precompute lm_distill``): acceptance, target passes per token and the
    measured and expected speed-up at the distilled draft's best ``n_draft``,
    and both drafts' acceptance.

    Taught in chapter 21, "Decoding faster".
    """
    rec = load_record("lm_distill") if record is None else record
    target, distilled = load_lm("lm"), load_lm("lm_draft_distilled")
    prompts = _prompts()[:2]
    with threads(1):
        no_cache = _seconds(lambda: generate(target, prompts[0], n_new, use_cache=False))
        cached = _seconds(lambda: generate(target, prompts[0], n_new))
        with torch.inference_mode():
            _, cache = target(torch.cat([prompts[0], generate(target, prompts[0], n_new)[-n_new:]])[None])
        positions = cache[0][0].shape[2]
        kv_bytes = sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in cache) // positions
        best = _best_row(rec, "distilled")
        identical = all(torch.equal(speculative_generate(target, distilled, pr, n_new, n_draft=best["n_draft"]).tokens,
                                    generate(target, pr, n_new)) for pr in prompts)
    plain = _best_row(rec, "plain")
    return {"tokens_per_s": {"no_cache": round(n_new / no_cache, 1), "kv_cache": round(n_new / cached, 1)},
            "kv_bytes_per_token": int(kv_bytes), "kv_bytes_formula": target.spec.kv_bytes_per_token(),
            "spec": {"acceptance": best["greedy_acceptance"], "speedup": best["measured_speedup"],
                     "greedy_identical": identical, "n_draft": best["n_draft"], "draft": "distilled",
                     "expected_speedup": best["expected_speedup"],
                     "target_calls_per_token": best["greedy_target_calls_per_token"],
                     "cost_ratio": rec["speculation"]["cost_ratio"]["distilled"],
                     "acceptance_plain": plain["greedy_acceptance"], "speedup_plain": plain["measured_speedup"],
                     "acceptance_per_position": {name: m["test_acceptance_per_position"]
                                                 for name, m in rec["models"].items()}},
            "timing": "tokens_per_s live on this machine (one thread); spec numbers from the record "
                      "(greedy, test prompts), speedup = wall-clock of the target alone / speculative"}
