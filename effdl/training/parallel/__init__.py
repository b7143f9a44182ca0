"""Parallel training on a real distributed engine: ``torch.distributed`` processes.

Chapter 11 (Parallelization) teaches it. Everything here runs as real
operating-system processes started by ``torch.multiprocessing`` and talking
through ``torch.distributed`` — gloo on CPU, NCCL when there is a CUDA device
per process — so the same worker code runs unchanged under ``torchrun`` on
several machines. One module per job:

- ``launcher`` — :func:`launch` starts the processes, with timeouts and a
  :class:`WorkerError` naming the rank that failed;
- ``batches`` — the MNIST split and the seeded global batches every scheme
  slices (:func:`global_batches`), :func:`max_abs_diff` between weights;
- ``ddp`` — **data parallelism** with ``DistributedDataParallel`` (all-reduce
  of the gradients): :func:`data_parallel_train`, checked against one process
  with a ``world_size`` times larger batch (:func:`large_batch_train`); the
  time per epoch against the number of processes (:func:`time_per_epoch`); the
  ``torchrun`` entry point (:func:`torchrun_main`; ``python -m
  effdl.training.parallel``);
- ``parameter_server`` — a **parameter server** on point-to-point
  ``send``/``recv``, synchronous and asynchronous with the staleness of every
  update recorded (:func:`parameter_server_train`; Dean et al., *Large Scale
  Distributed Deep Networks*, NIPS 2012);
- ``model_parallel`` — **model parallelism**: a fully connected layer split by
  output activations and a convolution split by output feature maps
  (:func:`model_parallel_forward`), and a convolution split by output region
  (:func:`region_parallel_forward`); **pipeline parallelism**: LeNet-300-100's
  layers as stages, micro-batches GPipe-style (:func:`pipeline_train_step`;
  Huang et al., *GPipe*, NeurIPS 2019);
- ``sweep`` — **hyper-parameter parallelism**: a learning-rate sweep as
  processes (:func:`parallel_sweep`);
- ``report`` — the chapter's headline numbers (:func:`parallel_report`).

Worker functions must be importable (module level), as with any spawned
process; they return plain data (tensors, numbers, lists, dicts), collected
per rank. Models are the book's LeNet-300-100 on the embedded MNIST subset,
trained for a few steps: the point is what the processes compute, not accuracy.
"""
from .batches import global_batches, max_abs_diff
from .ddp import (TrainResult, data_parallel_train, ddp_equivalence, large_batch_train, time_allreduce,
                  time_per_epoch, torchrun_main)
from .launcher import (BACKENDS, HOST, START_METHODS, WorkerError, default_backend, default_start_method, hello,
                       launch, worker_device)
from .model_parallel import (ModelParallelResult, PipelineResult, RegionParallelResult, all_gather_dim1,
                             model_parallel_forward, pipeline_bubble, pipeline_stages, pipeline_train_step,
                             region_parallel_forward, split_layer, split_ranges)
from .parameter_server import communication_bytes, parameter_server_train, staleness_of
from .report import parallel_report
from .sweep import parallel_sweep

__all__ = [
    "BACKENDS", "HOST", "START_METHODS", "WorkerError", "default_backend", "default_start_method", "hello",
    "launch", "worker_device",
    "global_batches", "max_abs_diff",
    "TrainResult", "data_parallel_train", "ddp_equivalence", "large_batch_train", "time_allreduce",
    "time_per_epoch", "torchrun_main",
    "communication_bytes", "parameter_server_train", "staleness_of",
    "ModelParallelResult", "PipelineResult", "RegionParallelResult", "all_gather_dim1", "model_parallel_forward",
    "pipeline_bubble", "pipeline_stages", "pipeline_train_step", "region_parallel_forward", "split_layer",
    "split_ranges",
    "parallel_sweep", "parallel_report",
]
