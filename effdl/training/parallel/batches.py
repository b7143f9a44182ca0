"""What every parallel scheme trains on: the MNIST split, seeded global batches, the shared settings.

Chapter 11 (Parallelization) teaches it. Data-parallel workers, parameter-server
workers, pipeline stages and the single-process references all draw the same
seeded batches (:func:`global_batches`) of the book's embedded MNIST subset and
take their own slice, which is what makes each scheme comparable, weight for
weight, with one process. No paper of its own: the schemes that use it name
theirs (``ddp``, ``parameter_server``, ``model_parallel``).
"""
from __future__ import annotations

import torch

from ...data import load_mnist
from ...models import MODELS
from ...validation import Instance, Interval, Options, PositiveInt, Seed, Tensor, check_part, validate_params

# The SGD settings every training scheme of the package takes (``ddp``, ``parameter_server``).
TRAIN_PARAMS = dict(batch_size=PositiveInt(), steps=Interval(int, 0, None),
                    lr=Interval(float, 0, None, closed="neither"), momentum=Interval(float, 0, 1, closed="left"),
                    seed=Seed(), arch=Options(tuple(MODELS)))
STATE_DICT = Instance(dict, "a state dict (name → tensor)")
_STATE_VALUE = Tensor(dtype=None, convert=False, nonempty=False)       # finite, any dtype, possibly empty


@validate_params(n_train=PositiveInt(optional=True))
def train_split(n_train: int | None = None):
    """The embedded MNIST training split, cut to its first ``n_train`` examples when given.

    Behind chapter 11, "Parallelization".
    """
    train = load_mnist("train", source="embedded")
    if n_train is not None:
        train = type(train)(train.name, train.source, train.x[:n_train], train.y[:n_train])
    return train


@validate_params(n_examples=PositiveInt(), global_batch=PositiveInt(), steps=Interval(int, 0, None), seed=Seed())
def global_batches(n_examples: int, global_batch: int, steps: int, seed: int = 0):
    """Yield ``steps`` index tensors of ``global_batch`` examples each, epoch after epoch.

    Every process of a data-parallel run calls this with the same arguments
    and takes its own slice, so all see one common, seeded order; the last
    incomplete batch of an epoch is dropped so that every step has the same
    size. Epoch ``e`` uses ``torch.randperm`` seeded with ``seed + e``.

    Behind chapter 11, "Parallelization".
    """
    check_part("global_batches", Interval(int, 1, n_examples), "global_batch", global_batch)   # at most one epoch
    return _global_batches(n_examples, global_batch, steps, seed)     # checked now, drawn lazily


def _global_batches(n_examples: int, global_batch: int, steps: int, seed: int):
    per_epoch = n_examples // global_batch
    epoch, done = 0, 0
    while done < steps:
        order = torch.randperm(n_examples, generator=torch.Generator().manual_seed(seed + epoch))
        for i in range(min(per_epoch, steps - done)):
            yield order[i * global_batch:(i + 1) * global_batch]
        done += min(per_epoch, steps - done)
        epoch += 1


@validate_params(a=STATE_DICT, b=STATE_DICT)
def max_abs_diff(a: dict, b: dict) -> float:
    """Largest absolute difference between two state dicts with the same keys and shapes.

    Taught in chapter 11, "Parallelization".
    """
    if a.keys() != b.keys():
        raise ValueError(f"max_abs_diff: a and b must have the same keys; got {sorted(a)} and {sorted(b)}.")
    if not a:
        raise ValueError("max_abs_diff: a must hold at least one tensor; got {}.")
    for k in a:
        check_part("max_abs_diff", _STATE_VALUE, f"a[{k!r}]", a[k])
        check_part("max_abs_diff", _STATE_VALUE, f"b[{k!r}]", b[k])
        if a[k].shape != b[k].shape:
            raise ValueError(f"max_abs_diff: b[{k!r}] must have the shape of a[{k!r}], {tuple(a[k].shape)}; "
                             f"got {tuple(b[k].shape)}.")
    return max(float((a[k].float() - b[k].float()).abs().max()) if a[k].numel() else 0.0 for k in a)
