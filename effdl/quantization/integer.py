"""Integer-only inference (step 4): requantization, the integer LeNet, and torch.ao as an oracle.

Taught in chapter 5, "Quantization"; after Jacob et al., CVPR 2018.
"""
from __future__ import annotations

import copy
import functools
import math
import warnings
from dataclasses import dataclass
from typing import Any

import torch
import torch.ao.quantization as tq
from torch import nn

from .._validate import _fail
from ..data import Split
from ..models import LeNet5, LeNet300
from ..validation import (Bool, Instance, Interval, Module, OneOf, Options, PositiveInt, Tensor, check_part,
                          validate_params)
from .common import BATCHES, BITS, INT32_MAX, INT32_MIN, SPLIT, _qrange
from .stats import _forward, _iter_batches
from .scales import _quantize_core
from .fake import FakeQuantConv2d, QuantizedModel, _FakeQuantMixin

# ---------------------------------------------------------------------------
# 5. Integer-only inference
# ---------------------------------------------------------------------------

@validate_params(m=Interval(float, 0, None, closed="neither"), n_bits=Interval(int, 1, 62))
def fixed_point_multiplier(m: float, n_bits: int = 31) -> tuple[int, int]:
    """Write a positive real ``m`` as ``m0 · 2^-shift`` with ``m0`` an integer in [2^(n_bits−1), 2^n_bits).

    Jacob et al. (2018), §2.2: the requantization factor ``s_a · s_w /
    s_out`` is applied as an integer multiply and a right shift. A power of
    two is represented exactly.

    >>> fixed_point_multiplier(0.25)
    (1073741824, 32)
    >>> fixed_point_multiplier(0.1)
    (1717986918, 34)

    Behind chapter 05, "Quantization".
    """
    frac, exp = math.frexp(m)                        # m = frac · 2^exp, frac in [0.5, 1)
    m0 = round(math.ldexp(frac, n_bits))             # in [2^(n_bits−1), 2^n_bits]
    shift = n_bits - exp
    if m0 == 2 ** n_bits:                            # rounding carried into the next bit
        m0, shift = m0 // 2, shift - 1
    return int(m0), int(shift)


def _rounding_right_shift(v: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """round(v / 2^shift), ties to even, in int64; shift ≥ 1.

    ``>>`` is an arithmetic shift, floor(v / 2^shift). Adding ``2^(shift−1) − 1``
    rounds every fraction above one half up and every one below down; the
    exact tie rounds up only when ``+ odd`` (the floor is odd) tips it over.
    """
    odd = (v >> shift) & 1
    return (v + ((torch.ones_like(shift) << (shift - 1)) - 1) + odd) >> shift


def _requantize_core(acc, m0, shift, zero_point, qmin, qmax, relu):
    r = _rounding_right_shift(acc * m0, shift)       # round(acc · m), |acc · m0| < 2^63 by construction
    if relu:
        r = r.clamp(min=0)                           # ReLU: round(max(v, 0)/s) = max(round(v/s), 0)
    return (r + zero_point).clamp(qmin, qmax)


MULTIPLIER_RANGE, SHIFT_RANGE = (1, 2 ** 31 - 1), (1, 62)


@validate_params(acc=Tensor(dtype="int", finite=False, convert=False, nonempty=False),
                 multiplier=OneOf(Interval(int, *MULTIPLIER_RANGE), Tensor(dtype="int", finite=False)),
                 shift=OneOf(Interval(int, *SHIFT_RANGE), Tensor(dtype="int", finite=False)),
                 zero_point=Interval(int, None, None),
                 n_bits=BITS, signed=Bool(), relu=Bool())
def requantize(acc: torch.Tensor, multiplier: Any, shift: Any, zero_point: int, n_bits: int, *,
               signed: bool = False, relu: bool = False) -> torch.Tensor:
    """Next layer's input from an accumulator: ``clamp(z + round(acc · m0 / 2^shift), qmin, qmax)``.

    Integer arithmetic only (int64 for the product ``acc · m0``, as a
    32 × 32 → 64-bit multiply); rounding half to even. ``relu`` clamps at
    the zero point first. ``multiplier`` / ``shift`` are ints or int64
    tensors broadcastable against ``acc`` (per channel).

    >>> requantize(torch.tensor([5, 6, 7, -9]), 2 ** 30, 32, 0, 8, signed=True)   # acc / 4, half to even
    tensor([ 1,  2,  2, -2])

    Behind chapter 05, "Quantization".
    """
    qmin, qmax = _qrange(n_bits, signed)
    if not qmin <= zero_point <= qmax:
        _fail(ValueError, "zero_point", f"an integer in [{qmin}, {qmax}] (the {n_bits}-bit range)", zero_point)
    acc = acc.to(torch.int64)                        # the range check in int64: no overflow for any dtype
    m0 = torch.as_tensor(multiplier, dtype=torch.int64)
    sh = torch.as_tensor(shift, dtype=torch.int64)
    for name, t, (lo, hi) in (("multiplier", m0, MULTIPLIER_RANGE), ("shift", sh, SHIFT_RANGE)):
        if bool(((t < lo) | (t > hi)).any()):
            _fail(ValueError, name, f"integers in [{lo}, {hi}]", t.tolist() if t.ndim == 0 else t)
    if bool((acc.abs() > INT32_MAX).any()):
        _fail(ValueError, "acc", "within int32", int(acc.abs().max()))
    for name, t in (("multiplier", m0), ("shift", sh)):
        try:
            if torch.broadcast_shapes(acc.shape, t.shape) != acc.shape:
                raise RuntimeError
        except RuntimeError:
            _fail(ValueError, name, f"broadcastable to acc's shape {tuple(acc.shape)}", tuple(t.shape))
    return _requantize_core(acc, m0, sh, zero_point, qmin, qmax, relu)


@dataclass
class IntegerLayer:
    """One layer of :class:`IntegerLeNet`: integer weights, bias and requantization constants.

    ``weight`` holds the n-bit integers (int8 for 8 bits); ``bias`` the
    int32 values (stored int64) at scale ``input_scale · weight_scale``;
    ``multiplier``/``shift`` (per output channel) requantize the accumulator
    to the next layer's input, whose zero point and range are
    ``out_zero_point``, ``out_qmin``, ``out_qmax``; the last layer has
    ``out_scale`` (per channel) to dequantize the logits instead.
    ``acc_bound`` is a proven bound on ``|accumulator|``.

    Behind chapter 05, "Quantization".
    """

    name: str
    kind: str                      # "linear" or "conv"
    after: str | None              # "relu", "pool_relu" or None (the logits)
    weight: torch.Tensor           # (out, in) or (out, in, kh, kw), n-bit integers
    weight_zero_point: torch.Tensor  # (out,) int64
    weight_scale: torch.Tensor     # (out,) float64
    bias: torch.Tensor             # (out,) int64 holding int32 values
    input_scale: float
    input_zero_point: int
    input_qmin: int
    input_qmax: int
    acc_bound: int
    multiplier: torch.Tensor | None = None   # (out,) int64, in [2^30, 2^31) for 31-bit multipliers
    shift: torch.Tensor | None = None        # (out,) int64
    out_zero_point: int | None = None
    out_qmin: int | None = None
    out_qmax: int | None = None
    out_scale: torch.Tensor | None = None    # (out,) float64, last layer only
    stride: tuple = (1, 1)
    fast: dict | None = None                 # int8 × int8 → int32 GEMM operands, when used

    @property
    def accumulator_bits(self) -> int:
        return 32 if self.acc_bound <= INT32_MAX else 64


_PROGRAMS = {
    # the float models' forward passes, layer by layer: what follows each layer's accumulator
    LeNet300: [("fc1", "relu"), ("fc2", "relu"), ("fc3", None)],
    LeNet5: [("conv1", "pool_relu"), ("conv2", "pool_relu"), ("fc1", "relu"), ("fc2", None)],
}


@validate_params()
@functools.lru_cache(maxsize=1)
def int8_gemm_exact() -> bool:
    """Whether ``torch._int_mm`` (int8 × int8 → int32) is exact on this CPU, checked once per process.

    It is not everywhere: on x86 CPUs without VNNI instructions (AVX-512 VNNI
    or AVX-VNNI) oneDNN multiplies int8 with ``vpmaddubsw``, which adds each
    pair of u8 × s8 products into a *saturating* int16 — 2 · 255 · 128 does
    not fit — so large sums come out wrong (seen here with
    ``ONEDNN_MAX_CPU_ISA=AVX2``). The probe multiplies the worst case (every
    operand at ±127 / −128) and random operands and compares with int64.

    Behind chapter 05, "Quantization".
    """
    if not hasattr(torch, "_int_mm"):
        return False
    g = torch.Generator().manual_seed(0)
    # shapes large enough for the optimised kernel that real layers get: (64, 256) @ (256, 32)
    worst = torch.tensor([[-128, 127] * 128] * 64, dtype=torch.int8)
    rand = torch.randint(-128, 128, (64, 256), dtype=torch.int8, generator=g)
    b = torch.randint(-128, 128, (256, 32), dtype=torch.int8, generator=g)
    b[:, 0], b[:, 1] = -128, torch.tensor([-128, 127] * 128, dtype=torch.int8)
    try:
        return all(torch.equal(torch._int_mm(a, b).to(torch.int64), a.to(torch.int64) @ b.to(torch.int64))
                   for a in (worst, rand))
    except RuntimeError:                 # no int8 GEMM for these shapes on this build
        return False


QMODEL = Instance(QuantizedModel, "a QuantizedModel (from quantize_model)")
BACKEND = Options(("auto", "int8", "int64"))


def _refuse(exc: type, name: str, what: str, value: Any):
    """An IntegerLeNet error in the package's template (the class is not a decorated function)."""
    raise exc(f"IntegerLeNet: {name} must be {what}; got {value!r}.")


class IntegerLeNet(nn.Module):
    """Integer-only inference of a fake-quantized LeNet-300-100 or LeNet-5.

    Built from a :class:`QuantizedModel` with both weights and activations
    quantized. Only two steps touch floats: quantizing the input image (the
    first layer's input quantizer) and dequantizing the 10 logit
    accumulators. In between:

    - each layer accumulates ``Σ (q_a − z_a)(q_w − z_w) + q_bias`` in
      integers (convolutions by im2col); every ``|acc|`` is proven below
      ``acc_bound`` at construction — below 2^31 for 8-bit LeNets, so int32
      accumulators suffice (``accumulator_bits``);
    - ``backend="int8"`` runs a real int8 × int8 → int32 GEMM
      (``torch._int_mm``); unsigned 8-bit activations are shifted by −128 to
      fit int8 and the shift's effect, ``(128 − z_a) · Σ_k q_w``, is folded
      into the bias (the zero-point algebra of Jacob et al., §2.3).
      ``backend="int64"`` multiplies
      in int64 (any bit width; exact, and equal to int32 where the bound
      holds). ``"auto"`` picks int8 when it applies and
      :func:`int8_gemm_exact` finds ``torch._int_mm`` exact on this CPU
      (it is not without VNNI instructions), else int64 — the same integers;
    - max-pooling acts on the accumulator; requantization multiplies by a
      per-channel fixed-point multiplier (int64 product, as a 32 × 32 →
      64-bit multiply), shifts right with rounding half to even, applies ReLU
      as a clamp at the zero point and clamps to the next input's range.

    The forward returns float64 logits (CPU) so that :func:`effdl.train.evaluate`
    works; :meth:`trace` returns every intermediate integer tensor.

    Taught in chapter 05, "Quantization".
    """

    def __init__(self, qmodel: QuantizedModel, *, backend: str = "auto"):
        super().__init__()
        check_part("IntegerLeNet", QMODEL, "qmodel", qmodel)
        check_part("IntegerLeNet", BACKEND, "backend", backend)
        arch = type(qmodel.model)
        if arch not in _PROGRAMS:
            _refuse(ValueError, "qmodel", "a quantized LeNet300 or LeNet5", arch.__name__)
        c = qmodel.config
        if not (c.n_bits_weight and c.n_bits_act):
            _refuse(ValueError, "qmodel", "quantized in both weights and activations (n_bits_weight "
                                                      "and n_bits_act set)", c.mode)
        self.arch = arch.__name__
        self.config = c
        program = _PROGRAMS[arch]
        fq = [qmodel.model.get_submodule(name) for name, _ in program]
        self.layers: list[IntegerLayer] = []
        for i, ((name, after), layer) in enumerate(zip(program, fq)):
            nxt = fq[i + 1] if i + 1 < len(fq) else None
            self.layers.append(self._convert(name, after, layer, nxt))
        can_int8 = (int8_gemm_exact() and c.n_bits_weight <= 8 and c.n_bits_act <= 8
                    and all(int(l.weight_zero_point.abs().max()) == 0 and l.accumulator_bits == 32
                            and self._int8_gemm_bound(l) <= INT32_MAX for l in self.layers))
        if backend == "int8" and not can_int8:
            _refuse(ValueError, "backend",
                  "'int8' only for ≤ 8-bit symmetric weights, ≤ 8-bit activations and int32-bounded accumulators, "
                  "where torch._int_mm is exact on this CPU (int8_gemm_exact(); use 'int64' or 'auto' otherwise)",
                  backend)
        self.backend = "int8" if (backend == "int8" or (backend == "auto" and can_int8)) else "int64"
        if self.backend == "int8":
            for l in self.layers:
                l.fast = self._int8_operands(l)
        self.eval()

    @property
    def accumulator_bits(self) -> int:
        """32 when every layer's accumulator provably fits int32, else 64."""
        return max(l.accumulator_bits for l in self.layers)

    @staticmethod
    @torch.no_grad()
    def _convert(name: str, after: str | None, layer: _FakeQuantMixin, nxt) -> IntegerLayer:
        if isinstance(layer, FakeQuantConv2d):
            if (layer.padding != (0, 0) or layer.dilation != (1, 1) or layer.groups != 1
                    or layer.padding_mode != "zeros"):
                _refuse(ValueError, "qmodel", f"convolutions without padding, dilation or groups ({name})",
                      layer)
        s_a, z_a = float(layer.act_scale), int(layer.act_zero_point)
        a_qmin, a_qmax = layer.input_qrange()
        s_w, z_w = layer.weight_qparams()
        out = layer.weight.shape[0]
        s_w, z_w = s_w.expand(out).clone(), z_w.expand(out).clone()              # (out,)
        w_qmin, w_qmax = layer.weight_qrange()
        view = [-1] + [1] * (layer.weight.ndim - 1)
        q_w = _quantize_core(layer.weight.detach().double().cpu(), s_w.view(view), z_w.view(view), w_qmin, w_qmax)
        acc_scale = s_a * s_w                                                   # (out,) = s_a · s_w
        bias = torch.zeros(out, dtype=torch.float64) if layer.bias is None else layer.bias.detach().double().cpu()
        q_b = torch.round(bias / acc_scale).clamp(INT32_MIN, INT32_MAX).to(torch.int64)
        # |acc| ≤ Σ_k |q_w − z_w| · max|q_a − z_a| + |q_b|, per output channel
        w_abs_sum = (q_w.to(torch.int64) - z_w.view(view)).abs().flatten(1).sum(1)
        a_absmax = max(abs(a_qmin - z_a), abs(a_qmax - z_a))
        acc_bound = int((w_abs_sum * a_absmax + q_b.abs()).max())
        # float64 holds every such integer exactly: the fake-quantized model's sums are exact too
        assert acc_bound < 2 ** 53, f"{name}: accumulator bound {acc_bound} exceeds 2^53"
        rec = IntegerLayer(name=name, kind="conv" if isinstance(layer, FakeQuantConv2d) else "linear", after=after,
                           weight=q_w, weight_zero_point=z_w, weight_scale=s_w, bias=q_b, input_scale=s_a,
                           input_zero_point=z_a, input_qmin=a_qmin, input_qmax=a_qmax, acc_bound=acc_bound,
                           stride=tuple(getattr(layer, "stride", (1, 1))))
        if nxt is None:
            rec.out_scale = acc_scale
            return rec
        s_next = float(nxt.act_scale)
        rec.out_zero_point = int(nxt.act_zero_point)
        rec.out_qmin, rec.out_qmax = nxt.input_qrange()
        # multiplier bits such that |acc · m0| < 2^63 (31 for int32 accumulators)
        mult_bits = min(31, 62 - acc_bound.bit_length())
        pairs = [fixed_point_multiplier(float(m), mult_bits) for m in (acc_scale / s_next).tolist()]
        rec.multiplier = torch.tensor([p[0] for p in pairs], dtype=torch.int64)
        rec.shift = torch.tensor([p[1] for p in pairs], dtype=torch.int64)
        assert int(rec.shift.min()) >= 1, "requantization multiplier ≥ 2^(bits−1) is not supported"
        return rec

    @staticmethod
    def _int8_offset(l: IntegerLayer) -> int:
        return 128 if l.input_qmax > 127 else 0                                 # uint8 → int8: q − 128

    @classmethod
    def _int8_gemm_bound(cls, l: IntegerLayer) -> int:
        """Bound on |Σ_k (q_a − offset) · q_w|, the int32 GEMM's own accumulator."""
        o = cls._int8_offset(l)
        a_absmax = max(abs(l.input_qmin - o), abs(l.input_qmax - o))
        return int(l.weight.to(torch.int64).abs().flatten(1).sum(1).max()) * a_absmax

    @classmethod
    def _int8_operands(cls, l: IntegerLayer) -> dict:
        w = l.weight.to(torch.int64).flatten(1)                                 # (out, K), z_w = 0
        offset = cls._int8_offset(l)
        bias = l.bias + (offset - l.input_zero_point) * w.sum(1)                # fold the shift into the bias
        assert int(bias.abs().max()) <= INT32_MAX
        return {"w_t": w.to(torch.int8).t().contiguous(), "offset": offset,   # w_t: (K, out)
                "bias": bias.to(torch.int32)}

    # -- the integer kernels
    def _operand(self, l: IntegerLayer, q: torch.Tensor) -> torch.Tensor:
        """The GEMM's input operand from input integers q_a: int8 (q_a − offset), or int64 (q_a − z_a)."""
        if self.backend == "int8":
            return (q.to(torch.int16) - l.fast["offset"]).to(torch.int8)
        return q.to(torch.int64) - l.input_zero_point

    def _matmul(self, l: IntegerLayer, cols: torch.Tensor) -> torch.Tensor:
        """cols (M, K) from :meth:`_operand` → accumulators (M, out): int32 (int8 backend) or int64."""
        if self.backend == "int8":
            # int8 × int8 → int32 GEMM; + the folded bias, still within int32 (acc_bound)
            return torch._int_mm(cols.contiguous(), l.fast["w_t"]) + l.fast["bias"]
        w = l.weight.to(torch.int64).flatten(1) - l.weight_zero_point.view(-1, 1)
        acc = cols @ w.t() + l.bias
        # kept as int32 where the bound proves it fits, as the int8 backend keeps it: same integers, same dtype
        return acc.to(torch.int32) if l.accumulator_bits == 32 else acc

    def _layer(self, l: IntegerLayer, q: torch.Tensor) -> torch.Tensor:
        q = self._operand(l, q)
        if l.kind == "linear":
            return self._matmul(l, q.flatten(1))                                # (N, out)
        n, _, h, w = q.shape
        kh, kw = l.weight.shape[2:]
        sh, sw = l.stride
        patches = q.unfold(2, kh, sh).unfold(3, kw, sw)                         # (N, C, Ho, Wo, kh, kw)
        ho, wo = patches.shape[2], patches.shape[3]
        cols = patches.permute(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, -1)       # (N·Ho·Wo, C·kh·kw)
        acc = self._matmul(l, cols)                                             # (N·Ho·Wo, out)
        return acc.view(n, ho, wo, -1).permute(0, 3, 1, 2)                      # (N, out, Ho, Wo)

    @staticmethod
    def _maxpool2(acc: torch.Tensor) -> torch.Tensor:
        n, c, h, w = acc.shape
        return acc[:, :, :h - h % 2, :w - w % 2].reshape(n, c, h // 2, 2, w // 2, 2).amax(dim=(3, 5))

    def quantize_input(self, x: torch.Tensor) -> torch.Tensor:
        """The image as integers: the first layer's input quantizer (the one float → int step)."""
        l = self.layers[0]
        return _quantize_core(x.detach().cpu(), torch.tensor(l.input_scale, dtype=torch.float64),
                              torch.tensor(l.input_zero_point), l.input_qmin, l.input_qmax)

    def _check_input(self, x: Any) -> None:
        if not isinstance(x, torch.Tensor):
            _refuse(TypeError, "x", "a torch.Tensor of images (N, 1, 28, 28)", x)
        if not x.is_floating_point():
            _refuse(TypeError, "x", "a floating-point tensor of images (the first layer quantizes it)",
                  x.dtype)
        if self.arch == "LeNet5":
            ok = x.ndim == 4 and tuple(x.shape[1:]) == (1, 28, 28)
        else:   # LeNet-300-100 flattens its input
            ok = x.ndim >= 2 and x[0].numel() == 784
        if not ok or x.shape[0] == 0:
            what = "(N, 1, 28, 28)" if self.arch == "LeNet5" else "(N, 1, 28, 28) or (N, 784)"
            _refuse(ValueError, "x", f"a non-empty batch of images of shape {what}", tuple(x.shape))
        if not bool(torch.isfinite(x).all()):
            _refuse(ValueError, "x", "finite (no NaN or inf)", float(x[~torch.isfinite(x)].flatten()[0]))

    @torch.no_grad()
    def _run(self, x: torch.Tensor, trace: dict | None) -> torch.Tensor:
        self._check_input(x)
        q = self.quantize_input(x)
        if trace is not None:
            trace["input"] = q
        for l in self.layers:
            acc = self._layer(l, q)
            if l.after == "pool_relu":
                acc = self._maxpool2(acc)
            if trace is not None:
                trace[f"{l.name}.acc"] = acc
            view = [1, -1] + [1] * (acc.ndim - 2)                               # per channel on dim 1
            if l.out_scale is not None:                                         # the logits
                return acc.double() * l.out_scale.view(view)
            q = _requantize_core(acc.to(torch.int64), l.multiplier.view(view), l.shift.view(view), l.out_zero_point,
                                 l.out_qmin, l.out_qmax, relu=l.after in ("relu", "pool_relu"))
            if trace is not None:
                trace[f"{l.name}.out"] = q
        raise AssertionError("the last layer has out_scale")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float64 logits (N, 10), dequantized from the last layer's int32 accumulators."""
        return self._run(x, None)

    def trace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every intermediate tensor: ``input``, ``<layer>.acc`` (after pooling), ``<layer>.out``, ``logits``."""
        trace: dict = {}
        trace["logits"] = self._run(x, trace)
        return trace

    def summary(self) -> list[dict]:
        """Per layer: weight dtype and range, accumulator bound and bits, multiplier and shift range."""
        rows = []
        for l in self.layers:
            row = {"layer": l.name, "weight_dtype": str(l.weight.dtype).replace("torch.", ""),
                   "weight_min": int(l.weight.min()), "weight_max": int(l.weight.max()),
                   "bias_absmax": int(l.bias.abs().max()), "acc_bound": l.acc_bound,
                   "accumulator_bits": l.accumulator_bits, "input_zero_point": l.input_zero_point}
            if l.multiplier is not None:
                row.update(multiplier_min=int(l.multiplier.min()), multiplier_max=int(l.multiplier.max()),
                           shift_min=int(l.shift.min()), shift_max=int(l.shift.max()))
            rows.append(row)
        return rows


@validate_params(qmodel=QMODEL, split=SPLIT, backend=BACKEND, batch_size=PositiveInt())
@torch.no_grad()
def compare_integer(qmodel: QuantizedModel, split: Split, *, backend: str = "auto",
                    batch_size: int = 1000) -> dict:
    """Run :class:`IntegerLeNet` and the fake-quantized model on ``split``; how far apart are they?

    Returns ``{"predictions_equal", "n_prediction_mismatches", "logits_equal",
    "max_abs_logit_diff", "int_acc", "fake_quant_acc", "accumulator_bits",
    "backend"}`` (accuracies in percent). The fake-quantized model runs in
    eval mode on the CPU (float64).

    Taught in chapter 05, "Quantization".
    """
    int_model = IntegerLeNet(qmodel, backend=backend)
    was_training = qmodel.training
    qmodel.eval()
    device = next(qmodel.parameters()).device
    qmodel.cpu()
    try:
        fq = torch.cat([qmodel(x) for x in split.x.split(batch_size)])
    finally:
        qmodel.to(device).train(was_training)
    it = torch.cat([int_model(x) for x in split.x.split(batch_size)])
    fq_pred, it_pred = fq.argmax(1), it.argmax(1)
    n = len(split)
    return {
        "predictions_equal": bool(torch.equal(fq_pred, it_pred)),
        "n_prediction_mismatches": int((fq_pred != it_pred).sum()),
        "logits_equal": bool(torch.equal(fq.double(), it)),
        "max_abs_logit_diff": float((fq.double() - it).abs().max()),
        "int_acc": 100.0 * int((it_pred == split.y).sum()) / n,
        "fake_quant_acc": 100.0 * int((fq_pred == split.y).sum()) / n,
        "accumulator_bits": int_model.accumulator_bits,
        "backend": int_model.backend,
    }


# ---------------------------------------------------------------------------
# 6. Oracle: torch.ao post-training static quantization
# ---------------------------------------------------------------------------

@validate_params(model=Module(), calib=BATCHES, n_batches=PositiveInt(optional=True), batch_size=PositiveInt(),
                 backend=Options(("x86", "fbgemm", "qnnpack", "onednn")))
def torch_ao_int8(model: nn.Module, calib: Any, *, n_batches: int | None = 4, batch_size: int = 256,
                  backend: str = "x86") -> nn.Module:
    """Post-training static int8 quantization of ``model`` with ``torch.ao.quantization`` (eager mode).

    The oracle for our quantizer. The model is wrapped as ``QuantStub →
    model → DeQuantStub`` (LeNet's ``torch.relu``, ``max_pool2d`` and
    ``flatten`` run on quantized tensors as they are), prepared with the
    backend's default qconfig (x86 / fbgemm: histogram-calibrated quint8
    activations with ``reduce_range``, per-channel symmetric qint8 weights),
    calibrated on ``calib`` and converted. Returns the quantized model (CPU;
    float in, float out). torch 2.13 still ships this flow but marks
    ``torch.ao.quantization`` deprecated in favour of torchao; its warnings
    are silenced here. It sets ``torch.backends.quantized.engine`` to
    ``backend`` (the converted model's packed weights need it).

    Taught in chapter 05, "Quantization".
    """
    engines = [e for e in ("x86", "fbgemm", "qnnpack", "onednn") if e in torch.backends.quantized.supported_engines]
    if backend not in engines:
        _fail(ValueError, "backend", f"an engine this torch build supports, one of {engines}", backend)
    if torch.backends.quantized.engine != backend:
        torch.backends.quantized.engine = backend
    wrapped = nn.Sequential(tq.QuantStub(), copy.deepcopy(model).cpu(), tq.DeQuantStub()).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        wrapped.qconfig = tq.get_default_qconfig(backend)
        prepared = tq.prepare(wrapped)
        with torch.no_grad():
            for x in _iter_batches(calib, n_batches, batch_size, "calib", "torch_ao_int8"):
                _forward(prepared, x.cpu(), "torch_ao_int8: calib")
        return tq.convert(prepared).eval()
