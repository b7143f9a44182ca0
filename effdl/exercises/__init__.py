"""Checks for the chapters' exercises: one module per chapter, ``chNN_topic`` for ``chapters/NN_topic.ipynb``.

Each ``check_*`` takes the reader's function, calls it on fresh random
inputs and tests *properties* the right answer must have (exact counts,
invariances, agreement with ``effdl`` on inputs the reader never saw). A
failed property raises ``AssertionError`` with a hint, never the answer;
success returns a short confirmation string. Every check takes ``seed=``:
the chapters' hidden tests (nbgrader's ``### BEGIN HIDDEN TESTS``) call it
again with a seed the reader never saw. ``effdl.assign`` explains the format.

The reader's function is named ``my_<thing>`` in every chapter (for example
``my_magnitude_mask``, checked by :func:`check_magnitude_mask`), so that it
never hides the ``effdl`` function it re-implements. Chapters import the
checks from here: ``from effdl.exercises import check_magnitude_mask``.
"""
from __future__ import annotations

from .ch00_why_efficiency import check_conv_counts, check_energy_per_image
from .ch01_number_representations import check_decode_float, check_round_fixed
from .ch02_pruning import check_magnitude_mask, check_threshold_mask
from .ch03_weight_sharing import check_centroid_gradient, check_nearest_centroid
from .ch04_deep_compression import check_huffman_code, check_relative_index
from .ch05_quantization import check_fake_quantize_ste, check_fixed_point_frac_bits, check_rounding_shift
from .ch06_binary_ternary import check_ttq_gradients, check_twn_quantizer
from .ch07_lowrank import check_truncated_svd, check_tt_params
from .ch08_winograd import check_winograd_conv, check_winograd_f23
from .ch09_roofline_tpu import check_fc_intensity, check_fold_cycles
from .ch10_eie import check_eie_cycles, check_eie_storage
from .ch11_parallelism import check_split_ranges, check_staleness
from .ch12_mixed_precision import check_loss_scale_update, check_underflow_fraction
from .ch13_distillation_dsd import check_distillation_loss, check_dsd_masks
from .ch14_training_hardware import check_tensor_core_fp32_mma, check_training_days
from .ch15_wrap_up import check_accuracy_stderr, check_geomean_speedup
from .ch16_gpu_appendix import check_matmul_intensity, check_two_four_mask
from .ch17_designing_efficient_models import check_depthwise_intensity, check_pareto_front, check_separable_cost
from .ch18_transformer_costs import check_kv_cache_bytes, check_online_softmax
from .ch19_llm_quant import check_group_rtn, check_smooth_scales
from .ch20_llm_prune import check_nm_bytes, check_wanda_mask
from .ch21_decoding import check_expected_speedup, check_residual_distribution

__all__ = [
    "check_conv_counts", "check_energy_per_image",
    "check_decode_float", "check_round_fixed",
    "check_magnitude_mask", "check_threshold_mask",
    "check_centroid_gradient", "check_nearest_centroid",
    "check_huffman_code", "check_relative_index",
    "check_fake_quantize_ste", "check_fixed_point_frac_bits", "check_rounding_shift",
    "check_ttq_gradients", "check_twn_quantizer",
    "check_truncated_svd", "check_tt_params",
    "check_winograd_conv", "check_winograd_f23",
    "check_fc_intensity", "check_fold_cycles",
    "check_eie_cycles", "check_eie_storage",
    "check_split_ranges", "check_staleness",
    "check_loss_scale_update", "check_underflow_fraction",
    "check_distillation_loss", "check_dsd_masks",
    "check_tensor_core_fp32_mma", "check_training_days",
    "check_accuracy_stderr", "check_geomean_speedup",
    "check_matmul_intensity", "check_two_four_mask",
    "check_depthwise_intensity", "check_pareto_front", "check_separable_cost",
    "check_kv_cache_bytes", "check_online_softmax",
    "check_group_rtn", "check_smooth_scales",
    "check_nm_bytes", "check_wanda_mask",
    "check_expected_speedup", "check_residual_distribution",
]
