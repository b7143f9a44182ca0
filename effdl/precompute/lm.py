"""Part V's language models, trained once (``effdl precompute lm``).

:class:`effdl.transformer.TinyGPT` at :data:`effdl.transformer.LM_SPEC`
(about 1.3 M parameters) and a much smaller draft model at
:data:`~effdl.transformer.DRAFT_SPEC` (for speculative decoding), both over
the bytes of :func:`effdl.data.load_text` (Shakespeare). Recipe: AdamW
(weight decay 0.1 on matrices), batches of :data:`BATCH_SIZE` random windows
of :data:`SEQ_LEN` bytes from the **train** split, linear warm-up then cosine
decay to a tenth, gradients clipped at norm 1. The learning rate is chosen
from :data:`LR_GRID` by short runs (:data:`GRID_STEPS` steps) on a fixed
subset of the **validation** split; the chosen one then trains the model for
:data:`STEPS` steps (the draft: :data:`DRAFT_STEPS`, at the same rate), with
its validation loss every :data:`EVAL_EVERY` steps in the record. Only then
is the **test** split evaluated once: mean cross-entropy in nats per byte,
bits per byte and perplexity per byte. One thread throughout (the record
states the measured time of the stage on the machine that wrote it).

Checkpoints ``data/zoo/lm.pt`` and ``data/zoo/lm_draft.pt`` hold the zoo's
checkpoint dict (format, name, arch, state_dict) plus the spec's fields;
:func:`load_lm` rebuilds the model after checking the file's hash.
"""
from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data import load_text
from ..train import threads
from ..transformer import DRAFT_SPEC, LM_SPEC, TinyGPT, TransformerSpec, encode
from ..zoo import CHECKPOINT_FORMAT, TRANSFORMER_ARCH, load
from ..validation import Instance, Module, Options, PositiveInt, validate_params

SEED = 0
SEQ_LEN = 256
BATCH_SIZE = 16
LR_GRID = [1e-3, 3e-3, 1e-2]     # AdamW; bracketing the usual 3e-4 … 1e-2 of small char-level GPTs
GRID_STEPS = 40
STEPS = 1200
DRAFT_STEPS = 600
WARMUP = 10
EVAL_EVERY = 40
EVAL_WINDOWS = 48               # fixed validation windows for the curve and the grid
WEIGHT_DECAY = 0.1
NAMES = {"lm": LM_SPEC, "lm_draft": DRAFT_SPEC, "lm_draft_distilled": DRAFT_SPEC}   # the last: precompute lm_distill


def _windows(ids: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Non-overlapping windows of ``seq_len + 1`` bytes (input and shifted target)."""
    n = (ids.numel() - 1) // seq_len
    return torch.stack([ids[i * seq_len:i * seq_len + seq_len + 1] for i in range(n)])   # (n, seq_len + 1)


@validate_params(model=Module(), ids=Instance(torch.Tensor, "a 1-D tensor of byte ids"),
                 max_windows=PositiveInt(optional=True), batch_size=PositiveInt())
def loss_per_byte(model, ids: torch.Tensor, *, max_windows: int | None = None, batch_size: int = 32) -> float:
    """Mean next-byte cross-entropy (nats per byte) of ``model`` over non-overlapping windows of ``ids``.

    Each window has the model's context length; the first ``max_windows``
    windows are used (all by default).

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    seq_len = model.spec.context
    w = _windows(ids, seq_len)
    if max_windows is not None:
        w = w[:max_windows]
    total, count = 0.0, 0
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(w), batch_size):
            chunk = w[i:i + batch_size]
            logits, _ = model(chunk[:, :-1])
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1),
                                     reduction="sum").item()
            count += chunk[:, 1:].numel()
    return total / count


@validate_params(split=Options(("train", "val", "test")))
def split_ids(split: str) -> torch.Tensor:
    """The bytes of a split of the book's text (:func:`effdl.data.load_text`) as a 1-D int64 tensor.

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    return encode(load_text(split))


def _lr_at(step: int, steps: int, lr: float) -> float:
    if step < WARMUP:
        return lr * (step + 1) / WARMUP
    progress = (step - WARMUP) / max(1, steps - WARMUP)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))   # cosine to lr / 10


def _train(spec: TransformerSpec, train_ids, val_ids, *, lr: float, steps: int, curve: bool, loss_fn=None):
    """Train a fresh ``spec`` model; ``loss_fn(logits, batch)`` replaces the cross-entropy (distillation)."""
    torch.manual_seed(SEED)
    model = TinyGPT(spec)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))
    gen = torch.Generator().manual_seed(SEED)
    history = []
    for step in range(steps):
        model.train()
        starts = torch.randint(0, train_ids.numel() - SEQ_LEN - 1, (BATCH_SIZE,), generator=gen)
        batch = torch.stack([train_ids[s:s + SEQ_LEN + 1] for s in starts.tolist()])   # (batch, seq + 1)
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr)
        logits, _ = model(batch[:, :-1])
        if loss_fn is None:
            loss = F.cross_entropy(logits.reshape(-1, spec.vocab), batch[:, 1:].reshape(-1))
        else:
            loss = loss_fn(logits, batch)
        if not torch.isfinite(loss):
            return model, history, float("inf")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if curve and ((step + 1) % EVAL_EVERY == 0 or step + 1 == steps):
            history.append({"step": step + 1, "train_loss": round(loss.item(), 4),
                            "val_loss": round(loss_per_byte(model, val_ids, max_windows=EVAL_WINDOWS), 4)})
    return model, history, loss_per_byte(model, val_ids, max_windows=EVAL_WINDOWS)


def _save(model: TinyGPT, name: str, out_dir: Path) -> Path:
    path = Path(out_dir) / f"{name}.pt"
    blob = {"format": CHECKPOINT_FORMAT, "name": name, "arch": TRANSFORMER_ARCH,
            "spec": dataclasses.asdict(model.spec), "state_dict": model.state_dict()}
    tmp = path.with_suffix(".pt.tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
    return path


@validate_params(name=Options(tuple(NAMES)), data_dir=Instance((str, os.PathLike), "a folder path", optional=True))
def load_lm(name: str = "lm", *, data_dir: Path | None = None) -> TinyGPT:
    """The trained language model (``"lm"``), its draft (``"lm_draft"``) or distilled draft, in eval mode, hash checked.

    ``"lm_draft_distilled"`` is the draft trained on the model's logits
    (``effdl precompute lm_distill``, chapter 21).

    Taught in chapter 18, "Where the time goes in a transformer".
    """
    model = load(name, data_dir=data_dir)      # the zoo's loader checks the hash and rebuilds the spec
    return model.eval()


@validate_params(out_dir=Instance((str, os.PathLike), "a folder path"))
def run(out_dir) -> dict:
    """Choose the learning rate on validation, train the model and the draft, write checkpoints, return the record.

    Behind chapter 18, "Where the time goes in a transformer".
    """
    with threads(1):                  # one thread: the same arithmetic order on every machine
        return _run(Path(out_dir))


def _run(out_dir: Path) -> dict:
    start = time.perf_counter()
    train_ids, val_ids, test_ids = (split_ids(s) for s in ("train", "val", "test"))
    grid = []
    for lr in LR_GRID:
        t0 = time.perf_counter()
        _, _, val = _train(LM_SPEC, train_ids, val_ids, lr=lr, steps=GRID_STEPS, curve=False)
        grid.append({"lr": lr, "val_loss": round(val, 4), "seconds": round(time.perf_counter() - t0)})
        print(f"grid lr={lr}: val {val:.4f}", flush=True)
    best = min(grid, key=lambda row: (row["val_loss"], row["lr"]))     # a tie goes to the smaller rate
    models = {}
    for name, spec, steps in (("lm", LM_SPEC, STEPS), ("lm_draft", DRAFT_SPEC, DRAFT_STEPS)):
        t0 = time.perf_counter()
        model, curve, _ = _train(spec, train_ids, val_ids, lr=best["lr"], steps=steps, curve=True)
        seconds = time.perf_counter() - t0
        _save(model, name, out_dir)
        val = loss_per_byte(model, val_ids)
        test = loss_per_byte(model, test_ids)                              # evaluated once, after training
        models[name] = {"spec": dataclasses.asdict(spec), "params": sum(p.numel() for p in model.parameters()),
                        "steps": steps, "train_seconds": round(seconds), "curve": curve,
                        "val_loss": round(val, 4), "test_loss": round(test, 4),
                        "test_bits_per_byte": round(test / math.log(2), 4),
                        "test_ppl_per_byte": round(math.exp(test), 4),
                        "tokens_seen": steps * BATCH_SIZE * SEQ_LEN}
        print(f"{name}: val {val:.4f} test {test:.4f} ({seconds:.0f} s)", flush=True)
    return {"models": models, "lr_grid": grid, "lr": best["lr"], "seed": SEED, "threads": 1,
            "recipe": {"optimizer": "AdamW (betas 0.9, 0.95)", "weight_decay": WEIGHT_DECAY,
                       "batch_size": BATCH_SIZE, "seq_len": SEQ_LEN, "warmup": WARMUP,
                       "schedule": "linear warm-up, cosine to lr/10", "grad_clip": 1.0,
                       "grid_steps": GRID_STEPS, "eval_windows": EVAL_WINDOWS},
            "data": {s: len(load_text(s)) for s in ("train", "val", "test")},
            "selection": "learning rate by validation loss (first EVAL_WINDOWS windows) after GRID_STEPS steps; "
                         "test evaluated once per model",
            "stage_seconds": round(time.perf_counter() - start),
            "timing": "stage_seconds: one thread, on the machine that wrote the record (shared with other jobs)"}
