"""The chapter's headline numbers in one call: :func:`parallel_report` (``effdl reproduce parallel``).

Chapter 11 (Parallelization) teaches it. It runs, on real processes, the
schemes of the sibling modules and the papers they implement: DDP against one
process (``ddp``; Li et al., VLDB 2020), a fully connected and a convolutional
layer split over processes (``model_parallel``), and the synchronous parameter
server of Dean et al., NIPS 2012 against all-reduce (``parameter_server``).
"""
from __future__ import annotations

import os

import torch

from ...models import build_model
from ...validation import Interval, validate_params
from .batches import max_abs_diff
from .ddp import data_parallel_train, ddp_equivalence, time_per_epoch
from .launcher import TIMEOUT_S, default_backend
from .model_parallel import model_parallel_forward
from .parameter_server import parameter_server_train


@validate_params(world_size=Interval(int, 2, None), timeout_s=TIMEOUT_S)
def parallel_report(*, world_size: int = 2, timeout_s: float = 300.0) -> dict:
    """The chapter's headline numbers (``effdl reproduce parallel --json``), all from real processes.

    DDP on ``world_size`` processes vs one process with the combined batch;
    LeNet-300-100's fc1 and LeNet-5's conv2 split over the processes vs one
    process; the synchronous parameter server vs all-reduce; seconds per
    epoch for 1 and ``world_size`` processes measured on this machine.

    Behind chapter 11, "Parallelization".
    """
    ddp = ddp_equivalence(world_size, batch_size=16, steps=5, timeout_s=timeout_s)
    gen = torch.Generator().manual_seed(0)
    fc = build_model("lenet300", seed=0).fc1
    conv = build_model("lenet5", seed=0).conv2
    mp_fc = model_parallel_forward(fc, torch.randn(8, 784, generator=gen), world_size, timeout_s=timeout_s)
    mp_conv = model_parallel_forward(conv, torch.randn(4, 20, 12, 12, generator=gen), world_size,
                                     timeout_s=timeout_s)
    ps = parameter_server_train(world_size, mode="sync", batch_size=16, steps=5, timeout_s=timeout_s)
    ar = data_parallel_train(world_size, batch_size=16, steps=5, timeout_s=timeout_s)
    ps_diff = max_abs_diff(ps.state_dict, ar.state_dict)
    epoch = time_per_epoch((1, world_size), timeout_s=timeout_s)
    return {"processes": world_size, "ddp_max_abs_diff": ddp,
            "model_parallel_max_abs_diff": max(mp_fc.max_abs_diff, mp_conv.max_abs_diff),
            "ps_sync_matches_allreduce": bool(ps_diff < 1e-5), "ps_sync_max_abs_diff": ps_diff,
            "epoch_s": {str(w): round(s, 3) for w, s in epoch.items()},
            "backend": default_backend(world_size), "cpu_count": os.cpu_count()}
