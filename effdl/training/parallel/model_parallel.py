"""Model and pipeline parallelism: one layer split over processes, and a network's layers as stages.

Chapter 11 (Parallelization) teaches it.

- **Model parallelism** (as in DistBelief, Dean et al., *Large Scale
  Distributed Deep Networks*, NIPS 2012, which partitions a network over
  machines): a fully connected layer split by output activations and a
  convolution split by output feature maps (:func:`split_layer`), run forward
  and backward across processes and checked against one process
  (:func:`model_parallel_forward`); a convolution split by output region —
  bands of output rows, each process holding all the filters and only its
  input rows plus a halo (:func:`region_parallel_forward`).
- **Pipeline parallelism** (Huang et al., *GPipe: Efficient Training of Giant
  Neural Networks using Pipeline Parallelism*, NeurIPS 2019): LeNet-300-100's
  layers as stages, the batch cut into micro-batches
  (:func:`pipeline_train_step`), and the ideal idle fraction of such a
  pipeline (:func:`pipeline_bubble`).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.distributed as dist
from torch import nn

from ...models import LeNet300, build_model
from ...validation import Instance, Interval, ListOf, Options, PositiveInt, Seed, Tensor, check_part, validate_params
from .batches import global_batches, train_split
from .launcher import START_METHODS, TIMEOUT_S, launch

LAYER = Instance((nn.Linear, nn.Conv2d), "an nn.Linear or nn.Conv2d")
N_STAGES = Interval(int, 1, 3)          # LeNet-300-100 has three layers to make stages of
START_METHOD = Options(START_METHODS, optional=True)


# ========================================================== model parallelism
@validate_params(n=Interval(int, 0, None), world_size=PositiveInt())
def split_ranges(n: int, world_size: int) -> list[tuple[int, int]]:
    """Split ``range(n)`` into ``world_size`` contiguous ``(start, stop)`` pieces, sizes differing by at most 1.

    The first ``n % world_size`` pieces get one extra element.

    >>> split_ranges(10, 3)
    [(0, 4), (4, 7), (7, 10)]

    Taught in chapter 11, "Parallelization".
    """
    return _chunks(n, world_size)


def _chunks(n: int, world_size: int) -> list[tuple[int, int]]:
    base, extra = divmod(n, world_size)
    out, start = [], 0
    for r in range(world_size):
        stop = start + base + (r < extra)
        out.append((start, stop))
        start = stop
    return out


def _n_outputs(func: str, layer: nn.Module, world_size: int) -> int:
    """``layer``'s outputs (rows or output maps); raises unless every one of ``world_size`` ranks gets one."""
    n_out = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    check_part(func, Interval(int, 1, n_out), "world_size", world_size)
    return n_out


@validate_params(layer=LAYER, world_size=PositiveInt(), rank=Interval(int, 0, None))
def split_layer(layer: nn.Module, world_size: int, rank: int) -> nn.Module:
    """Rank ``rank``'s share of ``layer`` split by outputs: rows of a Linear, output maps of a Conv2d.

    ``nn.Linear(in, out)`` → ``nn.Linear(in, out_r)`` holding rows
    ``start:stop`` of the weight and bias; ``nn.Conv2d`` → the same
    convolution with output channels ``start:stop``. Concatenating every
    rank's output along dimension 1 gives the layer's output. Needs at least
    one output per rank.

    Behind chapter 11, "Parallelization".
    """
    n_out = _n_outputs("split_layer", layer, world_size)
    check_part("split_layer", Interval(int, 0, world_size - 1), "rank", rank)
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        raise ValueError(f"split_layer: layer must be an ungrouped convolution; got groups={layer.groups!r}.")
    start, stop = _chunks(n_out, world_size)[rank]
    # skip_init: the weights are copied in below, so nothing is drawn from (and no state taken
    # from) the caller's global RNG
    if isinstance(layer, nn.Linear):
        part = nn.utils.skip_init(nn.Linear, layer.in_features, stop - start, bias=layer.bias is not None)
    else:
        part = nn.utils.skip_init(nn.Conv2d, layer.in_channels, stop - start, layer.kernel_size,
                                  stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                                  bias=layer.bias is not None, padding_mode=layer.padding_mode)
    with torch.no_grad():
        part.weight.copy_(layer.weight[start:stop])       # (out_r, in) or (out_r, in, kh, kw)
        if layer.bias is not None:
            part.bias.copy_(layer.bias[start:stop])
    return part


@validate_params(local=Tensor(dtype=None, convert=False, ndim=(2, 3, 4, 5), nonempty=False),
                 sizes=ListOf(Interval(int, 0, None)))
def all_gather_dim1(local: torch.Tensor, sizes: Sequence[int]) -> torch.Tensor:
    """Inside a process group: concatenate every rank's ``local`` along dimension 1.

    ``sizes[r]`` is rank r's size along dimension 1; gloo's all-gather needs
    equal shapes, so pieces are padded to the largest and trimmed after.

    Behind chapter 11, "Parallelization".
    """
    if not dist.is_initialized():
        raise RuntimeError("all_gather_dim1 runs inside a process group (a worker of launch); none is initialised.")
    if len(sizes) != dist.get_world_size() or local.shape[1] != sizes[dist.get_rank()]:
        raise ValueError(f"all_gather_dim1: sizes must hold each of the {dist.get_world_size()} ranks' size along "
                         f"dimension 1, this rank's being {local.shape[1]}; got {sizes!r}.")
    biggest = max(sizes)
    pad = [0, 0] * (local.dim() - 2) + [0, biggest - local.shape[1]]
    padded = nn.functional.pad(local, pad).contiguous()
    pieces = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(pieces, padded)
    return torch.cat([p[:, :s] for p, s in zip(pieces, sizes)], dim=1)


def _model_parallel_worker(rank: int, world_size: int, kind: str, layer_args: tuple, state: dict,
                           x: torch.Tensor, grad_output: torch.Tensor) -> dict:
    layer = nn.Linear(*layer_args) if kind == "linear" else nn.Conv2d(**layer_args)
    layer.load_state_dict(state)
    part = split_layer(layer, world_size, rank)          # this process holds only its outputs' weights
    n_out = state["weight"].shape[0]
    sizes = [b - a for a, b in _chunks(n_out, world_size)]
    start, stop = _chunks(n_out, world_size)[rank]
    x = x.clone().requires_grad_(True)
    local = part(x)                                       # (batch, out_r, …): the forward needs all of x
    y = all_gather_dim1(local.detach(), sizes)            # forward: all-gather the output slices
    local.backward(grad_output[:, start:stop])            # backward: each rank's share of dL/dx …
    grad_x = x.grad.clone()
    dist.all_reduce(grad_x)                               # … summed over ranks: all-reduce
    return {"output": y, "grad_input": grad_x, "grad_weight": part.weight.grad.clone(), "range": (start, stop)}


def _reference(func: str, layer: nn.Module, x: torch.Tensor, grad_output: torch.Tensor | None):
    """``layer`` run forward and backward in this process, on copies: (layer, x, output, grad_output)."""
    layer = copy.deepcopy(layer).cpu().float()         # the caller's layer and its .grad stay untouched
    x = x.detach().cpu().float().requires_grad_(True)
    try:
        ref = layer(x)
    except RuntimeError as err:
        raise ValueError(f"{func}: x must fit the layer; got shape {tuple(x.shape)} ({err}).") from None
    if grad_output is None:
        grad_output = torch.randn(ref.shape, generator=torch.Generator().manual_seed(0))
    if grad_output.shape != ref.shape:
        raise ValueError(f"{func}: grad_output must have the output's shape {tuple(ref.shape)}; "
                         f"got {tuple(grad_output.shape)}.")
    layer.zero_grad(set_to_none=True)
    ref.backward(grad_output)
    return layer, x, ref, grad_output


@dataclass
class ModelParallelResult:
    """Output and gradients of a layer computed across processes, with the single-process reference.

    Behind chapter 11, "Parallelization".
    """

    output: torch.Tensor
    grad_input: torch.Tensor
    grad_weight: torch.Tensor
    max_abs_diff: float


@validate_params(layer=LAYER, x=Tensor(dtype=None, convert=False), world_size=PositiveInt(),
                 grad_output=Tensor(dtype=None, convert=False, optional=True), timeout_s=TIMEOUT_S,
                 start_method=START_METHOD)
def model_parallel_forward(layer: nn.Module, x: torch.Tensor, world_size: int, *,
                           grad_output: torch.Tensor | None = None, timeout_s: float = 120.0,
                           start_method: str | None = None) -> ModelParallelResult:
    """Run ``layer`` split by outputs over ``world_size`` processes (forward and backward).

    Each process holds ``split_layer(layer, world_size, rank)`` and the whole
    input; the forward all-gathers the output slices, the backward sums each
    process's input gradient with an all-reduce and leaves each process the
    gradient of its own weight rows. ``max_abs_diff`` compares output, input
    gradient and weight gradient with ``layer`` run in this process.

    Parameters
    ----------
    layer : nn.Linear or nn.Conv2d
    x : Tensor (batch, in) or (batch, C, H, W)
    grad_output : Tensor shaped like the output, optional
        The upstream gradient dL/dy; default a seeded random one.

    Taught in chapter 11, "Parallelization".
    """
    _n_outputs("model_parallel_forward", layer, world_size)
    if isinstance(layer, nn.Conv2d) and layer.groups != 1:
        raise ValueError(f"model_parallel_forward: layer must be an ungrouped convolution; "
                         f"got groups={layer.groups!r}.")
    layer, x, ref, grad_output = _reference("model_parallel_forward", layer, x, grad_output)
    if isinstance(layer, nn.Linear):
        kind, args = "linear", (layer.in_features, layer.out_features, layer.bias is not None)
    else:
        kind, args = "conv", dict(in_channels=layer.in_channels, out_channels=layer.out_channels,
                                  kernel_size=layer.kernel_size, stride=layer.stride, padding=layer.padding,
                                  dilation=layer.dilation, bias=layer.bias is not None,
                                  padding_mode=layer.padding_mode)
    state = {k: v.detach().clone() for k, v in layer.state_dict().items()}
    out = launch(_model_parallel_worker, world_size, (kind, args, state, x.detach(), grad_output.detach()),
                 timeout_s=timeout_s, backend="gloo", start_method=start_method)
    grad_w = torch.cat([o["grad_weight"] for o in out], dim=0)
    diffs = [(out[0]["output"] - ref.detach()).abs().max(), (out[0]["grad_input"] - x.grad).abs().max(),
             (grad_w - layer.weight.grad).abs().max()]
    return ModelParallelResult(out[0]["output"], out[0]["grad_input"], grad_w, float(max(diffs)))


CONV = Instance(nn.Conv2d, "an nn.Conv2d")


def _region_parallel_worker(rank: int, world_size: int, layer_args: dict, state: dict, bands: list,
                            grad_bands: list, sizes: list) -> dict:
    layer = nn.Conv2d(**layer_args)                      # every process holds all the filters
    layer.load_state_dict(state)
    band = bands[rank].clone().requires_grad_(True)      # this process computes from its band (with halo) alone
    local = layer(band)                                  # (batch, K, rows_r, W_out)
    y = all_gather_dim1(local.detach().transpose(1, 2).contiguous(), sizes).transpose(1, 2)   # forward: gather rows
    local.backward(grad_bands[rank])
    grad_w = layer.weight.grad.clone()
    dist.all_reduce(grad_w)                              # backward: the weights are replicated, so sum their gradients
    return {"output": y, "grad_band": band.grad.clone(), "grad_weight": grad_w}


@dataclass
class RegionParallelResult:
    """A convolution split by output rows across processes, with what each process read.

    Behind chapter 11, "Parallelization".
    """

    output: torch.Tensor
    grad_input: torch.Tensor
    grad_weight: torch.Tensor
    max_abs_diff: float
    max_rel_diff: float          # the largest difference over each quantity's largest magnitude
    output_rows: list            # (start, stop) of the output rows per process
    input_rows: list             # (start, stop) of the (padded) input rows each process read


@validate_params(layer=CONV, x=Tensor(dtype=None, convert=False, ndim=4), world_size=PositiveInt(),
                 grad_output=Tensor(dtype=None, convert=False, optional=True), timeout_s=TIMEOUT_S,
                 start_method=START_METHOD)
def region_parallel_forward(layer: nn.Conv2d, x: torch.Tensor, world_size: int, *,
                            grad_output: torch.Tensor | None = None, timeout_s: float = 120.0,
                            start_method: str | None = None) -> RegionParallelResult:
    """Run a convolution split by **output region** over ``world_size`` processes (forward and backward).

    The output rows are cut into contiguous bands (:func:`split_ranges`).
    Each process holds *all* the filters and receives only the input rows
    its band needs: with kernel height R and stride s, output rows
    ``[a, b)`` read (zero-padded) input rows ``[a·s, (b − 1)·s + R)``, its own
    rows plus a halo shared with the neighbour. The forward all-gathers the
    bands of output rows; the backward all-reduces the weight gradient
    (the weights are replicated, as in data parallelism) and adds the
    overlapping halo rows of the input gradients. ``max_abs_diff`` compares
    output, input gradient and weight gradient with ``layer`` run here
    (``max_rel_diff``: each difference over that quantity's largest value —
    the weight gradient sums every position's products, so it is large).
    Needs one output row per process, an ungrouped, undilated convolution
    with zero padding.

    Taught in chapter 11, "Parallelization".
    """
    func = "region_parallel_forward"
    if layer.groups != 1 or layer.dilation != (1, 1) or layer.padding_mode != "zeros" or isinstance(layer.padding, str):
        raise ValueError(f"{func}: layer must be an ungrouped, undilated convolution with numeric zero padding; "
                         f"got groups={layer.groups!r}, dilation={layer.dilation!r}, padding={layer.padding!r}, "
                         f"padding_mode={layer.padding_mode!r}.")
    layer, x, ref, grad_output = _reference(func, layer, x, grad_output)
    check_part(func, Interval(int, 1, ref.shape[2]), "world_size", world_size)
    (ph, pw), (sh, _), r = layer.padding, layer.stride, layer.kernel_size[0]
    padded = nn.functional.pad(x.detach(), (pw, pw, ph, ph))
    out_rows = _chunks(ref.shape[2], world_size)
    in_rows = [(a * sh, (b - 1) * sh + r) for a, b in out_rows]
    args = dict(in_channels=layer.in_channels, out_channels=layer.out_channels, kernel_size=layer.kernel_size,
                stride=layer.stride, padding=(0, 0), bias=layer.bias is not None)
    state = {k: v.detach().clone() for k, v in layer.state_dict().items()}
    bands = [padded[:, :, a:b].contiguous() for a, b in in_rows]
    grad_bands = [grad_output[:, :, a:b].detach().contiguous() for a, b in out_rows]
    out = launch(_region_parallel_worker, world_size,
                 (args, state, bands, grad_bands, [b - a for a, b in out_rows]),
                 timeout_s=timeout_s, backend="gloo", start_method=start_method)
    grad_padded = torch.zeros_like(padded)
    for (a, b), o in zip(in_rows, out):
        grad_padded[:, :, a:b] += o["grad_band"]          # the halo rows get two contributions
    grad_x = grad_padded[:, :, ph:ph + x.shape[2], pw:pw + x.shape[3]]
    pairs = [(out[0]["output"], ref.detach()), (grad_x, x.grad), (out[0]["grad_weight"], layer.weight.grad)]
    diffs = [float((a - b).abs().max()) for a, b in pairs]
    rel = [d / max(float(b.abs().max()), torch.finfo(torch.float32).tiny) for d, (_, b) in zip(diffs, pairs)]
    return RegionParallelResult(out[0]["output"], grad_x, out[0]["grad_weight"], max(diffs), max(rel),
                                out_rows, in_rows)


# ======================================================= pipeline parallelism
@validate_params(model=Instance(LeNet300, "an effdl.models.LeNet300"), n_stages=N_STAGES)
def pipeline_stages(model: nn.Module, n_stages: int) -> list[nn.Sequential]:
    """Cut LeNet-300-100 into ``n_stages`` consecutive stages of whole layers (each Linear with its ReLU).

    The stages share the model's parameters (no copy); running them one
    after the other is ``model``'s forward.

    Behind chapter 11, "Parallelization".
    """
    units = [nn.Sequential(nn.Flatten(), model.fc1, nn.ReLU()), nn.Sequential(model.fc2, nn.ReLU()),
             nn.Sequential(model.fc3)]
    return [nn.Sequential(*units[a:b]) for a, b in _chunks(len(units), n_stages)]


def _pipeline_worker(rank: int, world_size: int, cfg: dict) -> dict:
    model = build_model("lenet300", seed=cfg["seed"])
    stage = pipeline_stages(model, world_size)[rank]
    train = train_split()
    idx = next(global_batches(len(train), cfg["batch_size"], 1, cfg["seed"]))
    micro = cfg["batch_size"] // cfg["micro_batches"]
    first_linear = next(m for m in stage.modules() if isinstance(m, nn.Linear))
    width = first_linear.in_features
    events, inputs, outputs, loss_total = [], [], [], 0.0
    dist.barrier()

    def log(phase, m, start):
        # perf_counter is the system-wide monotonic clock on Linux: comparable across processes
        events.append((rank, phase, m, start, time.perf_counter()))

    for m in range(cfg["micro_batches"]):               # forward: fill the pipeline
        mine = idx[m * micro:(m + 1) * micro]
        if rank == 0:
            x = train.x[mine]
        else:
            x = torch.empty(micro, width)
            dist.recv(x, src=rank - 1)                  # activations from the previous stage
            x.requires_grad_(True)
        start = time.perf_counter()
        y = stage(x)
        log("forward", m, start)
        if rank < world_size - 1:
            dist.send(y.detach().contiguous(), dst=rank + 1)
        else:
            # sum over micro-batches of (sum of losses / batch) = the batch's mean loss
            y = nn.functional.cross_entropy(y, train.y[mine], reduction="sum") / cfg["batch_size"]
            loss_total += y.item()
        inputs.append(x)
        outputs.append(y)
    for m in reversed(range(cfg["micro_batches"])):     # backward: drain it, last micro-batch first
        if rank == world_size - 1:
            grad = None
        else:
            grad = torch.empty_like(outputs[m])
            dist.recv(grad, src=rank + 1)               # dL/d(output) from the next stage
        start = time.perf_counter()
        outputs[m].backward(grad)                       # gradients accumulate over micro-batches
        log("backward", m, start)
        if rank > 0:
            dist.send(inputs[m].grad.contiguous(), dst=rank - 1)
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    return {"grads": grads, "events": events, "loss": loss_total if rank == world_size - 1 else None}


@dataclass
class PipelineResult:
    """One pipelined training step: loss, every parameter's gradient, and the stages' timeline.

    ``events`` are ``(stage, phase, micro_batch, start_s, end_s)``: compute
    intervals measured in the workers on the machine's monotonic clock,
    counted from the first start.

    Behind chapter 11, "Parallelization".
    """

    loss: float
    grads: dict
    events: list
    max_abs_diff: float


@validate_params(n_stages=N_STAGES, batch_size=PositiveInt(), micro_batches=PositiveInt(), seed=Seed(),
                 timeout_s=TIMEOUT_S, start_method=START_METHOD)
def pipeline_train_step(n_stages: int, *, batch_size: int = 64, micro_batches: int = 4, seed: int = 0,
                        timeout_s: float = 120.0, start_method: str | None = None) -> PipelineResult:
    """One GPipe-style step of LeNet-300-100 with its layers on ``n_stages`` processes.

    The batch is cut into ``micro_batches``; stage s receives a micro-batch's
    activations from stage s-1, computes, sends them on; after the last
    forward, gradients flow back the same way and accumulate over
    micro-batches. The result is checked against one process computing the
    batch's mean loss and gradients (``max_abs_diff``).

    Taught in chapter 11, "Parallelization".
    """
    check_part("pipeline_train_step", Interval(int, 1, len(train_split())), "batch_size", batch_size)
    check_part("pipeline_train_step", Interval(int, 1, batch_size), "micro_batches", micro_batches)
    if batch_size % micro_batches:
        raise ValueError(f"pipeline_train_step: batch_size must be divisible by micro_batches; "
                         f"got batch_size={batch_size}, micro_batches={micro_batches}.")
    cfg = dict(batch_size=batch_size, micro_batches=micro_batches, seed=seed)
    out = launch(_pipeline_worker, n_stages, (cfg,), timeout_s=timeout_s, backend="gloo", start_method=start_method)
    grads = {k: v for o in out for k, v in o["grads"].items()}
    t0 = min(e[3] for o in out for e in o["events"])
    events = sorted(((s, ph, m, a - t0, b - t0) for o in out for s, ph, m, a, b in o["events"]), key=lambda e: e[3])
    # the reference: one process, the whole batch
    model = build_model("lenet300", seed=seed)
    train = train_split()
    idx = next(global_batches(len(train), batch_size, 1, seed))
    loss = nn.functional.cross_entropy(model(train.x[idx]), train.y[idx])
    loss.backward()
    diff = max(float((grads[n] - p.grad).abs().max()) for n, p in model.named_parameters())
    diff = max(diff, abs(out[-1]["loss"] - loss.item()))
    return PipelineResult(out[-1]["loss"], grads, events, diff)


@validate_params(n_stages=PositiveInt(), micro_batches=PositiveInt())
def pipeline_bubble(n_stages: int, micro_batches: int) -> float:
    """Idle fraction of a GPipe pipeline with equal stages: ``(K − 1) / (M + K − 1)``.

    Each of K stages is busy for M of the M + K − 1 time slots of the forward
    pass (and again of the backward pass); the rest is the "bubble".

    Taught in chapter 11, "Parallelization".
    """
    return (n_stages - 1) / (micro_batches + n_stages - 1)
