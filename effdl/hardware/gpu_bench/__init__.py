"""Measurements on a CUDA GPU for the book's appendix (chapter 16): matmul throughput per format, int8,
2:4 structured sparsity, mixed-precision training steps — and how chapters show them.

The pieces, by job:

- :mod:`~effdl.hardware.gpu_bench.device` — the device (:func:`cuda_available`,
  :func:`device_info`), the TF32 switches (``fp32_precision`` on torch ≥ 2.9,
  ``allow_tf32`` before) and the one timing method: back-to-back calls
  between one pair of CUDA events, median of several pairs;
- :mod:`~effdl.hardware.gpu_bench.kernels` — :func:`copy_bandwidth`,
  :func:`matmul_throughput`, :func:`int8_matmul` (both B layouts),
  :func:`two_four_mask`, :func:`sparse_backend`, :func:`sparse_matmul`;
- :mod:`~effdl.hardware.gpu_bench.training_step` — :func:`small_cnn`,
  :func:`make_train_step`, :func:`training_step_times` (Micikevicius et al.,
  *Mixed Precision Training*, ICLR 2018: ``torch.autocast`` + ``GradScaler``);
- :mod:`~effdl.hardware.gpu_bench.report` — :func:`gpu_report`: every section
  in its own ``try``, one printed line each, the JSON rewritten after each,
  a hang guard;
- :mod:`~effdl.hardware.gpu_bench.recorded` — :func:`gpu_mode` (the opt-in
  ``EFFDL_GPU=1``), :func:`recorded_runs` (``benchmarks/results/gpu_*.json``)
  and the rows that put them beside NVIDIA's datasheet peaks
  (:data:`DATASHEET`).

Every measuring function validates its arguments, then raises
``RuntimeError("… needs a CUDA device; none found.")`` without a GPU, so a
CPU-only machine fails loudly instead of timing the CPU; everything else runs
anywhere.
"""
from __future__ import annotations

from effdl.hardware.gpu_bench.device import cuda_available, device_info, device_name
from effdl.hardware.gpu_bench.kernels import (INT8_LAYOUTS, MATMUL_DTYPES, SPARSE_BACKENDS, copy_bandwidth,
                                              int8_matmul, matmul_throughput, sparse_backend, sparse_matmul,
                                              two_four_mask)
from effdl.hardware.gpu_bench.recorded import (DATASHEET, GPU_ENV, RESULTS_DIR, comparison_table, format_rates,
                                               gpu_mode, recorded_runs, report_rows, run_label, step_time_columns)
from effdl.hardware.gpu_bench.report import SECTIONS, gpu_report
from effdl.hardware.gpu_bench.training_step import STEP_MODES, make_train_step, small_cnn, training_step_times

__all__ = ["DATASHEET", "GPU_ENV", "INT8_LAYOUTS", "MATMUL_DTYPES", "RESULTS_DIR", "SECTIONS", "SPARSE_BACKENDS",
           "STEP_MODES", "comparison_table", "copy_bandwidth", "cuda_available", "device_info", "device_name",
           "format_rates", "gpu_mode", "gpu_report", "int8_matmul", "make_train_step", "matmul_throughput",
           "recorded_runs", "report_rows", "run_label", "small_cnn", "sparse_backend", "sparse_matmul",
           "step_time_columns", "training_step_times", "two_four_mask"]
