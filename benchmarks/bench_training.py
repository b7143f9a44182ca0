#!/usr/bin/env python
"""Chapters 11 and 12: what parallel and mixed-precision training cost on this machine.

1. Process start: ``effdl.training.parallel.launch`` of 2 workers that only join the group,
   with ``spawn`` (fresh interpreters, each importing torch) and with ``forkserver`` (forked
   from one server that imported torch once), first and warm launches.
2. DDP seconds per epoch (strong scaling: global batch 128) for 1, 2 and 4 processes, one thread
   each, LeNet-300-100 on the 3,500 training images and LeNet-5 on 1,024; ratio vs 1 process.
   Best of REPEATS runs, interleaved so that a change in the machine's load hits all alike.
3. The gloo all-reduce of LeNet-300-100's gradient (266,610 floats) between 2 processes.
4. Emulated fp16 training (fp32 master weights; pure fp16): one epoch vs fp32, one thread.
5. Matmul GFLOP/s in fp32, bf16 and fp16 on the CPU (n = 512), one and two threads, and the CPU's
   bf16/fp16 instruction flags.

Writes benchmarks/results/training.json.
"""
import json
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist

from effdl.training import mixed_precision as M
from effdl.training import parallel as P

OUT = Path(__file__).resolve().parent / "results" / "training.json"
REPEATS = 3


def _join_only(rank, world_size):
    dist.barrier()
    return rank


def _allreduce_ms(rank, world_size, n, repeats):
    t = torch.randn(n)
    dist.all_reduce(t)                                   # warm-up: gloo connects lazily
    best = float("inf")
    for _ in range(repeats):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(t)
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def main() -> None:
    os.environ.setdefault("EFFDL_QUIET", "1")
    result = {"torch": torch.__version__.split("+")[0], "cpu_count": os.cpu_count(), "repeats": REPEATS,
              "load_average_start": os.getloadavg()}

    launches = {}
    for method in ("spawn", "forkserver", "forkserver"):
        start = time.perf_counter()
        P.launch(_join_only, 2, start_method=method, timeout_s=300)
        key = method if method not in launches else f"{method}_warm"
        launches[key] = round(time.perf_counter() - start, 3)
    result["launch_2_workers_s"] = launches
    print("launch", launches, flush=True)

    epochs = {}
    for arch, n_train in (("lenet300", None), ("lenet5", 1024)):
        best = {w: float("inf") for w in (1, 2, 4)}
        for _ in range(REPEATS):
            for w, s in P.time_per_epoch((1, 2, 4), arch=arch, n_train=n_train).items():
                best[w] = min(best[w], s)
        epochs[arch] = {"n_train": n_train or 3500, "global_batch": 128,
                        "epoch_s": {str(w): round(s, 4) for w, s in best.items()},
                        "vs_1_process": {str(w): round(s / best[1], 2) for w, s in best.items()}}
        print(arch, epochs[arch], flush=True)
    result["ddp_epoch"] = epochs

    n = 266610
    ms = P.launch(_allreduce_ms, 2, (n, 10), timeout_s=120)
    result["allreduce_lenet300_grad_ms"] = round(max(ms), 3)
    print("all-reduce ms", ms, flush=True)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    best = {m: float("inf") for m in M.MODES}
    for _ in range(REPEATS):
        for mode in M.MODES:
            start = time.perf_counter()
            M.train_mixed(mode, epochs=1)
            best[mode] = min(best[mode], time.perf_counter() - start)
    result["fp16_emulation_epoch"] = {"epoch_s": {m: round(s, 3) for m, s in best.items()},
                                      "vs_fp32": {m: round(s / best["fp32"], 2) for m, s in best.items()},
                                      "note": "one epoch of LeNet-300-100 incl. validation, one thread"}
    print("fp16 emulation", result["fp16_emulation_epoch"], flush=True)
    torch.set_num_threads(threads)

    gflops = {f"{t}_thread": {dtype: round(M.matmul_gflops(dtype, n=512, repeats=5, threads=t), 1)
                              for dtype in ("fp32", "bf16", "fp16")} for t in (1, 2)}
    result["matmul_gflops_n512"] = gflops
    result["matmul_bf16_vs_fp32_1_thread"] = round(gflops["1_thread"]["bf16"] / gflops["1_thread"]["fp32"], 2)
    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").is_file() else []
    result["cpu_bf16_fp16_flags"] = sorted({f for f in flags if f in ("avx512_bf16", "avx512_fp16", "amx_bf16")})
    result["load_average_end"] = os.getloadavg()
    print("matmul", gflops, flush=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
