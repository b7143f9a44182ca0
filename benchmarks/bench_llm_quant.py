#!/usr/bin/env python
"""Chapter 19: a 4-bit weight matmul that dequantizes on the fly, timed against the fp32 matmul.

For the book's GPT's three layer shapes (out × in: 160 × 160, 640 × 160,
160 × 640) and one Llama-2-7B projection (4096 × 4096), at 1 token (decode's
matrix–vector product) and 256 tokens (prefill): ``x @ W.T`` in fp32 (the
reference) and ``effdl.llm.quantize.int4_linear`` from codes packed two per
byte with fp16-valued scales per group of 32 columns. Ratio = int4 time ÷
fp32 time, same run, best of several repeats, one thread. Writes
benchmarks/results/llm_quant.json.
"""
import json
import os
import timeit
from pathlib import Path

import torch

from effdl.llm import quantize as qz

OUT = Path(__file__).resolve().parent / "results" / "llm_quant.json"
THREADS = 1
SHAPES = [("TinyGPT q/k/v/out", 160, 160), ("TinyGPT mlp.0", 640, 160), ("TinyGPT mlp.2", 160, 640),
          ("Llama-2-7B q_proj", 4096, 4096)]
GROUP = 32


def best_us(fn, repeat=7):
    number = max(1, int(0.05 / max(1e-7, min(timeit.repeat(fn, number=1, repeat=3)))))
    return 1e6 * min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def main() -> None:
    os.environ.setdefault("EFFDL_QUIET", "1")
    torch.set_num_threads(THREADS)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for name, out, inp in SHAPES:
        w = torch.randn(out, inp, generator=gen) * 0.02
        deq, q, scale, zero = qz._rtn(w, 4, GROUP, False)
        packed = qz.pack_int4(q.long())
        for tokens in (1, 256):
            x = torch.randn(tokens, inp, generator=gen)
            assert torch.allclose(qz.int4_linear(x, packed, scale, zero), x @ deq.T, atol=1e-4)
            fp = best_us(lambda: x @ deq.T)
            i4 = best_us(lambda: qz.int4_linear(x, packed, scale, zero))
            rows.append({"layer": name, "out": out, "in": inp, "tokens": tokens, "fp32_us": round(fp, 1),
                         "int4_us": round(i4, 1), "int4_vs_fp32": round(i4 / fp, 2),
                         "fp32_weight_bytes": 4 * out * inp,
                         "int4_weight_bytes": packed.numel() + 3 * scale.numel()})   # fp16 scale, uint8 zero
            print(rows[-1], flush=True)
    result = {"threads": THREADS, "torch": torch.__version__.split("+")[0], "group_size": GROUP, "rows": rows,
              "note": "int4_linear unpacks and dequantizes the whole matrix in torch before one fp32 matmul"}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
