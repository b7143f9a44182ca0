#!/usr/bin/env python
"""Size and speed of effdl.coding's Huffman coder against zlib, in the same run.

1,000,000 symbols from a 32-symbol skewed distribution shaped like quantized
weights (Laplace(0, 3) rounded and clipped to 32 bins), stored one per byte
(uint8) for zlib. Reports bits per symbol (Huffman, zlib, the Shannon entropy,
a fixed 5-bit code) and encode / decode throughput in Msymbols/s (= MB/s of the
uint8 input), as ratios against zlib.compress / zlib.decompress at the default
level. The Huffman round trip is checked bit for bit. Writes
benchmarks/results/huffman.json.
"""
import json
import os
import platform
import timeit
import zlib
from pathlib import Path

import numpy as np

from effdl.coding import code_lengths, entropy_bits, huffman_code, huffman_decode, huffman_encode

OUT = Path(__file__).resolve().parent / "results" / "huffman.json"
N = 1_000_000


def best(fn, repeat=5):
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    rng = np.random.default_rng(0)
    symbols = np.clip(np.round(rng.laplace(0.0, 3.0, N)) + 16, 0, 31).astype(np.uint8)
    raw = symbols.tobytes()
    counts = np.bincount(symbols, minlength=32)
    code = huffman_code(counts)
    lengths = code_lengths(code)
    data, n_bits = huffman_encode(symbols, code)
    assert np.array_equal(huffman_decode(data, n_bits, lengths, N), symbols)
    packed = zlib.compress(raw)
    assert zlib.decompress(packed) == raw

    t = {
        "build_code": best(lambda: huffman_code(np.bincount(symbols, minlength=32))),
        "huffman_encode": best(lambda: huffman_encode(symbols, code)),
        "huffman_decode": best(lambda: huffman_decode(data, n_bits, lengths, N)),
        "zlib_compress": best(lambda: zlib.compress(raw)),
        "zlib_decompress": best(lambda: zlib.decompress(packed)),
    }
    msym = {k: round(N / v / 1e6, 2) for k, v in t.items() if k != "build_code"}
    result = {
        "n_symbols": N,
        "alphabet": 32,
        "distribution": "clip(round(Laplace(0, 3)) + 16, 0, 31), numpy default_rng(0)",
        "machine": f"{os.cpu_count()} cores, {platform.machine()}",
        "bits_per_symbol": {
            "entropy": round(entropy_bits(counts), 4),
            "huffman": round(n_bits / N, 4),
            "huffman_with_code_lengths": round((n_bits + 32 * 8) / N, 4),   # 1 byte per length
            "zlib_default": round(8 * len(packed) / N, 4),
            "fixed_5bit": 5.0,
        },
        "huffman_over_entropy": round(n_bits / N / entropy_bits(counts), 4),
        "huffman_size_over_zlib": round((n_bits / 8) / len(packed), 3),
        "max_code_length": max(lengths.values()),
        "seconds": {k: round(v, 4) for k, v in t.items()},
        "msymbols_per_s": msym,
        "slowdown_vs_zlib": {
            "encode": round(t["huffman_encode"] / t["zlib_compress"], 1),
            "decode": round(t["huffman_decode"] / t["zlib_decompress"], 1),
        },
    }
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
