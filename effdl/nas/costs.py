"""What a candidate network costs, from the book's own models: counts, roofline, systolic array, energy.

Taught in chapter 17. Every cost of an :class:`~effdl.nas.space.Arch` is read
from one weightless spec of it in :mod:`effdl.architectures`
(:func:`arch_spec`), so the counts are the ones chapter 0 uses:

- **params, MACs, bytes** — :func:`~effdl.architectures.count_params`,
  :func:`~effdl.architectures.count_macs`, weights at 32 bits, and the DRAM
  traffic (weights + each layer's input and output activations, fp32) of
  :func:`effdl.hardware.roofline.network_work`;
- **roofline latency** — each conv / fc layer at its roofline bound
  max(ops / peak, bytes / bandwidth) (chapter 9), summed: a lower bound that
  knows nothing of per-layer overheads;
- **systolic cycles** — :func:`effdl.hardware.systolic.network_gemms` and
  :func:`~effdl.hardware.systolic.estimate_network` on :data:`SYSTOLIC`, a
  32 × 32 weight-stationary array at 700 MHz. A depthwise conv (groups = C)
  becomes C independent GEMMs with K = k·k and N = 1 run one after the other:
  each uses one column of the array, which is why depthwise layers cost a
  systolic array far more cycles than their MACs suggest. (The mapping needs
  every conv named in the spec: :func:`arch_spec` names them all.);
- **energy** — :func:`effdl.hardware.energy.inference_energy`, 45 nm
  (Horowitz, ISSCC 2014): every MAC in fp32, every conv / fc weight read
  once from DRAM; activations, batch norm (folded into the convs) and
  control cost nothing.
"""
from __future__ import annotations

import math

from effdl.architectures import (Architecture, BatchNorm2d, Conv2d, Flatten, GlobalAvgPool, Linear, ReLU, Residual,
                                 Sequential, count_macs, count_params, layer_table)
from effdl.hardware.energy import inference_energy
from effdl.hardware.roofline import Roofline, batch_time, network_work
from effdl.hardware.systolic import SystolicConfig, estimate_network, network_gemms
from effdl.nas.space import ARCH, HEAD_WIDTH, N_CLASSES, STEM_WIDTH, STRIDES, WIDTHS, Arch
from effdl.validation import Instance, Options, validate_params

TARGETS = ("cpu", "systolic", "energy")
TARGET_UNITS = {"cpu": "ms", "systolic": "µs", "energy": "µJ"}
TARGET_LABELS = {"cpu": "CPU latency, predicted (ms)", "systolic": "systolic array latency (µs)",
                 "energy": "energy per image, 45 nm (µJ)"}
TARGET = Options(TARGETS)

# A small accelerator: 32 × 32 8-bit PEs, weight-stationary, TPU-style timing (double-buffered weights), 700 MHz.
SYSTOLIC = SystolicConfig(rows=32, cols=32, dataflow="ws", timing="tpu", double_buffered=True, clock_mhz=700.0)
# Used when no measured roofline is given: a stated one-core CPU (fp32), not a measurement.
STATED_ROOFLINE = Roofline("a stated 1-core CPU: 50 GFLOP/s, 10 GB/s", 50e9, 10e9, "dram")

_ROOFLINE = Instance(Roofline, "a Roofline (e.g. MachineRoofline.roofline)", optional=True)
_SYSTOLIC = Instance(SystolicConfig, "a SystolicConfig", optional=True)


def _conv_bn(c_in: int, c_out: int, k: int, stride: int, name: str, groups: int = 1, relu: bool = True) -> list:
    layers = [Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False, name=name), BatchNorm2d(c_out)]
    return layers + [ReLU()] if relu else layers


@validate_params(arch=ARCH)
def arch_spec(arch: Arch) -> Architecture:
    """The weightless spec of ``arch`` (input ``(1, r, r)``, already resized); every conv named.

    >>> from effdl.nas.space import smallest
    >>> from effdl.architectures import count_params
    >>> count_params(arch_spec(smallest()))
    13834

    Taught in chapter 17, "Designing efficient models".
    """
    layers, c_in = _conv_bn(1, STEM_WIDTH, 3, 2, "stem"), STEM_WIDTH
    for s, i, k, e in arch.blocks():
        c_out, stride, hidden, tag = WIDTHS[s], STRIDES[s] if i == 0 else 1, c_in * e, f"s{s + 1}b{i + 1}"
        body = Sequential(_conv_bn(c_in, hidden, 1, 1, f"{tag}_expand")
                          + _conv_bn(hidden, hidden, k, stride, f"{tag}_dw", groups=hidden)
                          + _conv_bn(hidden, c_out, 1, 1, f"{tag}_project", relu=False))
        layers.append(Residual(body, relu=False) if stride == 1 and c_in == c_out else body)
        c_in = c_out
    layers += _conv_bn(c_in, HEAD_WIDTH, 1, 1, "head") + [GlobalAvgPool(), Flatten(),
                                                           Linear(HEAD_WIDTH, N_CLASSES, name="fc")]
    return Architecture(key=f"nas:{arch.key()}", display_name=arch.key(), year=2026,
                        citation="effdl chapter 17 search space (after Once-for-All, Cai et al. 2020)",
                        input_shape=(1, arch.resolution, arch.resolution), spec=Sequential(layers),
                        published_params=0, published_macs=None, published_source="none: a search candidate")


@validate_params(arch=ARCH, roofline=_ROOFLINE, systolic=_SYSTOLIC)
def candidate_costs(arch: Arch, *, roofline: Roofline | None = None, systolic: SystolicConfig | None = None) -> dict:
    """Every cost of ``arch`` at batch 1 as a JSON-able dict.

    Keys: ``params``, ``macs``, ``weight_bytes`` (fp32), ``dram_bytes``
    (weights + activations, fp32), ``roofline_ms`` (under ``roofline``,
    default :data:`STATED_ROOFLINE`, its convention "dram"), ``systolic_cycles``,
    ``systolic_us`` and ``systolic_util`` (on ``systolic``, default
    :data:`SYSTOLIC`), ``energy_uj`` with ``energy_compute_uj`` and
    ``energy_memory_uj``.

    Taught in chapter 17, "Designing efficient models".
    """
    roofline = STATED_ROOFLINE if roofline is None else roofline
    systolic = SYSTOLIC if systolic is None else systolic
    spec = arch_spec(arch)
    works = network_work(spec, 1, n_bits_weight=32, n_bits_act=32)
    net = estimate_network(systolic, network_gemms(spec, 1))
    macs = count_macs(spec)
    weights = sum(r.weights for r in layer_table(spec))              # conv + fc weights (batch norm folded)
    energy = inference_energy(macs, weights, arithmetic="fp32", weight_memory="dram", n_bits_weight=32)
    return {"params": count_params(spec), "macs": macs, "weight_bytes": 4 * weights,
            "dram_bytes": int(sum(w.dram_bytes for w in works)),
            "roofline_ms": 1e3 * sum(batch_time(w, roofline) for w in works),
            "systolic_cycles": int(net.cycles), "systolic_us": net.seconds * 1e6,
            "systolic_util": net.utilization, "energy_uj": energy["total_uj"],
            "energy_compute_uj": energy["compute_uj"], "energy_memory_uj": energy["memory_uj"]}


@validate_params(costs=Instance(dict, "a dict from candidate_costs (with 'cpu_ms' for the CPU)"), target=TARGET)
def target_cost(costs: dict, target: str) -> float:
    """The cost a search constrains for ``target``: ``"cpu"`` → ``costs["cpu_ms"]`` (the latency
    predictor's), ``"systolic"`` → ``systolic_us``, ``"energy"`` → ``energy_uj``.

    Behind chapter 17, "Designing efficient models".
    """
    key = {"cpu": "cpu_ms", "systolic": "systolic_us", "energy": "energy_uj"}[target]
    if key not in costs or not math.isfinite(costs[key]):
        raise ValueError(f"target_cost: costs must hold a finite {key!r} for target {target!r}; "
                         f"got keys {sorted(costs)}.")
    return float(costs[key])


__all__ = ["TARGETS", "TARGET_UNITS", "TARGET_LABELS", "SYSTOLIC", "STATED_ROOFLINE", "arch_spec", "candidate_costs",
           "target_cost"]
