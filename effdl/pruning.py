"""Pruning: magnitude masks, masks that survive training, schedules, sensitivity,
channel pruning and size accounting.

Taught in chapter 2 ("Pruning"); reused by Deep Compression (chapters 3–4)
and DSD training. Implements Han, Pool, Tran & Dally, *Learning both Weights
and Connections for Efficient Neural Networks* (NIPS 2015): prune the
smallest-magnitude weights — by a target sparsity, or below a threshold of
``quality × std(weights)`` of the layer — retrain the rest with the learning
rate divided by ten, and repeat.

Design (after ``torch.nn.utils.prune``): computing a mask is a pure function
of a tensor (:func:`magnitude_mask`, :func:`threshold_mask`,
:func:`global_magnitude_masks`); applying it is separate
(:func:`apply_masks`) and uses a reparametrisation, ``weight = original ⊙
mask``, so every forward pass sees exact zeros at pruned positions and their
gradients are zero: training cannot revive them. :func:`remove_masks` makes
the pruning permanent. ``mask`` is True where a weight is kept; ``sparsity`` is
the fraction of zeros, ``density`` the fraction kept.

Longer than 600 lines because the masks, their reparametrisation, the schedules, channel pruning
and the size accounting share one definition of a prunable weight (chapter 2).
"""
from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ._validate import check_type
from .data import Split
from .train import evaluate, fit, progress
from .validation import (Bool, Fraction, Instance, Interval, ListOf, Module, OneOf, Options, PositiveInt, Seed, Tensor,
                         check_part, validate_params)


PRUNABLE_TYPES = (nn.Linear, nn.Conv2d, nn.LSTM)
WEIGHT = Tensor(convert=False)                      # a floating-point torch.Tensor, finite, non-empty
SPARSITY = Fraction()
SPLIT = Instance(Split, "an effdl.data.Split")


# ------------------------------------------------------------------ pure masks
@validate_params(numel=Interval(int, 0, None), sparsity=SPARSITY)
def n_to_prune(numel: int, sparsity: float) -> int:
    """How many of ``numel`` weights a ``sparsity`` prunes: ``round(sparsity · numel)``,
    the same rule as ``torch.nn.utils.prune`` for a fractional amount.

    Behind chapter 02, "Pruning".
    """
    return int(round(sparsity * numel))


@validate_params(weight=WEIGHT, sparsity=SPARSITY)
def magnitude_mask(weight: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep-mask pruning the ``round(sparsity · numel)`` smallest-|w| entries of ``weight``.

    Ties at the threshold are broken by ``torch.topk``, as in
    ``torch.nn.utils.prune.l1_unstructured``, so the count is exact.
    Returns a bool tensor of ``weight``'s shape (True = kept).

    Taught in chapter 02, "Pruning".
    """
    weight = weight.detach()
    k = n_to_prune(weight.numel(), sparsity)
    mask = torch.ones(weight.numel(), dtype=torch.bool, device=weight.device)
    if k:
        # indices of the k smallest |w|  (numel,) → (k,)
        drop = torch.topk(weight.abs().flatten(), k, largest=False).indices
        mask[drop] = False
    return mask.view_as(weight)


@validate_params(weight=WEIGHT, quality=Interval(float, 0, None, closed="neither"))
def threshold_mask(weight: torch.Tensor, quality: float) -> torch.Tensor:
    """Han et al.'s rule: keep |w| > quality × std(w) (std over the layer's weights).

    Taught in chapter 02, "Pruning".
    """
    weight = weight.detach()
    return weight.abs() > quality * weight.float().std()


@validate_params(weights=Instance(dict, "a dict of name → tensor"), sparsity=SPARSITY)
def global_magnitude_masks(weights: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    """One magnitude ranking across several tensors: prune the globally smallest |w|.

    Layers with small weights lose more than layers with large ones; exactly
    ``round(sparsity · total)`` entries are pruned overall.

    Behind chapter 02, "Pruning".
    """
    if not weights:
        raise ValueError("global_magnitude_masks: weights must name at least one tensor; got {}.")
    weights = {n: WEIGHT.check(f"weights[{n!r}]", w).detach() for n, w in weights.items()}
    flat = torch.cat([w.abs().flatten() for w in weights.values()])
    k = n_to_prune(flat.numel(), sparsity)
    keep = torch.ones(flat.numel(), dtype=torch.bool)
    if k:
        keep[torch.topk(flat, k, largest=False).indices] = False
    masks, start = {}, 0
    for name, w in weights.items():
        masks[name] = keep[start:start + w.numel()].view_as(w)
        start += w.numel()
    return masks


# ------------------------------------------------------------ module plumbing
@validate_params(model=Module())
def prunable_parameters(model: nn.Module) -> dict[str, torch.Tensor]:
    """The weight matrices pruning acts on: ``{"fc1.weight": tensor, …}``.

    Weights (not biases) of Linear and Conv2d layers, and the input-to-hidden
    and hidden-to-hidden matrices of LSTMs. The tensors are the *effective*
    weights (masked if a mask is applied).

    Taught in chapter 02, "Pruning".
    """
    out = {}
    for mod_name, module in model.named_modules():
        if isinstance(module, PRUNABLE_TYPES):
            for p_name in _weight_names(module):
                out[f"{mod_name}.{p_name}" if mod_name else p_name] = getattr(module, p_name)
    if not out:
        raise ValueError(f"model must contain a Linear, Conv2d or LSTM layer to prune; got {type(model).__name__}.")
    return out


def _weight_names(module: nn.Module) -> list[str]:
    if isinstance(module, nn.LSTM):
        return [n for n in module._flat_weights_names if n.startswith("weight")]
    return ["weight"]


def _split(name: str) -> tuple[str, str]:
    mod, _, param = name.rpartition(".")
    return mod, param


class _Mask(nn.Module):
    """Parametrisation ``weight = original ⊙ mask`` (mask a bool buffer, saved in state dicts)."""

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", mask)

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return original * self.mask


def _mask_module(model: nn.Module, name: str) -> _Mask | None:
    mod_name, param = _split(name)
    module = model.get_submodule(mod_name)
    if parametrize.is_parametrized(module, param):
        for p in module.parametrizations[param]:
            if isinstance(p, _Mask):
                return p
    return None


@validate_params(model=Module(), masks=Instance(dict, "a dict of weight name → bool tensor"))
def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> nn.Module:
    """Attach keep-masks to ``model`` in place (an existing mask is AND-ed: pruned stays pruned).

    ``masks`` maps names from :func:`prunable_parameters` to bool tensors of
    the weight's shape. Returns ``model``.

    Behind chapter 02, "Pruning".
    """
    params = prunable_parameters(model)
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"masks must name prunable weights {sorted(params)}; got {name!r}.")
        check_type(f"masks[{name!r}]", mask, torch.Tensor, "a bool tensor")
        if mask.dtype != torch.bool or mask.shape != params[name].shape:
            raise ValueError(f"masks[{name!r}] must be a bool tensor of shape {tuple(params[name].shape)}; "
                             f"got {mask.dtype} {tuple(mask.shape)}.")
        existing = _mask_module(model, name)
        mask = mask.to(params[name].device)
        if existing is not None:
            existing.mask &= mask
        else:
            mod_name, param = _split(name)
            parametrize.register_parametrization(model.get_submodule(mod_name), param, _Mask(mask.clone()),
                                                 unsafe=True)
    return model


@validate_params(model=Module())
def masks_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """The keep-masks attached to ``model`` (weights without a mask are absent).

    Behind chapter 02, "Pruning".
    """
    out = {}
    for name in prunable_parameters(model):
        m = _mask_module(model, name)
        if m is not None:
            out[name] = m.mask.clone()
    return out


@validate_params(model=Module())
def remove_masks(model: nn.Module) -> nn.Module:
    """Make pruning permanent: plain parameters holding the masked values (zeros stay).

    Behind chapter 02, "Pruning".
    """
    for name in prunable_parameters(model):
        mod_name, param = _split(name)
        module = model.get_submodule(mod_name)
        if parametrize.is_parametrized(module, param):
            # torch deletes the weight property from the module's generated class, which
            # deep copies share: give this module a class of its own first, so removing
            # the masks of a copy leaves the original (and other copies) intact.
            cls = module.__class__
            module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            parametrize.remove_parametrizations(module, param, leave_parametrized=True)
    return model


QUALITY = Interval(float, 0, None, closed="neither")


def _part(what: str, constraint, value, layer: str):
    """``value`` itself, or its entry for ``layer`` when it is a dict per layer (checked)."""
    if not isinstance(value, dict):
        return value
    if layer not in value:
        raise ValueError(f"prune: {what} must give a value for every pruned layer; {layer!r} is missing.")
    return check_part("prune", constraint, f"{what}[{layer!r}]", value[layer])


PRUNE_PARAMS = dict(
    model=Module(), sparsity=OneOf(Fraction(), Instance((dict, type(None)), "a dict of layer → sparsity")),
    quality=OneOf(Interval(float, 0, None, closed="neither", optional=True), Instance(dict, "a dict of layer → quality")),
    scope=Options(("layer", "global")), layers=ListOf(Instance(str, "a weight name"), optional=True))


@validate_params(**PRUNE_PARAMS)
def prune(model: nn.Module, *, sparsity: float | dict[str, float] | None = None,
          quality: float | dict[str, float] | None = None, scope: str = "layer",
          layers: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Compute magnitude masks for ``model`` and apply them in place; return the masks.

    Give exactly one of ``sparsity`` (fraction to prune) or ``quality`` (Han
    et al.'s threshold ``quality × std``); either may be a dict per layer.
    ``scope="global"`` ranks all chosen layers together (``sparsity`` only).
    ``layers`` limits pruning to those weight names (default: all prunable).
    Masks are computed on the current effective weights, so calling again
    prunes further.

    Taught in chapter 02, "Pruning".
    """
    if (sparsity is None) == (quality is None):
        raise ValueError(f"give exactly one of sparsity or quality; got sparsity={sparsity!r}, quality={quality!r}.")
    params = prunable_parameters(model)
    names = list(params) if layers is None else list(layers)
    for n in names:
        if n not in params:
            raise ValueError(f"layers must be names from {sorted(params)}; got {n!r}.")
    if scope == "global":
        if not isinstance(sparsity, (int, float)) or isinstance(sparsity, bool):
            raise TypeError(f"sparsity must be one number with scope='global'; got {sparsity!r}.")
        masks = global_magnitude_masks({n: params[n] for n in names}, sparsity)
    else:
        masks = {}
        for n in names:
            if sparsity is not None:
                s = _part("sparsity", SPARSITY, sparsity, n)
                masks[n] = magnitude_mask(params[n], s)
            else:
                q = _part("quality", QUALITY, quality, n)
                masks[n] = threshold_mask(params[n], q)
    apply_masks(model, masks)
    return masks


@validate_params(**PRUNE_PARAMS)
def pruned_copy(model: nn.Module, *, sparsity: float | dict[str, float] | None = None,
                quality: float | dict[str, float] | None = None, scope: str = "layer",
                layers: list[str] | None = None) -> nn.Module:
    """A deep copy of ``model`` pruned by :func:`prune` (same keywords).

    Taught in chapter 02, "Pruning".
    """
    clone = copy.deepcopy(model)
    prune(clone, sparsity=sparsity, quality=quality, scope=scope, layers=layers)
    return clone


# --------------------------------------------------------------- accounting
@dataclass(frozen=True)
class LayerSparsity:
    """One prunable weight of :func:`sparsity_report`: size, non-zeros, dense fp32 and CSR bytes.

    Behind chapter 02, "Pruning".
    """
    name: str
    numel: int
    nonzeros: int
    dense_bytes: int        # fp32
    sparse_bytes: int       # CSR: fp32 value + column index per non-zero, one row pointer per row

    @property
    def density(self) -> float:
        return self.nonzeros / self.numel

    @property
    def sparsity(self) -> float:
        return 1 - self.density


@validate_params(rows=PositiveInt(), cols=PositiveInt(), nonzeros=Interval(int, 0, None),
                 value_bits=Interval(int, 1, 64))
def csr_bytes(rows: int, cols: int, nonzeros: int, *, value_bits: int = 32) -> int:
    """Bytes of a CSR matrix: values, column indices (16-bit if cols ≤ 65,536 else 32-bit),
    and ``rows + 1`` 32-bit row pointers.

    Behind chapter 02, "Pruning".
    """
    if nonzeros > rows * cols:
        raise ValueError(f"csr_bytes: nonzeros must be at most rows × cols = {rows * cols}; got {nonzeros}.")
    index_bits = 16 if cols <= 2 ** 16 else 32
    return math.ceil(nonzeros * (value_bits + index_bits) / 8) + 4 * (rows + 1)


@validate_params(weight=Tensor(convert=False, ndim=2), batch_size=PositiveInt(), repeats=PositiveInt(),
                 backend=Options(("torch", "scipy")),
                 device=Instance((torch.device, str), "a torch.device or a device name", optional=True), seed=Seed())
def matvec_times(weight: torch.Tensor, *, batch_size: int = 1, repeats: int = 200, backend: str = "torch",
                 device: torch.device | str | None = None, seed: int = 0) -> dict:
    """Best-of-``repeats`` seconds of ``weight @ x`` stored dense vs CSR.

    ``backend="torch"``: a dense tensor vs ``torch.sparse_csr`` (on ``device``);
    ``backend="scipy"``: a numpy array vs ``scipy.sparse.csr_array`` (CPU).

    Deep Compression's speed claim is for fully connected layers at batch 1,
    where a mat-vec reads every weight once: a pruned layer stored sparse
    reads fewer bytes. ``weight`` is (out, in); ``x`` is (in, batch_size),
    random, seeded. Returns ``dense_s``, ``sparse_s``, ``speedup`` (dense ÷
    sparse) and ``density``. Both results are checked to agree.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """

    device = torch.device("cpu") if device is None else torch.device(device)
    if backend == "scipy" and device.type != "cpu":
        raise ValueError(f"device must be the CPU for backend='scipy'; got {device!r}.")
    gen = torch.Generator().manual_seed(seed)
    dense = weight.detach().to(device=device, dtype=torch.float32).contiguous()
    x = torch.randn(dense.shape[1], batch_size, generator=gen).to(device)
    if backend == "scipy":
        import scipy.sparse  # deferred: only the timing comparison needs scipy

        dense, x = dense.numpy(), x.numpy()
        sparse = scipy.sparse.csr_array(dense)
    else:

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            sparse = dense.to_sparse_csr()

    def once(fn) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    with torch.no_grad():
        ref, got = np.asarray((dense @ x).cpu() if backend == "torch" else dense @ x), \
            np.asarray((sparse @ x).cpu() if backend == "torch" else sparse @ x)
        if not np.allclose(ref, got, rtol=1e-4, atol=1e-5 * (1 + float(np.abs(ref).max()))):   # float32 sum order
            raise AssertionError("dense and CSR mat-vec disagree")
        # interleaved, best of `repeats`: both see the same machine state, and the minimum is the
        # estimate least disturbed by other processes
        times = [(once(lambda: dense @ x), once(lambda: sparse @ x)) for _ in range(repeats)]
    dense_s, sparse_s = min(t[0] for t in times), min(t[1] for t in times)
    return {"dense_s": dense_s, "sparse_s": sparse_s, "speedup": dense_s / sparse_s,
            "density": float((dense != 0).sum()) / dense.size if backend == "scipy"
            else float((dense != 0).float().mean())}


@validate_params(model=Module())
def sparsity_report(model: nn.Module) -> list[LayerSparsity]:
    """Per prunable weight: size, non-zeros, dense fp32 bytes and CSR bytes.

    A weight of shape (out, …) is stored as an ``out × rest`` matrix (conv
    filters flattened), as sparse libraries and Deep Compression do.

    Behind chapter 02, "Pruning".
    """
    rows = []
    for name, w in prunable_parameters(model).items():
        w = w.detach()
        out_f = w.shape[0]
        cols = w.numel() // out_f
        nnz = int(torch.count_nonzero(w))
        rows.append(LayerSparsity(name, w.numel(), nnz, 4 * w.numel(), csr_bytes(out_f, cols, nnz)))
    return rows


@validate_params(model=Module())
def nonzero_parameters(model: nn.Module) -> int:
    """Non-zero parameters of ``model``, weights and biases together (masks applied).

    Behind chapter 02, "Pruning".
    """
    effective = prunable_parameters(model)
    others = [p for n, p in model.named_parameters()
              if "parametrizations." not in n and n not in effective]  # originals are counted masked
    return sum(int(torch.count_nonzero(p.detach())) for p in [*effective.values(), *others])


@validate_params(model=Module())
def masks_from_zeros(model: nn.Module) -> dict[str, torch.Tensor]:
    """Keep-masks recovered from a saved pruned model: True where a prunable weight is non-zero.

    Taught in chapter 02, "Pruning".
    """
    return {name: w.detach() != 0 for name, w in prunable_parameters(model).items()}


@validate_params(model=Module())
def kept_fraction(model: nn.Module) -> float:
    """Fraction of prunable weights that are non-zero (density over all prunable layers).

    Taught in chapter 02, "Pruning".
    """
    report = sparsity_report(model)
    return sum(r.nonzeros for r in report) / sum(r.numel for r in report)


# -------------------------------------------------------------- experiments
@validate_params(model=Module(), split=SPLIT, sparsities=ListOf(SPARSITY),
                 layers=ListOf(Instance(str, "a weight name"), optional=True))
def sensitivity(model: nn.Module, split: Split, sparsities: list[float],
                layers: list[str] | None = None) -> dict[str, list[tuple[float, float]]]:
    """Accuracy (%) on ``split`` when each layer alone is pruned to each sparsity, no retraining.

    Taught in chapter 02, "Pruning".
    """
    names = list(prunable_parameters(model)) if layers is None else layers
    out = {}
    for name in progress(names, desc="layers"):
        out[name] = [(s, evaluate(pruned_copy(model, sparsity=s, layers=[name]), split))
                     for s in sparsities]
    return out


@dataclass
class PruneStep:
    """One step of :func:`iterative_prune`: the target sparsity and validation accuracies after it.

    Behind chapter 02, "Pruning".
    """
    sparsity: float          # target fraction pruned after this step
    kept_fraction: float     # measured over all prunable weights
    acc_pruned: float        # on val, right after pruning
    acc_retrained: float     # on val, after retraining


@validate_params(model=Module(), train=SPLIT, val=SPLIT, sparsities=ListOf(SPARSITY), epochs=Interval(int, 0, None),
                 lr=Interval(float, 0, None, closed="neither"), scope=Options(("layer", "global")), seed=Seed(),
                 batch_size=PositiveInt())
def iterative_prune(model: nn.Module, train: Split, val: Split, sparsities: list[float], *,
                    epochs: int, lr: float, scope: str = "layer", seed: int = 0,
                    batch_size: int = 64) -> list[PruneStep]:
    """Prune → retrain, repeated: prune ``model`` in place to each sparsity in turn.

    Han et al.'s schedule: each step prunes to the next (increasing) target
    sparsity and retrains the surviving weights for ``epochs`` at ``lr``
    (the paper uses 1/10 of the original learning rate). The model keeps its
    best-validation epoch of each retraining. One-shot pruning is the
    special case of a single step.

    Behind chapter 02, "Pruning".
    """
    if any(b < a for a, b in zip(sparsities, sparsities[1:])):
        raise ValueError(f"iterative_prune: sparsities must be increasing; got {sparsities!r}.")
    steps = []
    for i, s in enumerate(progress(sparsities, desc="prune steps")):
        prune(model, sparsity=s, scope=scope)
        acc_pruned = evaluate(model, val)
        fit(model, train, epochs=epochs, lr=lr, val=val, seed=seed + i, batch_size=batch_size,
            show_progress=False)
        steps.append(PruneStep(s, kept_fraction(model), acc_pruned, evaluate(model, val)))
    return steps


# ------------------------------------------------------- structured pruning
@validate_params(conv=Instance(nn.Conv2d, "a torch.nn.Conv2d"))
def filter_norms(conv: nn.Conv2d) -> torch.Tensor:
    """L1 norm of each output filter, (out_channels,) — the ranking channel pruning uses.

    Behind chapter 02, "Pruning".
    """
    return conv.weight.detach().abs().flatten(1).sum(1)


@validate_params(model=Module(), layer=Instance(str, "the name of a Conv2d layer"), keep=PositiveInt(),
                 next_layer=Instance(str, "the name of the layer that consumes layer's output"))
def prune_channels(model: nn.Module, layer: str, keep: int, next_layer: str) -> nn.Module:
    """A smaller copy of ``model``: conv ``layer`` keeps its ``keep`` largest-L1 filters.

    The consumer ``next_layer`` (a Conv2d, or the Linear after a flatten) loses
    the matching input channels. Unlike fine-grained pruning this shrinks the
    dense tensors, so every library runs it faster, but removes whole filters.

    Taught in chapter 02, "Pruning".
    """
    model = copy.deepcopy(model)
    conv, nxt = _submodule(model, "layer", layer), _submodule(model, "next_layer", next_layer)
    if not isinstance(conv, nn.Conv2d):
        raise ValueError(f"prune_channels: layer must name a Conv2d layer; got {layer!r}, a {type(conv).__name__}.")
    if keep > conv.out_channels:
        raise ValueError(f"prune_channels: keep must be at most {layer}'s {conv.out_channels} channels; got {keep}.")
    consumer = _consumer(model, layer)
    if next_layer == layer or consumer not in (next_layer, _UNKNOWN):
        raise ValueError(f"prune_channels: next_layer must name the layer that consumes {layer}'s output "
                         f"({consumer!r}); got {next_layer!r}.")
    order = torch.argsort(filter_norms(conv), descending=True)[:keep].sort().values
    new = nn.Conv2d(conv.in_channels, keep, conv.kernel_size, conv.stride, conv.padding,
                    bias=conv.bias is not None)
    with torch.no_grad():
        new.weight.copy_(conv.weight[order])
        if conv.bias is not None:
            new.bias.copy_(conv.bias[order])
    _set(model, layer, new)
    with torch.no_grad():
        if isinstance(nxt, nn.Conv2d):
            smaller = nn.Conv2d(keep, nxt.out_channels, nxt.kernel_size, nxt.stride, nxt.padding,
                                bias=nxt.bias is not None)
            smaller.weight.copy_(nxt.weight[:, order])
        elif isinstance(nxt, nn.Linear):
            per_channel = nxt.in_features // conv.out_channels  # spatial positions per channel
            if per_channel * conv.out_channels != nxt.in_features:
                raise ValueError(f"next_layer must take {conv.out_channels} channels × positions as input; "
                                 f"got in_features={nxt.in_features}.")
            cols = (order[:, None] * per_channel + torch.arange(per_channel)).flatten()
            smaller = nn.Linear(keep * per_channel, nxt.out_features, bias=nxt.bias is not None)
            smaller.weight.copy_(nxt.weight[:, cols])
        else:
            raise TypeError(f"next_layer must name a Conv2d or Linear; got {type(nxt).__name__}.")
        if nxt.bias is not None:
            smaller.bias.copy_(nxt.bias)
    _set(model, next_layer, smaller)
    return model


_UNKNOWN = object()


def _submodule(model: nn.Module, what: str, name: str) -> nn.Module:
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = [n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
        raise ValueError(f"prune_channels: {what} must name a layer of the model {names}; got {name!r}.") from None


def _consumer(model: nn.Module, layer: str) -> str | None:
    """The Linear or Conv2d layer that runs next after ``layer`` in a forward pass (by hooks), or None."""
    order: list[str] = []
    names = {m: n for n, m in model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))}
    handles = [m.register_forward_hook(lambda mod, i, o: order.append(names[mod])) for m in names]
    first = next(iter(names))
    shape = (1, first.in_channels, 28, 28) if isinstance(first, nn.Conv2d) else (1, first.in_features)
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(shape))
    except RuntimeError:             # the model wants another input size: the order is unknown
        return _UNKNOWN
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    i = order.index(layer) if layer in order else -1
    return order[i + 1] if 0 <= i < len(order) - 1 else None


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


@validate_params(model=Module(), input_shape=ListOf(PositiveInt()), nonzero_only=Bool())
def count_macs(model: nn.Module, input_shape=(1, 1, 28, 28), *, nonzero_only: bool = False) -> int:
    """Multiply-accumulates of one forward pass of the Linear and Conv2d layers.

    Counted with forward hooks from each layer's actual input and output
    shapes (tests check it against torch's FlopCounterMode). With
    ``nonzero_only`` a layer's MACs are scaled by its weight density: the
    work sparse hardware such as EIE does, skipping zero weights.

    Taught in chapter 02, "Pruning".
    """
    total = [0]

    def hook(module, inputs, output):
        w = module.weight
        if isinstance(module, nn.Linear):
            macs = output.numel() * module.in_features          # (batch, out) × in
        else:
            macs = output.numel() * (module.in_channels // module.groups) * w[0, 0].numel()
        if nonzero_only:
            macs = macs * int(torch.count_nonzero(w)) / w.numel()
        total[0] += macs

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    was_training = model.training
    try:
        with torch.no_grad():
            try:
                model.eval()(torch.zeros(input_shape))
            except RuntimeError as err:
                raise ValueError(f"count_macs: input_shape must be an input shape {type(model).__name__} "
                                 f"accepts; got {tuple(input_shape)} ({err}).") from None
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return int(round(total[0]))
