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

from ..._validate import check_choice, check_float, check_int, check_type
from ...data import load_mnist
from ...models import MODELS


def train_split(n_train: int | None = None):
    """The embedded MNIST training split, cut to its first ``n_train`` examples when given."""
    train = load_mnist("train", source="embedded")
    if n_train is not None:
        train = type(train)(train.name, train.source, train.x[:n_train], train.y[:n_train])
    return train


def global_batches(n_examples: int, global_batch: int, steps: int, seed: int = 0):
    """Yield ``steps`` index tensors of ``global_batch`` examples each, epoch after epoch.

    Every process of a data-parallel run calls this with the same arguments
    and takes its own slice, so all see one common, seeded order; the last
    incomplete batch of an epoch is dropped so that every step has the same
    size. Epoch ``e`` uses ``torch.randperm`` seeded with ``seed + e``.
    """
    n_examples = check_int("n_examples", n_examples, min=1)
    global_batch = check_int("global_batch", global_batch, min=1, max=n_examples)
    steps = check_int("steps", steps, min=0)
    seed = check_int("seed", seed, min=0)
    per_epoch = n_examples // global_batch
    epoch, done = 0, 0
    while done < steps:
        order = torch.randperm(n_examples, generator=torch.Generator().manual_seed(seed + epoch))
        for i in range(min(per_epoch, steps - done)):
            yield order[i * global_batch:(i + 1) * global_batch]
        done += min(per_epoch, steps - done)
        epoch += 1


def max_abs_diff(a: dict, b: dict) -> float:
    """Largest absolute difference between two state dicts with the same keys and shapes."""
    check_type("a", a, dict, "a state dict")
    check_type("b", b, dict, "a state dict")
    if a.keys() != b.keys():
        raise ValueError(f"a and b must have the same keys; got {sorted(a)} and {sorted(b)}.")
    return max(float((a[k].float() - b[k].float()).abs().max()) if a[k].numel() else 0.0 for k in a)


def check_train_args(batch_size, steps, lr, momentum, seed, arch, n_train=None) -> None:
    """Validate the SGD settings every training scheme of the package takes (raises, returns nothing)."""
    check_int("batch_size", batch_size, min=1)
    check_int("steps", steps, min=0)
    check_float("lr", lr, min=0, min_open=True)
    check_float("momentum", momentum, min=0, max=1, max_open=True)
    check_int("seed", seed, min=0)
    check_choice("arch", arch, MODELS)
    if n_train is not None:
        check_int("n_train", n_train, min=1)
