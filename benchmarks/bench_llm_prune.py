#!/usr/bin/env python
"""Chapter 20: what 50 % sparsity buys a CPU matmul — the 2:4 weight dense, as CSR, and packed — vs the dense product.

For the book's GPT's three layer shapes (out × in: 160 × 160, 640 × 160,
160 × 640) and one Llama-2-7B projection (4096 × 4096), at 1 token (decode)
and 256 tokens (prefill), with a weight pruned 2:4 by magnitude
(``effdl.llm.prune.magnitude``): ``x @ W.T`` with the original dense weight
(the reference), the same product with the pruned weight (zeros stored: a
dense kernel does not skip them), ``torch.sparse.mm`` with the pruned
weight in CSR, and the packed 2:4 format (values + 2-bit indices,
``effdl.llm.prune.pack_nm``) unpacked then multiplied (what a kernel
without sparse tensor cores has to do). Ratio = time ÷ reference time, same
run, best of several repeats, one thread. Writes benchmarks/results/llm_prune.json.
"""
import json
import os
from pathlib import Path

import torch
from bench_llm_quant import best_us            # the same timer as chapter 19's benchmark (benchmarks/ is on sys.path)

from effdl.llm import prune

OUT = Path(__file__).resolve().parent / "results" / "llm_prune.json"
THREADS = 1
SHAPES = [("TinyGPT q/k/v/out", 160, 160), ("TinyGPT mlp.0", 640, 160), ("TinyGPT mlp.2", 160, 640),
          ("Llama-2-7B q_proj", 4096, 4096)]


def main() -> None:
    os.environ.setdefault("EFFDL_QUIET", "1")
    torch.set_num_threads(THREADS)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for name, out, inp in SHAPES:
        w = torch.randn(out, inp, generator=gen) * 0.02
        w24, _ = prune.magnitude(w, pattern="2:4")
        csr = w24.to_sparse_csr()
        packed = prune.pack_nm(w24, "2:4")
        for tokens in (1, 256):
            x = torch.randn(tokens, inp, generator=gen)
            xt = x.T.contiguous()
            assert torch.allclose(torch.sparse.mm(csr, xt).T, x @ w24.T, atol=1e-4)
            assert torch.allclose(x @ prune.unpack_nm(packed).T, x @ w24.T, atol=1e-5)
            dense = best_us(lambda: x @ w.T)
            zeros = best_us(lambda: x @ w24.T)
            sparse = best_us(lambda: torch.sparse.mm(csr, xt))
            unpacked = best_us(lambda: x @ prune.unpack_nm(packed).T)
            rows.append({"layer": name, "out": out, "in": inp, "tokens": tokens, "dense_us": round(dense, 1),
                         "pruned_dense_vs_dense": round(zeros / dense, 2), "csr_vs_dense": round(sparse / dense, 2),
                         "packed_2_4_vs_dense": round(unpacked / dense, 2)})
            print(rows[-1], flush=True)
    result = {"threads": THREADS, "torch": torch.__version__.split("+")[0], "pattern": "2:4", "rows": rows,
              "note": "CPU only: no kernel here skips the zeros of a 2:4 matrix; the packed format is unpacked "
                      "(plain torch) before one dense fp32 matmul"}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
