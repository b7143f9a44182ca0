"""Systolic arrays — weight-, output- and input-stationary — in two models that must agree (chapter 9).

The TPU's matrix unit is a 256 × 256 weight-stationary array (Jouppi et al.,
"In-Datacenter Performance Analysis of a Tensor Processing Unit", ISCA
2017); systolic arrays are Kung and Leiserson's (1978); the three dataflows
and the per-layer report follow SCALE-Sim (Samajdar et al., ISPASS 2020),
whose accounting ``timing="scalesim"`` reproduces cycle for cycle.

The pieces, by job:

- :mod:`~effdl.hardware.systolic.config` — the array (:class:`SystolicConfig`:
  size, ``dataflow`` "ws"/"os"/"is", ``timing`` "tpu"/"scalesim",
  memories) and the workload (:class:`Gemm` with keyword-only M, K, N;
  :func:`conv_gemm`; :func:`network_gemms` from ``effdl.architectures``);
- :mod:`~effdl.hardware.systolic.model` — the closed form
  (:func:`estimate`, :func:`estimate_network`, :func:`fold_table`,
  :func:`sweep_array_sizes`): cycles, utilisation and memory traffic;
- :mod:`~effdl.hardware.systolic.step` — :func:`simulate`, every PE each
  cycle, with a :class:`Trace` for the animations;
- :mod:`~effdl.hardware.systolic.result` — what both return;
- :mod:`~effdl.hardware.systolic.topology` — :func:`read_topology` for
  SCALE-Sim's topology CSVs.

>>> cfg = SystolicConfig(rows=4, cols=4)
>>> g = Gemm(M=3, K=2, N=3)
>>> r = simulate(cfg, g, x=np.arange(6).reshape(3, 2), w=np.ones((2, 3), dtype=int))
>>> r.output.tolist(), r.cycles, estimate(cfg, g).cycles
([[1, 1, 1], [5, 5, 5], [9, 9, 9]], 10, 10)
"""
from __future__ import annotations

import numpy as np

from effdl.hardware.systolic.config import (DATAFLOWS, MAPPING, STATIONARY, TIMINGS, Gemm, SystolicConfig, conv_gemm,
                                            network_gemms, random_gemm)
from effdl.hardware.systolic.model import estimate, estimate_network, fold_table, sweep_array_sizes
from effdl.hardware.systolic.result import Folds, NetworkResult, SystolicResult, Traffic
from effdl.hardware.systolic.step import Trace, simulate
from effdl.hardware.systolic.topology import read_topology

__all__ = ["DATAFLOWS", "MAPPING", "STATIONARY", "TIMINGS", "Folds", "Gemm", "NetworkResult", "SystolicConfig",
           "SystolicResult", "Trace", "Traffic", "conv_gemm", "estimate", "estimate_network", "fold_table",
           "network_gemms", "random_gemm", "read_topology", "simulate", "sweep_array_sizes"]
