"""Part V's algorithms for language models: attention's IO, decoding, calibration, quantization, pruning
and speculative decoding.

``attention``  FlashAttention's tiled, online-softmax attention and its HBM count (chapter 18)
``decode``     generation with and without a KV cache, and its speed (chapter 18)
``calibration`` the inputs of every linear layer on calibration text (chapter 19)
``quantize``   RTN, GPTQ, AWQ and SmoothQuant's W8A8 on a model's linear layers (chapter 19)
``prune``      magnitude, Wanda and SparseGPT, unstructured and N:M (chapter 20)
``speculative`` speculative decoding with a draft model, and its expected speed-up (chapter 21)
"""
from . import attention, calibration, decode, prune, quantize, speculative

__all__ = ["attention", "calibration", "decode", "prune", "quantize", "speculative"]
