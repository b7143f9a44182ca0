"""Efficient training: parallelism on torch.distributed and mixed precision.

Part "Algorithms for efficient training" of the book. ``parallel`` (chapter 11)
runs data parallelism (``DistributedDataParallel``), a parameter server, model
and pipeline parallelism and a parallel hyper-parameter sweep as real
processes; ``mixed_precision`` (chapter 12) emulates fp16 training with loss
scaling and fp32 master weights (Micikevicius et al., ICLR 2018).
"""
