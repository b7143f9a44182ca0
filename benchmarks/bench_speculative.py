#!/usr/bin/env python
"""Chapter 21: speculative decoding's tokens/s against the target model alone, in the same run.

The book's GPT (``load_lm("lm")``, 1.3 M parameters) generates 96 greedy
tokens after each of 8 fixed 32-byte test prompts, alone (with its KV cache)
and speculatively with the plain and the distilled 125 k-parameter drafts at
n_draft 1, 2, 4 and 8 (``effdl.precompute.lm_distill.speculation_table``:
medians of 3 timed runs after a warm-up, one thread). Ratio = target-alone
time ÷ speculative time (above 1: faster). Also the cost ratio c of one
draft decode step to one target decode step at context 128, and the
expected speed-up of Leviathan et al. 2023 (Theorem 3.8) at the measured α
and c. The 1-minute load average before and after is recorded. Writes
benchmarks/results/speculative.json.
    .venv/bin/python benchmarks/bench_speculative.py
"""
import json
import os
from pathlib import Path

import torch

from effdl.precompute.lm import load_lm, split_ids
from effdl.precompute.lm_distill import N_NEW, N_PROMPTS, PROMPT_LEN, speculation_table
from effdl.train import threads

OUT = Path(__file__).resolve().parent / "results" / "speculative.json"


def main() -> None:
    os.environ.setdefault("EFFDL_QUIET", "1")
    ids = split_ids("test")
    step = (ids.numel() - PROMPT_LEN - N_NEW) // N_PROMPTS
    prompts = [ids[i * step:i * step + PROMPT_LEN] for i in range(N_PROMPTS)]
    load_before = os.getloadavg()[0]
    with threads(1):
        table = speculation_table(load_lm("lm"), {"plain": load_lm("lm_draft"),
                                                  "distilled": load_lm("lm_draft_distilled")}, prompts)
    result = {"torch": torch.__version__, "threads": 1, "prompts": N_PROMPTS, "prompt_len": PROMPT_LEN,
              "n_new": N_NEW, "load_avg_1min": [load_before, os.getloadavg()[0]], **table,
              "ratio": "measured_speedup = target-alone seconds / speculative seconds, same run"}
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"target alone: {table['target_tokens_per_s']} tokens/s; cost ratio c: {table['cost_ratio']}")
    for r in table["rows"]:
        print(f"{r['draft']:>9} n_draft={r['n_draft']}: α={r['greedy_acceptance']:.2f} "
              f"{r['tokens_per_s']} tokens/s, measured {r['measured_speedup']:.2f}×, "
              f"expected {r['expected_speedup']:.2f}×")


if __name__ == "__main__":
    main()
