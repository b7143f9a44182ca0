#!/usr/bin/env python
"""Chapter 16 (Appendix: measured on a GPU): run every GPU measurement and write it as JSON.

For a maintainer with a CUDA GPU; this project's own machines have none::

    python benchmarks/gpu_appendix.py out.json            # ~1-2 minutes on an H100/H200
    python benchmarks/gpu_appendix.py out.json --quick    # smaller sizes, a smoke test

The JSON is :func:`effdl.hardware.gpu_bench.gpu_report`'s dict (device, torch
and CUDA versions, copy bandwidth, matmul TFLOP/s per format, int8, 2:4
sparse vs dense, CNN training step per precision); a table of it next to the
H200's datasheet peaks (``effdl.hardware.gpu_bench.DATASHEET``) is printed. Without a CUDA device it prints why
and exits with status 1, writing nothing.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from effdl.hardware import gpu_bench


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="where to write the JSON report")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke test)")
    args = parser.parse_args(argv)
    if not gpu_bench.cuda_available():
        print("gpu_appendix: needs a CUDA device; none found (nothing written).", file=sys.stderr)
        return 1
    report = gpu_bench.gpu_report(quick=args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"{report['device']}, torch {report['torch']}, CUDA {report['cuda']}: {report['seconds']:.0f} s")
    for row in gpu_bench.report_rows(report):
        peak = "–" if row["peak"] is None else f"{row['peak']:g}"
        print(f"  {row['measurement']:<48} {row['value']:>9.3g} {row['unit']:<8} (H200 datasheet peak: {peak})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
