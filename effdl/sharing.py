"""Weight sharing and trained quantization — chapter 3, "Trained quantization".

Implements §3 of Han, Mao & Dally, *Deep Compression* (ICLR 2016): the
weights of each layer are clustered with 1-D k-means, every weight is
replaced by an index into the layer's small ``codebook`` of centroids, and the
centroids are then fine-tuned with the gradients of the weights that share
them ("group by index → reduce (sum) → update the centroid").

**k-means in one dimension.** :func:`kmeans_1d` runs Lloyd's algorithm. In
1-D the clusters of a sorted centroid list are contiguous runs of the sorted
data, split at the midpoints between neighbouring centroids, so the data are
sorted once and each iteration costs a ``searchsorted`` of ``k − 1``
midpoints plus prefix sums — O(k log n), not O(n k). Three initialisations,
as in §6.2 of the paper: ``"linear"`` (evenly spaced between min and max, the
paper's choice), ``"density"`` (evenly spaced in the CDF: quantiles) and
``"random"`` (Forgy: k distinct values of the data). A cluster that loses all
its points is moved onto the point farthest from its centroid (scikit-learn's
rule), so no code of the codebook is wasted while there are points to spare.

**Pruned layers.** Zeros are pruned connections, not weights: only the
non-zero weights are clustered, and index 0 of a pruned layer's codebook is
reserved for the value 0.0. That is what the authors' released decoder
implies (``decode.py`` of the SqueezeNet Deep Compression release fills the
positions the sparse stream does not name, and the fillers, with
``codebook[0]``). So ``n_bits`` bits give a codebook of ``2**n_bits``
entries: the zero plus ``2**n_bits − 1`` centroids for a pruned layer,
``2**n_bits`` centroids for a dense one. Every weight is exactly
``codebook[index]``; pruned weights are exactly zero.

**Trained quantization.** The loss depends on a centroid ``c_k`` through
every weight ``w_i`` with ``index_i = k``, so ``∂L/∂c_k = Σ_{i: index_i = k}
∂L/∂w_i`` (:func:`centroid_gradient`). :func:`finetune_centroids` trains a
model whose weights are the reparametrisation ``w = codebook[index]``
(autograd then does the group-by-and-sum), with the indexes fixed and the
reserved zero not trainable; it keeps the epoch with the best validation
accuracy.

**Bit-reproducible.** The group-by-and-sum accumulates in float64, in the
order of the weights (``index_add_`` on a 1-D tensor is a serial loop), so a
centroid's gradient is exactly ``centroid_gradient`` rounded to float32 —
torch's own backward of ``table[index]`` sums in float32 with a kernel that
may run in parallel. And :func:`finetune_centroids` runs on one CPU thread:
MKL splits a long dot product (LeNet-300-100's 784 inputs) across threads,
so the last bit of a float32 matmul depends on the thread count, and one ulp
in one step changes the codebooks the file stores. The result then depends
on the inputs and the seed alone.

The chapter's worked example (the paper's Figure 3): a 4×4 weight matrix
clusters into four values; with the example gradient, one SGD step at
learning rate 1 moves the centroids.

>>> w = np.array([[2.09, -0.98, 1.48, 0.09], [0.05, -0.14, -1.08, 2.12],
...               [-0.91, 1.92, 0.0, -1.03], [1.87, 0.0, 1.53, 1.49]])
>>> codebook, index = kmeans_1d(w.ravel(), 4)          # linear init
>>> (codebook.round(2) + 0.0).tolist()                 # + 0.0: no "-0.0" from rounding
[-1.0, 0.0, 1.5, 2.0]
>>> index.reshape(4, 4).tolist()
[[3, 0, 2, 1], [1, 1, 0, 3], [0, 3, 1, 0], [3, 1, 2, 2]]
>>> grad = np.array([[-0.03, -0.01, 0.03, 0.02], [-0.01, 0.01, -0.02, 0.12],
...                  [-0.01, 0.02, 0.04, 0.01], [-0.07, -0.02, 0.01, -0.02]])
>>> centroid_gradient(grad, index.reshape(4, 4), 4).round(2).tolist()
[-0.03, 0.04, 0.02, 0.04]
>>> (codebook - 1.0 * centroid_gradient(grad, index.reshape(4, 4), 4)).round(2).tolist()
[-0.97, -0.04, 1.48, 1.96]

(Here the two zeros of the example are ordinary weights in the 0.00 cluster,
as in the paper's figure; :func:`share_weights` would treat them as pruned.)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from ._validate import _fail
from .data import Split
from .models import MODELS, build_model
from .pruning import prunable_parameters
from .train import History, fit, threads
from .validation import (Bool, Instance, Interval, Module, OneOf, Options, PositiveInt, Seed, Tensor, check_part,
                         validate_params)


__all__ = ["INITS", "kmeans_1d", "centroid_gradient", "SharedLayer", "SharedModel", "share_weights",
           "quantized_model", "finetune_centroids"]

INITS = ("linear", "density", "random")


# ---------------------------------------------------------------- constraints
N_BITS = Interval(int, 1, 16)
SPLIT = Instance(Split, "an effdl.data.Split")


def _as_values(values: torch.Tensor) -> np.ndarray:
    """A checked tensor of real values as a flat float64 array."""
    return values.detach().cpu().numpy().astype(np.float64).ravel()


# ------------------------------------------------------------------- k-means
@validate_params(values=Tensor(dtype=None), n_clusters=PositiveInt(), init=Options(INITS), seed=Seed(),
                 max_iter=PositiveInt())
def kmeans_1d(values: Any, n_clusters: int, init: str = "linear", *, seed: int = 0,
              max_iter: int = 10_000) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars.

    Parameters
    ----------
    values : array-like or tensor of real numbers, any shape (n values in all)
        Read flattened (row-major). Non-empty and finite.
    n_clusters : int in [1, n]
    init : {"linear", "density", "random"}
        ``"linear"``: ``np.linspace(min, max, k)``. ``"density"``: the
        ``(j + ½)/k`` quantiles, j = 0 … k−1. ``"random"`` (Forgy): k distinct
        values of the data, drawn with ``seed``; needs at least k distinct values.
    seed : int, default 0
        Only used by ``init="random"`` (a private generator).
    max_iter : int, default 10_000
        Lloyd iterations at most; the loop stops earlier when no point
        changes cluster.

    Returns
    -------
    codebook : np.ndarray of float64, shape (k,)
        The centroids, ascending. A cluster that loses all its points is
        moved onto the point farthest from its centroid, as scikit-learn
        does; it can only stay empty when fewer than k distinct values exist.
    labels : np.ndarray of int64, shape (n,)
        Cluster of each value (in the order of ``values``); every value sits
        in the cluster of its nearest centroid (ties go to the lower one).

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    x = _as_values(values)
    k = n_clusters
    if k > x.size:
        _fail(ValueError, "n_clusters", f"an integer in [1, {x.size}] (the number of values)", k)
    if init == "random" and np.unique(x).size < k:
        _fail(ValueError, "n_clusters", f"at most the number of distinct values "
              f"({np.unique(x).size}) for init='random'", k)
    return _kmeans_1d(x, k, init, seed, max_iter)


def _initial_centroids(xs: np.ndarray, k: int, init: str, seed: int) -> np.ndarray:
    """Starting centroids (k,), ascending, from the sorted data ``xs``."""
    if init == "linear":
        return np.linspace(xs[0], xs[-1], k)
    if init == "density":
        return np.quantile(xs, (np.arange(k) + 0.5) / k)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.unique(xs), size=k, replace=False))


def _kmeans_1d(x: np.ndarray, k: int, init: str, seed: int, max_iter: int):
    """Core of :func:`kmeans_1d` on clean input: a flat float64 array ``x``."""
    n = x.size
    order = np.argsort(x, kind="stable")
    xs = x[order]                                    # (n,) sorted once
    centroids = _initial_centroids(xs, k, init, seed)
    shift = xs[n // 2]                               # centre the prefix sums: less cancellation
    csum = np.concatenate([[0.0], np.cumsum(xs - shift)])   # (n+1,) csum[j] = Σ_{i<j} (xs_i − shift)
    bounds, relocated = None, False
    for _ in range(max_iter):
        # Assignment: cluster j holds xs[edges[j] : edges[j+1]], split at centroid midpoints.
        mid = (centroids[1:] + centroids[:-1]) / 2   # (k−1,)
        new = np.searchsorted(xs, mid, side="right")  # x <= midpoint → lower cluster
        if bounds is not None and not relocated and np.array_equal(new, bounds):
            break                                    # no point moved: converged
        bounds = new
        edges = np.concatenate([[0], bounds, [n]])   # (k+1,)
        counts = np.diff(edges)                      # (k,) points per cluster
        sums = np.diff(csum[edges])                  # (k,) Σ (x − shift) per cluster
        relocated = not counts.all() and _relocate_empty(xs, centroids, edges, counts, sums, shift)
        # Update: c_j = mean of its points (a cluster still empty keeps its centroid).
        centroids = np.where(counts > 0, sums / np.maximum(counts, 1) + shift, centroids)
        if np.any(np.diff(centroids) < 0):          # after a relocation, or rounding of near-equal means
            centroids = np.sort(centroids)
    else:
        # max_iter reached: label each point by its nearest final centroid.
        bounds = np.searchsorted(xs, (centroids[1:] + centroids[:-1]) / 2, side="right")
    counts = np.diff(np.concatenate([[0], bounds, [n]]))
    labels = np.empty(n, dtype=np.int64)
    labels[order] = np.repeat(np.arange(k), counts)
    return centroids, labels


def _relocate_empty(xs: np.ndarray, old: np.ndarray, edges: np.ndarray, counts: np.ndarray,
                    sums: np.ndarray, shift: float) -> bool:
    """Give each empty cluster one of the points farthest from their centroids; True if any moved.

    scikit-learn's rule (``_relocate_empty_clusters``): distances are to
    the centroids ``old`` the points were assigned to; a moved point leaves
    the sum and count of its cluster. It then costs 0 instead of a positive
    squared distance, so the inertia drops. Points already on their
    centroid are never moved; with too few others a cluster stays empty.
    ``counts`` and ``sums`` are updated in place.
    """
    empty = np.flatnonzero(counts == 0)
    dist = (xs - np.repeat(old, np.diff(edges))) ** 2           # (n,) to the assigned centroid
    m = min(empty.size, int(np.count_nonzero(dist)))
    if m == 0:
        return False
    far = np.argpartition(dist, -m)[-m:]
    far = far[np.argsort(-dist[far], kind="stable")]             # farthest first
    owner = np.searchsorted(edges, far, side="right") - 1        # cluster holding each point
    for j, i, o in zip(empty[:m], far, owner):
        sums[o] -= xs[i] - shift
        counts[o] -= 1
        sums[j], counts[j] = xs[i] - shift, 1
    return True


@validate_params(grad=Tensor(dtype=None), index=Tensor(dtype="int", finite=False, nonempty=False),
                 n_clusters=PositiveInt())
def centroid_gradient(grad: Any, index: Any, n_clusters: int) -> np.ndarray:
    """Gradient of the loss w.r.t. each shared value: ``g_k = Σ_{i: index_i = k} grad_i``.

    Parameters
    ----------
    grad : array-like or tensor, any shape
        ``∂L/∂w`` of every weight.
    index : array-like or tensor of int, same shape
        Cluster of every weight, in ``[0, n_clusters)``.
    n_clusters : int >= 1

    Returns
    -------
    np.ndarray of float64, shape (n_clusters,)
        A cluster no weight uses gets 0.

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    if grad.shape != index.shape:
        _fail(ValueError, "index", f"of the same shape as grad {tuple(grad.shape)}",
              tuple(index.shape))
    g = _as_values(grad)
    idx = index.detach().cpu().numpy().astype(np.int64).ravel()
    if idx.min() < 0 or idx.max() >= n_clusters:
        _fail(ValueError, "index", f"in [0, {n_clusters - 1}]",
              int(idx.min() if idx.min() < 0 else idx.max()))
    return np.bincount(idx, weights=g, minlength=n_clusters)   # group by index, reduce by sum


# ------------------------------------------------------------- shared models
@dataclass(frozen=True)
class SharedLayer:
    """One weight tensor stored as ``codebook[index]``.

    ``codebook`` (n_codes,) float32 with ``n_codes <= 2**n_bits``;
    ``index`` int64 of the weight's shape. With ``reserves_zero`` (a pruned
    layer) ``codebook[0] == 0.0`` marks pruned positions and is not a
    centroid.

    Behind chapter 03, "Weight sharing and trained quantization".
    """

    name: str
    codebook: np.ndarray
    index: np.ndarray
    n_bits: int
    reserves_zero: bool

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.index.shape)

    @property
    def n_centroids(self) -> int:
        """Trainable shared values (the codebook without the reserved zero)."""
        return self.codebook.size - int(self.reserves_zero)

    @property
    def nonzeros(self) -> int:
        """Stored (unpruned) weights."""
        return int(np.count_nonzero(self.index)) if self.reserves_zero else self.index.size

    def weight(self) -> np.ndarray:
        """The shared weight tensor, float32, ``codebook[index]``."""
        return self.codebook[self.index]


@dataclass(frozen=True)
class SharedModel:
    """A model whose prunable weights are shared: the input of the Deep Compression file.

    ``arch`` names an :data:`effdl.models.MODELS` entry; ``layers`` maps the
    names of :func:`effdl.pruning.prunable_parameters` to their
    :class:`SharedLayer`; ``others`` holds every other state-dict entry
    (biases) as float32 arrays, unquantized.

    Behind chapter 03, "Weight sharing and trained quantization".
    """

    arch: str
    layers: dict[str, SharedLayer]
    others: dict[str, np.ndarray] = field(default_factory=dict)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """A state dict for ``build_model(arch)`` holding the shared weights."""
        state = {n: torch.from_numpy(a.copy()) for n, a in self.others.items()}
        state.update({n: torch.from_numpy(layer.weight()) for n, layer in self.layers.items()})
        return state

    def to_model(self) -> nn.Module:
        """A fresh ``build_model(arch)`` in eval mode with these weights (see :func:`quantized_model`)."""
        model = build_model(self.arch, seed=0)       # seeded: the global RNG is left alone
        model.load_state_dict(self.state_dict())
        return model.eval()


SHARED = Instance(SharedModel, "an effdl.sharing.SharedModel")


@validate_params(shared=SHARED)
def quantized_model(shared: SharedModel) -> nn.Module:
    """The model with weights ``codebook[index]`` (pruned ones exactly zero), in eval mode.

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    return shared.to_model()


def _arch_of(model: nn.Module) -> str:
    for name, cls in MODELS.items():
        if type(model) is cls:
            return name
    _fail(TypeError, "model", f"one of effdl.models' architectures {sorted(MODELS)}",
          type(model).__name__)


def _plain_state(model: nn.Module, arch: str) -> dict[str, torch.Tensor]:
    """The model's state dict with masks applied, checked against ``build_model(arch)``.

    Read without ``remove_masks(copy.deepcopy(model))``: deep-copying a
    parametrised module shares its generated class, and removing the
    parametrisation from the copy strips the property from the original too.
    """
    state = {n: t.detach().cpu() for n, t in model.state_dict().items() if "parametrizations." not in n}
    state.update({n: w.detach().cpu() for n, w in prunable_parameters(model).items()})   # masked weights
    reference = build_model(arch, seed=0).state_dict()
    if set(state) != set(reference) or any(state[n].shape != reference[n].shape for n in reference):
        _fail(ValueError, "model",
              f"a {arch} with the default sizes of effdl.models.build_model({arch!r})",
              type(model).__name__)
    return state


def _bits_per_layer(n_bits: int | Mapping, names: list[str]) -> dict[str, int]:
    """``n_bits`` (declared: an int in [1, 16] or a mapping) per weight name; a mapping's values checked here."""
    if isinstance(n_bits, Mapping):
        unknown = [n for n in n_bits if n not in names]
        missing = [n for n in names if n not in n_bits]
        if unknown or missing:
            _fail(ValueError, "n_bits", f"a dict with exactly the keys {names}", n_bits)
        return {n: check_part("share_weights", N_BITS, f"n_bits[{n!r}]", n_bits[n]) for n in names}
    return {n: n_bits for n in names}


def _share_layer(name: str, w: np.ndarray, n_bits: int, init: str, seed: int, max_iter: int) -> SharedLayer:
    kept = w != 0
    values = w[kept].astype(np.float64)
    if values.size == 0:
        raise ValueError(f"share_weights: model weight {name!r} must have a non-zero weight to share; "
                         f"got all {w.size} zero.")
    reserves_zero = values.size < w.size
    capacity = (1 << n_bits) - int(reserves_zero)    # centroids that fit beside the reserved zero
    k = min(capacity, np.unique(values).size)
    centroids, labels = _kmeans_1d(values, k, init, seed, max_iter)
    codebook = np.concatenate([[0.0], centroids]) if reserves_zero else centroids
    index = np.zeros(w.shape, dtype=np.int64)
    index[kept] = labels + int(reserves_zero)        # pruned positions → index 0 → 0.0
    return SharedLayer(name, codebook.astype(np.float32), index, n_bits, reserves_zero)


@validate_params(model=Module(), n_bits=OneOf(N_BITS, Instance(Mapping, "a dict of weight name → n_bits")),
                 init=Options(INITS), seed=Seed(), max_iter=PositiveInt())
def share_weights(model: nn.Module, n_bits: int | dict[str, int], init: str = "linear", *,
                  seed: int = 0, max_iter: int = 10_000) -> SharedModel:
    """Cluster each prunable weight of ``model`` into a ``2**n_bits``-entry codebook.

    Parameters
    ----------
    model : nn.Module
        An effdl model (``LeNet300``, ``LeNet5``, ``RowLSTM``), pruned or not;
        pruning masks, if attached, are applied first.
    n_bits : int in [1, 16] or dict {weight name: int}
        Index width per layer; a dict needs every name of
        :func:`effdl.pruning.prunable_parameters`. A pruned layer (one with
        zeros) gets ``2**n_bits − 1`` centroids plus the reserved zero (one
        centroid at ``n_bits=1``).
    init, seed, max_iter
        Passed to :func:`kmeans_1d`.

    Returns
    -------
    SharedModel

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    arch = _arch_of(model)
    state = _plain_state(model, arch)
    names = list(prunable_parameters(model))
    bits_of = _bits_per_layer(n_bits, names)
    layers = {n: _share_layer(n, state[n].float().numpy(), bits_of[n], init, seed, max_iter) for n in names}
    others = {n: t.float().numpy().copy() for n, t in state.items() if n not in layers}
    return SharedModel(arch, layers, others)


# ------------------------------------------------------ trained quantization
class _Gather(torch.autograd.Function):
    """``table[index]`` whose backward sums each entry's gradients in float64, in a fixed order.

    ``grad_table[k] = float32(Σ_{i: index_i = k} grad_i)``, summed in float64
    in the row-major order of ``index`` — :func:`centroid_gradient` bit for
    bit, whatever the thread count (a 1-D ``index_add_`` is a serial loop on
    the CPU; on a GPU, float64 atomics keep the order's effect far below
    float32's last bit).
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(index)
        ctx.n_table = table.shape[0]
        return table[index]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (index,) = ctx.saved_tensors
        sums = torch.zeros(ctx.n_table, dtype=torch.float64, device=grad.device)   # (n_table,)
        sums.index_add_(0, index.reshape(-1), grad.reshape(-1).to(torch.float64))  # group by index, sum
        return sums.to(grad.dtype), None


class _SharedWeight(nn.Module):
    """Parametrisation ``weight = table[index]``, ``table = [0, centroids]`` for a pruned layer.

    The backward of the gather (:class:`_Gather`) is a float64 scatter-add,
    so ``centroids.grad`` is :func:`centroid_gradient` of the weight
    gradient, rounded once to float32.
    """

    def __init__(self, layer: SharedLayer):
        super().__init__()
        self.reserves_zero = layer.reserves_zero
        trainable = layer.codebook[1:] if layer.reserves_zero else layer.codebook
        self.centroids = nn.Parameter(torch.from_numpy(trainable.copy()))   # (n_centroids,)
        self.register_buffer("index", torch.from_numpy(layer.index))         # weight shape, int64

    def table(self) -> torch.Tensor:
        if not self.reserves_zero:
            return self.centroids
        return torch.cat([self.centroids.new_zeros(1), self.centroids])    # the zero is a constant

    def forward(self, original: torch.Tensor) -> torch.Tensor:
        return _Gather.apply(self.table(), self.index)


def _trainable_model(shared: SharedModel, train_biases: bool) -> nn.Module:
    model = shared.to_model()
    for p in model.parameters():
        p.requires_grad_(False)
    if train_biases:
        for n, p in model.named_parameters():
            if n in shared.others:
                p.requires_grad_(True)
    for name, layer in shared.layers.items():
        mod_name, _, param = name.rpartition(".")
        module = model.get_submodule(mod_name)
        parametrize.register_parametrization(module, param, _SharedWeight(layer), unsafe=True)
        module.parametrizations[param].original.requires_grad_(False)   # only centroids learn
    return model


def _read_back(model: nn.Module, shared: SharedModel) -> SharedModel:
    layers = {}
    for name, layer in shared.layers.items():
        mod_name, _, param = name.rpartition(".")
        table = model.get_submodule(mod_name).parametrizations[param][0].table()
        codebook = table.detach().cpu().to(torch.float32).numpy().copy()
        layers[name] = SharedLayer(name, codebook, layer.index, layer.n_bits, layer.reserves_zero)
    params = dict(model.named_parameters())
    others = {n: params[n].detach().cpu().float().numpy().copy() if n in params else a
              for n, a in shared.others.items()}
    return SharedModel(shared.arch, layers, others)


@validate_params(shared=SHARED, train=SPLIT, val=Instance(Split, "an effdl.data.Split", optional=True),
                 epochs=Interval(int, 0, None), lr=Interval(float, 0, None, closed="neither"),
                 momentum=Interval(float, 0, 1, closed="left"), batch_size=PositiveInt(), train_biases=Bool(),
                 seed=Seed(), device=Instance((torch.device, str), "a torch.device or a device name", optional=True),
                 show_progress=Bool(optional=True))
def finetune_centroids(shared: SharedModel, train: Split, val: Split | None = None, *, epochs: int = 5,
                       lr: float = 1e-3, momentum: float = 0.9, batch_size: int = 64,
                       train_biases: bool = False, seed: int = 0, device: torch.device | None = None,
                       show_progress: bool | None = None) -> tuple[SharedModel, History]:
    """Trained quantization: SGD on the centroids, indexes fixed, pruned weights zero.

    Each step updates ``c_k ← c_k − lr · Σ_{i: index_i = k} ∂L/∂w_i`` (with
    ``momentum``, SGD's usual running average of that sum). The reserved
    zero of a pruned layer is a constant, not a parameter. With
    ``train_biases`` the (unquantized) biases train too. With ``val`` the
    result is the epoch of best validation accuracy (epoch 0, the input
    codebooks, included), chosen by :func:`effdl.train.fit`.

    Runs on one CPU thread (the caller's thread count is restored): the
    codebooks are then the same bits whatever ``torch.get_num_threads()``
    is, so a Deep Compression file rebuilds byte for byte. One thread is
    also the faster choice for LeNet-sized layers on a busy machine.

    Returns
    -------
    (SharedModel, History)
        New codebooks (and biases), the same indexes; the training record.

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    if isinstance(device, str):
        try:
            device = torch.device(device)
        except RuntimeError:
            _fail(ValueError, "device", "a device name torch knows ('cpu', 'cuda', …)", device)
    model = _trainable_model(shared, train_biases)
    with threads(1):                  # one thread: a matmul's last bit depends on the thread count
        history = fit(model, train, epochs=epochs, lr=lr, momentum=momentum, batch_size=batch_size,
                      val=val, keep_best=True, seed=seed, device=device, show_progress=show_progress)
    return _read_back(model.cpu(), shared), history
