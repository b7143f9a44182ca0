"""Part V's algorithms for language models: attention's IO and decoding.

``attention``  FlashAttention's tiled, online-softmax attention and its HBM count (chapter 18)
``decode``     generation with and without a KV cache, and its speed (chapter 18)
"""
from . import attention, decode

__all__ = ["attention", "decode"]
