"""Calibration for post-training quantization: what each linear layer of a language model sees.

Taught in chapter 19. GPTQ, AWQ and SmoothQuant quantize a trained model
without training it again; what they need is a small sample of the inputs of
every ``nn.Linear`` on real text, taken with forward hooks:

- :func:`calibration_windows` carves fixed, seeded windows (by default 32 of
  256 bytes) out of a token stream — the **train** split in the book, never
  the text the perplexity is measured on;
- :func:`capture_inputs` runs the model on them and returns, for the named
  layers, the rows ``X`` (tokens × input width) they received;
- :func:`hessian` turns ``X`` into GPTQ's ``H = 2·XᵀX / n`` (the Hessian of
  the layer's squared output error with respect to one row of weights);
- :func:`block_stages` and :func:`inputs_block_by_block` walk a model one
  transformer block at a time, capturing each block's inputs on the model as
  it is *then* — after the earlier blocks were compressed — the order GPTQ,
  AWQ (chapter 19), SparseGPT and Wanda (chapter 20) all use;
- :func:`inverse_hessian_factor` damps ``H`` and returns the upper Cholesky
  factor of its inverse, and :func:`obs_sweep` runs Optimal Brain Surgeon's
  column-by-column update with it: GPTQ (chapter 19) rounds each column,
  SparseGPT (chapter 20) zeroes some of its weights, the sweep is the same;
- :func:`activation_stats` keeps, for every linear layer, the largest and the
  mean magnitude of each input channel (``max|x_j|``, ``mean|x_j|``): the
  outliers SmoothQuant migrates and the salient channels AWQ protects.
"""
from __future__ import annotations

import torch
from torch import nn

from ..validation import Callable, Instance, Interval, ListOf, Module, PositiveInt, Seed, Tensor, Text, validate_params

WINDOWS = Tensor(dtype="int", ndim=2)


@validate_params(model=Module())
def linear_names(model: nn.Module) -> list[str]:
    """Names of every ``nn.Linear`` of ``model`` in module order (TinyGPT: q, k, v, out, mlp.0, mlp.2 per block).

    Taught in chapter 19, "Quantizing a language model".
    """
    return [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]


@validate_params(ids=Tensor(dtype="int", ndim=1), n_windows=PositiveInt(), seq_len=PositiveInt(), seed=Seed())
def calibration_windows(ids: torch.Tensor, n_windows: int = 32, seq_len: int = 256, *, seed: int = 0) -> torch.Tensor:
    """``n_windows`` windows of ``seq_len`` token ids at seeded random starts in ``ids``: shape (n_windows, seq_len).

    Taught in chapter 19, "Quantizing a language model".
    """
    if ids.numel() < seq_len:
        raise ValueError(f"calibration_windows: ids must hold at least seq_len ({seq_len}) tokens; "
                         f"got {ids.numel()}.")
    gen = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, ids.numel() - seq_len + 1, (n_windows,), generator=gen)
    return torch.stack([ids[s:s + seq_len] for s in starts.tolist()]).long()


def _hooked(model: nn.Module, names, on_input) -> None:
    """Run ``on_input(name, x)`` with the 2-D input (tokens, width) of each named linear during forwards."""
    modules = dict(model.named_modules())
    missing = [n for n in names if not isinstance(modules.get(n), nn.Linear)]
    if missing:
        raise ValueError(f"capture_inputs: names must name nn.Linear layers of the model; got {missing!r}.")
    handles = [modules[n].register_forward_hook(
        lambda mod, args, out, n=n: on_input(n, args[0].detach().reshape(-1, args[0].shape[-1])))
        for n in names]
    return handles


def _run(model: nn.Module, windows: torch.Tensor, batch_size: int = 8) -> None:
    model.eval()
    with torch.inference_mode():
        for i in range(0, len(windows), batch_size):
            model(windows[i:i + batch_size])


@validate_params(model=Module(), windows=WINDOWS, names=ListOf(Text(), optional=True))
def capture_inputs(model: nn.Module, windows: torch.Tensor, names: list[str] | None = None) -> dict:
    """The inputs each named linear layer receives on ``windows``: ``{name: X}``, X of shape (tokens, in_features).

    ``names`` default to every linear layer (:func:`linear_names`). The
    model is run in eval mode, without gradients.

    Taught in chapter 19, "Quantizing a language model".
    """
    names = linear_names(model) if names is None else list(names)
    rows: dict[str, list] = {n: [] for n in names}
    handles = _hooked(model, names, lambda n, x: rows[n].append(x.clone()))
    try:
        _run(model, windows)
    finally:
        for h in handles:
            h.remove()
    return {n: torch.cat(r) for n, r in rows.items()}


@validate_params(x=Tensor(ndim=2))
def hessian(x: torch.Tensor) -> torch.Tensor:
    """GPTQ's ``H = 2·XᵀX / n`` (in_features × in_features, float64) of a layer's inputs ``x`` (n, in_features).

    For one output row ``w`` the squared output error over the calibration
    tokens is ``‖X·(w − ŵ)‖² / n = ½ (w − ŵ)ᵀ H (w − ŵ)``.

    Taught in chapter 19, "Quantizing a language model".
    """
    x = x.double()
    return 2.0 * x.T @ x / x.shape[0]


@validate_params(names=ListOf(Text()))
def block_stages(names: list[str]) -> list[list[str]]:
    """Linear-layer names grouped by transformer block (``blocks.i.…``), in order; other names form their own stage.

    >>> block_stages(["blocks.0.attn.q", "blocks.0.mlp.0", "blocks.1.attn.q"])
    [['blocks.0.attn.q', 'blocks.0.mlp.0'], ['blocks.1.attn.q']]

    Taught in chapter 20, "Pruning a language model".
    """
    out: dict[str, list[str]] = {}
    for n in names:
        parts = n.split(".")
        out.setdefault(".".join(parts[:2]) if len(parts) > 2 else "", []).append(n)
    return list(out.values())


@validate_params(model=Module(), windows=WINDOWS, names=ListOf(Text(), optional=True))
def inputs_block_by_block(model: nn.Module, windows: torch.Tensor, names: list[str] | None = None):
    """Yield ``{name: X}`` for one block's linear layers at a time, captured when the block is reached.

    A caller that replaces a block's weights before asking for the next
    block gets that next block's inputs on the already-compressed model
    (errors of earlier layers are then seen, and partly corrected, by later
    ones). ``names`` default to every linear layer.

    Taught in chapter 20, "Pruning a language model".
    """
    for stage in block_stages(linear_names(model) if names is None else list(names)):
        yield capture_inputs(model, windows, stage)


@validate_params(h=Tensor(ndim=2), damp=Interval(float, 0, None))
def inverse_hessian_factor(h: torch.Tensor, damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """``(U, dead)``: the upper Cholesky factor ``U`` of ``(H + λI)⁻¹`` (``UᵀU = (H + λI)⁻¹``), float64.

    ``λ = damp · mean(diag H)`` (the papers' 1 %); inputs that are always zero
    (``H_jj = 0``, returned as the bool ``dead``) get ``H_jj = 1`` first.
    Row ``q`` of ``U`` from column ``q`` on is what GPTQ and SparseGPT
    subtract, scaled by the error made at column ``q``, from the columns not
    yet processed; ``U_qq² = [H_F⁻¹]_qq`` for the set ``F`` of columns from
    ``q`` on.

    Taught in chapter 20, "Pruning a language model".
    """
    if h.shape[0] != h.shape[1]:
        raise ValueError(f"inverse_hessian_factor: h must be square; got {tuple(h.shape)}.")
    h = h.double().clone()
    dead = torch.diag(h) == 0                                               # inputs that are always 0
    h[dead, dead] = 1.0
    h += damp * torch.diag(h).mean() * torch.eye(h.shape[0], dtype=h.dtype)  # λ = damp · mean diag(H)
    try:
        return torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True), dead
    except RuntimeError as err:                                             # torch.linalg.LinAlgError
        raise ValueError(f"inverse_hessian_factor: h must be positive definite after damping (damp={damp}); "
                         f"got a matrix Cholesky refuses ({err}).") from None


@validate_params(weight=Tensor(ndim=2), h=Tensor(ndim=2), target=Callable(), choose=Callable(optional=True),
                 step=PositiveInt(optional=True), block_size=PositiveInt(), damp=Interval(float, 0, None))
def obs_sweep(weight: torch.Tensor, h: torch.Tensor, target, *, choose=None, step: int | None = None,
              block_size: int = 128, damp: float = 0.01) -> torch.Tensor:
    """Optimal Brain Surgeon's sweep over the columns of ``weight``, left to right, all rows at once (float64).

    At column ``q``, ``target(q, w_q)`` gets the column (rows,) as updated so
    far and returns what it must become (GPTQ: its rounded values; SparseGPT:
    the column with its pruned weights zeroed); the columns not yet visited
    then move to cancel the error,
    ``W[:, q+1:] −= (w_q − ŵ_q)/U_qq · U[q, q+1:]`` with ``U`` from
    :func:`inverse_hessian_factor` (``h``, ``damp``). Every ``step`` columns
    (from column 0), ``choose(q, ahead, u_diag)`` is called first with the
    weights of columns ``q … q+step−1`` as updated so far (rows, ≤ step) and
    ``diag(U)`` over them: where GPTQ picks a group's grid and SparseGPT a
    mask. Updates inside a block of ``block_size`` columns are applied at
    once, those to later columns once per block (lazy batches: the same
    result up to rounding). Returns the swept weight, each column its target.

    Taught in chapter 20, "Pruning a language model".
    """
    if h.shape != (weight.shape[1], weight.shape[1]):
        raise ValueError(f"obs_sweep: h must be in_features × in_features ({weight.shape[1]}); got {tuple(h.shape)}.")
    if (choose is None) != (step is None):
        raise ValueError(f"obs_sweep: choose and step must be given together; got step={step!r}.")
    w = weight.double().clone()                                             # (rows, cols)
    cols = w.shape[1]
    hinv, dead = inverse_hessian_factor(h, damp)                            # U, UᵀU = (H + λI)⁻¹
    w[:, dead] = 0.0
    u_diag = torch.diag(hinv)
    for b0 in range(0, cols, block_size):
        b1 = min(b0 + block_size, cols)
        w1 = w[:, b0:b1].clone()                                            # the block, updated eagerly
        err = torch.zeros_like(w1)
        hb = hinv[b0:b1, b0:b1]
        for i in range(b1 - b0):
            col = b0 + i
            if step is not None and col % step == 0:                        # choose for columns col:end from
                end = min(col + step, cols)                                 # the weights as updated so far (the
                tail = w[:, b1:end] - err[:, :i] @ hinv[b0:col, b1:end]     # lazy update, applied early)
                choose(col, torch.cat([w1[:, i:i + step], tail], dim=1), u_diag[col:end])
            wq = target(col, w1[:, i])                                      # ŵ_q (rows,)
            e = (w1[:, i] - wq) / hb[i, i]                                  # (w_q − ŵ_q) / U_qq
            w1[:, i:] -= e[:, None] * hb[i, i:][None, :]                    # OBS update inside the block
            w1[:, i] = wq
            err[:, i] = e
        w[:, b0:b1] = w1
        w[:, b1:] -= err @ hinv[b0:b1, b1:]                                 # lazy update of later columns
    return w


@validate_params(model=Module(), windows=WINDOWS)
def activation_stats(model: nn.Module, windows: torch.Tensor) -> dict:
    """Per linear layer and input channel: ``{"max_abs": (in,), "mean_abs": (in,)}`` over ``windows``.

    ``max_abs[j] = max |x_j|`` over every calibration token (SmoothQuant's
    statistic), ``mean_abs[j]`` the mean (AWQ's). Nothing but these running
    statistics is kept, so every layer can be measured in one pass.

    Taught in chapter 19, "Quantizing a language model".
    """
    names = linear_names(model)
    stats = {n: {"max_abs": None, "sum_abs": None, "count": 0} for n in names}

    def update(n, x):
        a = x.abs().double()
        s = stats[n]
        m = a.amax(dim=0)
        s["max_abs"] = m if s["max_abs"] is None else torch.maximum(s["max_abs"], m)
        s["sum_abs"] = a.sum(dim=0) if s["sum_abs"] is None else s["sum_abs"] + a.sum(dim=0)
        s["count"] += a.shape[0]

    handles = _hooked(model, names, update)
    try:
        _run(model, windows)
    finally:
        for h in handles:
            h.remove()
    return {n: {"max_abs": s["max_abs"].float(), "mean_abs": (s["sum_abs"] / s["count"]).float()}
            for n, s in stats.items()}


@validate_params(stats=Instance(dict, "a dict from activation_stats"))
def outlier_summary(stats: dict) -> list[dict]:
    """One row per layer: the largest channel max, the median channel max and their ratio (how outlying).

    ``ratio = max_j max|x_j| / median_j max|x_j|``; large language models
    show ratios near 100 in a few fixed channels (Dettmers et al. 2022; Xiao
    et al. 2023), a ratio near 1 means no outlier channel.

    Taught in chapter 19, "Quantizing a language model".
    """
    rows = []
    for name, s in stats.items():
        m = s["max_abs"]
        top = int(m.argmax())
        med = float(m.median())
        rows.append({"layer": name, "in_features": int(m.numel()), "max": float(m.max()), "median": med,
                     "ratio": float(m.max()) / med if med > 0 else float("inf"), "top_channel": top})
    return rows
