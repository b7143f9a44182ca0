"""Linear (fixed-point) quantization of weights and activations, and integer-only inference.

Taught in chapter 5, "Quantization". The lecture's recipe, as code:

1. **Gather statistics** of weights and activations — min, max and
   percentiles on a few calibration batches (:func:`tensor_stats`,
   :func:`collect_activation_stats`).
2. **Choose the format**: the radix point of a fixed-point number
   (:func:`choose_fixed_point`: how many integer and how many fraction bits —
   "dynamic fixed point", Courbariaux, Bengio & David 2014; Gupta et al.,
   ICML 2015), or more generally an affine ``scale`` and ``zero_point``
   (:func:`choose_scale`), per tensor or per output channel.
3. **Fine-tune in float with fake quantization** (:func:`fake_quantize`,
   :func:`quantize_model`, :func:`finetune_quantized`): the forward pass sees
   quantized values, the backward pass uses the straight-through estimator
   (gradient 1 inside the clipping range, 0 outside).
4. **Convert to fixed point** and run with integers only
   (:class:`IntegerLeNet`): n-bit weights and activations, int32
   accumulators, the bias in int32 at scale ``s_w · s_a``, and requantization
   between layers by an integer multiplier and a rounding right shift — the
   integer-arithmetic-only inference of Jacob et al., *Quantization and
   Training of Neural Networks for Efficient Integer-Arithmetic-Only
   Inference*, CVPR 2018.

Conventions. A quantized value is ``q = clamp(round(x / scale) + zero_point,
qmin, qmax)`` and stands for ``x̂ = (q − zero_point) · scale``; rounding is
round-half-to-even throughout (as ``torch.round`` and chapter 1's
:func:`effdl.numerics.round_to_format`). A *symmetric* quantizer is signed
(two's complement, ``[−2^(n−1), 2^(n−1) − 1]``) with ``zero_point = 0``; an
*asymmetric* one is unsigned (``[0, 2^n − 1]``) with an integer zero point —
torch's qint8 / quint8 convention. The element-wise primitives
(:func:`quantize`, :func:`dequantize`, :func:`fake_quantize`,
:func:`choose_scale`) accept ``n_bits`` from 2 to 32; models
(:func:`quantize_model`, :class:`IntegerLeNet`, :func:`sweep_bits`) accept
2 to 16 bits (1 bit is chapter 6's binary nets, ``effdl.ternary``).

**Why the integer model equals the fake-quantized one bit for bit.** With
``power_of_two=True`` (the default; a scale 2^-f *is* a radix point) every
fake-quantized weight, activation and bias is a dyadic rational ``k · 2^-f``
with few significant bits, and in eval mode :class:`QuantizedModel` computes
in float64: every product and partial sum is then exact (the integer
accumulator is proven below 2^31 at 8 bits, and below float64's 2^53 at
every supported width), so the float
layer output equals ``s_a · s_w · acc`` exactly and the next quantizer's
``round(y / s)`` equals the integer model's rounding right shift of ``acc``
(half to even in both). Max-pooling and ReLU commute with the positive,
per-channel scale, so the integer model pools the accumulator and applies
ReLU as a clamp at the zero point. With arbitrary scales
(``power_of_two=False``) the integer model uses Jacob et al.'s 31-bit
fixed-point multiplier and agrees up to rare one-step differences;
:func:`compare_integer` measures them.
"""
from .common import DEFAULT_PERCENTILES, MODEL_BITS, PRIMITIVE_BITS, QUANT_TYPES, qrange
from .stats import TensorStats, collect_activation_stats, iter_batches, tensor_stats
from .scales import (WEIGHT_CLIPS, FixedPoint, choose_fixed_point, choose_scale, dequantize, fake_quantize,
                     quantize, weight_qparams)
from .fake import FakeQuantConv2d, FakeQuantLinear, QuantConfig, QuantizedModel, finetune_quantized, quantize_model
from .integer import (IntegerLayer, IntegerLeNet, compare_integer, fixed_point_multiplier, int8_gemm_exact,
                      requantize, torch_ao_int8)
from .sweeps import bits_table, sweep_bits

__all__ = [
    "TensorStats", "tensor_stats", "collect_activation_stats", "iter_batches",
    "FixedPoint", "qrange", "choose_scale", "choose_fixed_point", "weight_qparams", "WEIGHT_CLIPS",
    "quantize", "dequantize", "fake_quantize",
    "QuantConfig", "FakeQuantLinear", "FakeQuantConv2d", "QuantizedModel", "quantize_model",
    "finetune_quantized",
    "fixed_point_multiplier", "requantize", "IntegerLayer", "IntegerLeNet", "compare_integer", "int8_gemm_exact",
    "torch_ao_int8", "sweep_bits", "bits_table",
    "DEFAULT_PERCENTILES", "MODEL_BITS", "PRIMITIVE_BITS", "QUANT_TYPES",
]
