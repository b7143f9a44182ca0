#!/usr/bin/env python
"""Speed of effdl.numerics.round_to_format against the libraries' own casts.

Ratios, not absolute times: effdl's float rounding (written for clarity, any
exponent/mantissa split) against numpy's float16 cast and torch's bfloat16
cast on the same 1,000,000 float32 values, in the same run. Results are
bit-identical (checked here too). Writes benchmarks/results/numerics.json.
"""
import json
import timeit
from pathlib import Path

import numpy as np
import torch

from effdl import numerics

OUT = Path(__file__).resolve().parent / "results" / "numerics.json"


def best(fn, repeat=5):
    return min(timeit.repeat(fn, number=1, repeat=repeat))


def main() -> None:
    torch.set_num_threads(1)
    x = (np.random.default_rng(0).standard_normal(1_000_000) * 10).astype(np.float32)
    xt = torch.from_numpy(x)
    ours16 = numerics.round_to_format(x, "fp16", overflow="inf")
    assert np.array_equal(ours16, x.astype(np.float16).astype(np.float64))
    oursb = numerics.round_to_format(x, "bf16", overflow="inf")
    assert np.array_equal(oursb, xt.to(torch.bfloat16).double().numpy())
    rows = {
        "fp16_vs_numpy_cast": best(lambda: numerics.round_to_format(x, "fp16", overflow="inf"))
        / best(lambda: x.astype(np.float16)),
        "bf16_vs_torch_cast": best(lambda: numerics.round_to_format(x, "bf16", overflow="inf"))
        / best(lambda: xt.to(torch.bfloat16)),
        "q3.4_vs_numpy_round_clip": best(lambda: numerics.round_to_format(x, "q3.4"))
        / best(lambda: np.clip(np.round(x * 16) / 16, -8, 7.9375)),
    }
    result = {"n_values": x.size, "threads": 1, "slowdown_ratio": {k: round(v, 1) for k, v in rows.items()}}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
