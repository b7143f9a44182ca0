#!/usr/bin/env python
"""Chapter 16 (Appendix: measured on a GPU): run every GPU measurement and record it as JSON.

Needs: a CUDA GPU (compute capability >= 8.0 for the 2:4 sparse and int8
Tensor Core sections; an older card records those sections as errors),
torch built with CUDA, about 6 GiB of free GPU memory, and this repository
(run from a checkout, no install needed). Takes about 1 minute on an
H100/H200, cold start included, and at most 2; --quick about 20 s.

    python benchmarks/gpu_appendix.py            # -> benchmarks/results/gpu_<device>.json
    python benchmarks/gpu_appendix.py OUT.json   # anywhere else
    python benchmarks/gpu_appendix.py --quick    # smaller sizes, a smoke test (gpu_<device>_quick.json)

Each section (device, copy, matmul, int8, sparse, training_step, autocast)
runs in its own try and prints one line with its time; the JSON
(effdl.hardware.gpu_bench.gpu_report) is rewritten after every section, so a
crash keeps what was measured, and a section stuck past --section-timeout is
recorded as timed out (a kernel that never returns: the process prints every
thread's stack and ends 30 s later). Chapter 16 shows benchmarks/results/gpu_*.json
beside the H200 datasheet peaks; chapter 12 shows the autocast section.
Without a CUDA device it prints why and exits with status 1, writing nothing.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:
    from effdl.hardware import gpu_bench
except ModuleNotFoundError:          # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))
    from effdl.hardware import gpu_bench


def default_out(device: str, quick: bool) -> Path:
    """benchmarks/results/gpu_<device, lower case, words joined by _>[_quick].json"""
    slug = re.sub(r"[^a-z0-9]+", "_", device.lower()).strip("_") or "cuda"
    return ROOT / "benchmarks" / "results" / f"gpu_{slug}{'_quick' if quick else ''}.json"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, nargs="?", default=None,
                        help="where to write the JSON (default: benchmarks/results/gpu_<device>[_quick].json)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke test of about 20 s")
    parser.add_argument("--section-timeout", type=float, default=gpu_bench.report.SECTION_TIMEOUT_S,
                        metavar="S", help="seconds one section may run (default: %(default)g)")
    args = parser.parse_args(argv)
    if not gpu_bench.cuda_available():
        print("gpu_appendix: needs a CUDA device; none found (nothing written).", file=sys.stderr)
        return 1
    out = args.out or default_out(gpu_bench.device_name(), args.quick)
    print(f"gpu_appendix: writing {out} after every section", flush=True)
    report = gpu_bench.gpu_report(quick=args.quick, out=out, section_timeout_s=args.section_timeout)
    print(f"{gpu_bench.run_label(report)}: {report['seconds']:.0f} s in all")
    for row in gpu_bench.report_rows(report):
        value = row["value"] if isinstance(row["value"], str) else f"{row['value']:.3g}"
        peak = "–" if row["peak"] is None else f"{row['peak']:g}"
        print(f"  {row['measurement']:<78} {value:>8} {row['unit']:<8} (H200 datasheet peak: {peak})")
    failed = [name for name in gpu_bench.SECTIONS if "error" in report[name]]
    print(f"wrote {out}" + (f"; failed sections: {', '.join(failed)}" if failed else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
