#!/usr/bin/env python
"""Chapter 9: the systolic-array model (effdl.hardware.systolic) — its speed, and its agreement with SCALE-Sim.

1. Speed: the closed form (`estimate`) over 32 GEMM and conv shapes (AlexNet's, VGG-16's and
   ResNet-50's layers by SCALE-Sim's im2col, GEMVs with K = 9,216, square GEMMs) on square arrays
   8×8 … 256×256, under the three dataflows and both timing conventions, on one thread: best of
   `REPEATS`. References timed in the same run: `fold_table` (the same model as numpy arrays over
   every fold, 589,824 of them for the 8×8 GEMV) on the GEMVs, and — when `scalesim` is installed
   (`pip install scalesim`; never a dependency of effdl) — SCALE-Sim itself on the small shapes it
   runs here in seconds, against effdl on the same shapes.
2. Agreement: on every small shape SCALE-Sim runs, under `timing="scalesim"`, how many of its
   reported numbers effdl reproduces: total cycles, overall utilisation, mapping efficiency,
   compute utilisation, SRAM reads/writes, DRAM reads (and DRAM output writes within C − 1 words).

Writes benchmarks/results/systolic.json and prints a summary.
"""
from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from effdl.hardware import systolic as sy

OUT = Path(__file__).resolve().parent / "results" / "systolic.json"
ARRAYS = (8, 16, 32, 64, 128, 256)
REPEATS = 5
SRAM_KB = (1, 1, 1)                 # small SRAMs, so that some operands do not fit

# ---------------------------------------------------------------- SCALE-Sim as an oracle (optional)
_CFG = """[general]
run_name = oracle

[architecture_presets]
ArrayHeight: {rows}
ArrayWidth: {cols}
IfmapSramSzkB: {sram[0]}
FilterSramSzkB: {sram[1]}
OfmapSramSzkB: {sram[2]}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Dataflow: {dataflow}
Bandwidth: 10
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 10
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 10
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""
_LAYOUT_HEADER = ("Layer name, IFMAP Height Intraline Factor, IFMAP Width Intraline Factor, Filter Height Intraline "
                  "Factor, Filter Width Intraline Factor, Channel Intraline Factor, Num Filter Intraline Factor, IFMAP "
                  "Height Intraline Order, IFMAP Width Intraline Order, Channel Intraline Order, IFMAP Height "
                  "Interline Order, IFMAP Width Interline Order, Channel Interline Order, Num Filter Intraline Order, "
                  "Channel Intraline Order, Filter Height Intraline Order, Filter Width Intraline Order, Num Filter "
                  "Interline Order, Channel Interline Order, Filter Height Interline Order, Filter Width Interline "
                  "Order,\n")


def scalesim_reports(rows: int, cols: int, dataflow: str, layers: list[tuple], *, gemm: bool = True,
                     sram_kb=SRAM_KB) -> list[dict]:
    """Run SCALE-Sim (the `scalesim` package) in CALC-bandwidth mode; one dict per layer with its
    COMPUTE_REPORT and DETAILED_ACCESS_REPORT columns. ``layers``: (M, N, K) per GEMM (SCALE-Sim's order),
    or (H, W, fh, fw, C, filters, stride) per conv with ``gemm=False``."""
    import scalesim.memory.double_buffered_scratchpad_mem as dbsp  # optional oracle, never an effdl dependency
    from scalesim.scale_sim import scalesim

    def scalar_max(*args, **kwargs):
        # scalesim 3.0.0 calls int() on max() of 1-element arrays, which NumPy >= 2.4 refuses
        m = max(*args, **kwargs)
        return m.reshape(-1)[0] if isinstance(m, np.ndarray) and m.size == 1 else m

    dbsp.max = scalar_max
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "c.cfg").write_text(_CFG.format(rows=rows, cols=cols, sram=sram_kb, dataflow=dataflow))
        head = ("Layer, M, N, K,\n" if gemm else "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, "
                "Channels, Num Filter, Strides,\n")
        (d / "t.csv").write_text(head + "".join(f"l{i}, " + ", ".join(map(str, v)) + ",\n"
                                                for i, v in enumerate(layers)))
        (d / "l.csv").write_text(_LAYOUT_HEADER + "".join(f"l{i}, 1, 1, 1, 1, 1, 1, 0, 1, 2, 0, 1, 2, 0, 1, 2, 3, 0, "
                                                          "1, 2, 3,\n" for i in range(len(layers))))
        with contextlib.redirect_stdout(io.StringIO()):
            sim = scalesim(save_disk_space=True, verbose=False, config=str(d / "c.cfg"), topology=str(d / "t.csv"),
                           layout=str(d / "l.csv"), input_type_gemm=gemm)
            sim.run_scale(top_path=str(d))
        out = [{} for _ in layers]
        for report in ("COMPUTE_REPORT", "DETAILED_ACCESS_REPORT"):
            table = list(csv.reader((d / "oracle" / f"{report}.csv").read_text().splitlines()))
            header = [h.strip() for h in table[0]]
            for i, row in enumerate(table[1:]):
                out[i].update({h: float(v) for h, v in zip(header, row) if h})
        return out


def agreement(report: dict, result) -> dict[str, bool]:
    """Which of SCALE-Sim's numbers for one layer effdl's ``timing="scalesim"`` result reproduces."""
    t = result.traffic
    return {
        "cycles": report["Total Cycles"] == result.total_cycles,
        "overall_util": abs(report["Overall Util %"] - 100 * result.utilization) < 1e-6,
        "mapping_eff": abs(report["Mapping Efficiency %"] - 100 * result.mapping_efficiency) < 1e-6,
        "compute_util": abs(report["Compute Util %"] - 100 * result.compute_utilization) < 1e-6,
        "sram": (report["SRAM IFMAP Reads"], report["SRAM Filter Reads"], report["SRAM OFMAP Writes"])
        == (t.sram_ifmap_reads, t.sram_filter_reads, t.sram_ofmap_writes),
        "dram_reads": (report["DRAM IFMAP Reads"], report["DRAM Filter Reads"])
        == (t.dram_ifmap_reads, t.dram_filter_reads),
        "dram_writes_within_C": 0 <= report["DRAM OFMAP Writes"] - t.dram_ofmap_writes < result.config.cols,
    }


# ---------------------------------------------------------------- the workload
def shapes() -> list[sy.Gemm]:
    """32 layers: AlexNet's five convs by SCALE-Sim's im2col (its topology: 227×227 input, no padding),
    six VGG-16 and six ResNet-50 convs, AlexNet's and VGG's FC layers at batch 1 (GEMVs, K up to 25,088)
    and 8, an LSTM step, square GEMMs."""
    convs = [("a_conv1", 227, 11, 3, 96, 4), ("a_conv2", 31, 5, 96, 256, 1), ("a_conv3", 15, 3, 256, 384, 1),
             ("a_conv4", 15, 3, 384, 384, 1), ("a_conv5", 15, 3, 384, 256, 1),
             ("v_conv1_1", 226, 3, 3, 64, 1), ("v_conv2_1", 114, 3, 64, 128, 1), ("v_conv3_1", 58, 3, 128, 256, 1),
             ("v_conv4_1", 30, 3, 256, 512, 1), ("v_conv5_1", 16, 3, 512, 512, 1), ("v_conv5_3", 16, 3, 512, 512, 1),
             ("r_conv1", 230, 7, 3, 64, 2), ("r_res2a", 56, 1, 64, 256, 1), ("r_res3a", 28, 3, 128, 128, 1),
             ("r_res4a", 14, 3, 256, 256, 1), ("r_res5a", 7, 3, 512, 512, 1), ("r_res5c", 7, 1, 512, 2048, 1)]
    out = [sy.conv_gemm(n, ifmap_h=h, ifmap_w=h, filter_h=f, filter_w=f, channels=c, n_filters=k, stride=s)
           for n, h, f, c, k, s in convs]
    for b in (1, 8):
        out += [sy.Gemm(name=f"fc6_b{b}", M=b, K=9216, N=4096), sy.Gemm(name=f"fc7_b{b}", M=b, K=4096, N=4096),
                sy.Gemm(name=f"fc8_b{b}", M=b, K=4096, N=1000), sy.Gemm(name=f"vgg_fc6_b{b}", M=b, K=25088, N=4096)]
    out += [sy.Gemm(name="lstm", M=1, K=2048, N=8192), sy.Gemm(name="gemm_64", M=64, K=64, N=64),
            sy.Gemm(name="gemm_256", M=256, K=256, N=256), sy.Gemm(name="gemm_1k", M=1024, K=1024, N=1024),
            sy.Gemm(name="gemm_tall", M=50176, K=147, N=64), sy.Gemm(name="gemv_t", M=4096, K=9216, N=1),
            sy.Gemm(name="gemm_odd", M=1000, K=999, N=37)]
    return out


def configs() -> list[sy.SystolicConfig]:
    return [sy.SystolicConfig(rows=a, cols=a, dataflow=df, timing=tm)
            for a in ARRAYS for df in sy.DATAFLOWS for tm in sy.TIMINGS]


def best_of(fn, repeats: int = REPEATS) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def small_cases() -> list[tuple]:
    """(rows, cols, M, K, N) that SCALE-Sim runs here in well under a second each."""
    rng = np.random.default_rng(9)
    cases = [(4, 4, 5, 6, 3), (8, 8, 16, 16, 16), (4, 8, 9, 20, 7), (8, 4, 3, 33, 17), (2, 3, 7, 5, 11),
             (16, 16, 10, 40, 30), (8, 8, 1, 72, 40), (32, 32, 8, 64, 64)]
    cases += [(int(rng.choice([2, 4, 8, 16])), int(rng.choice([2, 4, 8, 16])), *(int(v) for v in rng.integers(1, 48, 3)))
              for _ in range(16)]
    return cases


def main() -> dict:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    layers, cfgs = shapes(), configs()
    fc6 = layers[[g.name for g in layers].index("fc6_b1")]
    n_folds_8 = sy.estimate(sy.SystolicConfig(rows=8, cols=8), fc6).n_folds
    t_fc6 = best_of(lambda: sy.estimate(sy.SystolicConfig(rows=8, cols=8), fc6), repeats=20)
    t_all = best_of(lambda: [sy.estimate(c, g) for c in cfgs for g in layers])
    per_convention = {f"{df}/{tm}": best_of(lambda df=df, tm=tm: [sy.estimate(c, g) for c in cfgs for g in layers
                                                                if c.dataflow == df and c.timing == tm])
                      for df in sy.DATAFLOWS for tm in sy.TIMINGS}
    gemvs = [g for g in layers if g.M == 1]
    small_arrays = [sy.SystolicConfig(rows=8, cols=8, dataflow=df) for df in sy.DATAFLOWS]
    t_table = best_of(lambda: [sy.fold_table(c, g) for c in small_arrays for g in gemvs], repeats=2)
    t_closed_gemvs = best_of(lambda: [sy.estimate(c, g) for c in small_arrays for g in gemvs])
    record = {
        "what": "effdl.hardware.systolic's closed form over 32 GEMM/conv shapes on square arrays 8..256, three "
                "dataflows, two timings; references in the same run: fold_table (numpy over every fold) and "
                "SCALE-Sim (when installed) on small shapes; agreement with SCALE-Sim under timing='scalesim'",
        "date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(), "numpy": np.__version__,
        "shapes": len(layers), "arrays": list(ARRAYS), "estimates": len(layers) * len(cfgs),
        "fc6_gemv_folds_on_8x8": n_folds_8, "seconds_fc6_gemv_on_8x8": round(t_fc6, 7),
        "seconds_all": round(t_all, 4), "under_50ms": t_all < 0.05,
        "seconds_per_convention": {k: round(v, 4) for k, v in per_convention.items()},
        "reference_fold_table": {"what": "numpy arrays over every fold, the GEMVs at batch 1 on 8x8, three dataflows",
                                 "seconds": round(t_table, 4), "closed_form_seconds": round(t_closed_gemvs, 6),
                                 "ratio": round(t_table / t_closed_gemvs)},
    }
    try:
        import scalesim  # noqa: F401  (optional oracle)
    except ImportError:
        record["scalesim"] = "not installed: pip install scalesim to time it and record the agreement"
        return record
    cases = small_cases()
    counts: dict[str, int] = {}
    disagree, t_ref, t_ours, n = [], 0.0, 0.0, 0
    for rows, cols, m, k, n_ in cases:
        for df in sy.DATAFLOWS:
            t0 = time.perf_counter()
            rep = scalesim_reports(rows, cols, df, [(m, n_, k)])[0]
            t_ref += time.perf_counter() - t0
            cfg = sy.SystolicConfig(rows=rows, cols=cols, dataflow=df, timing="scalesim", sram_kb=SRAM_KB)
            g = sy.Gemm(M=m, K=k, N=n_)
            t_ours += best_of(lambda cfg=cfg, g=g: sy.estimate(cfg, g), repeats=3)
            ok = agreement(rep, sy.estimate(cfg, g))
            n += 1
            for key, v in ok.items():
                counts[key] = counts.get(key, 0) + int(v)
            if not all(ok.values()):
                disagree.append({"array": [rows, cols], "dataflow": df, "M": m, "K": k, "N": n_,
                                 "differs": [key for key, v in ok.items() if not v]})
    conv_layers = [(31, 31, 5, 5, 3, 16, 2), (15, 15, 3, 3, 8, 12, 1), (12, 20, 3, 5, 4, 9, 3)]
    conv_ok = 0
    for df in sy.DATAFLOWS:
        reps = scalesim_reports(8, 8, df, conv_layers, gemm=False)
        for rep, (h, w, fh, fw, c, f, s) in zip(reps, conv_layers):
            g = sy.conv_gemm(ifmap_h=h, ifmap_w=w, filter_h=fh, filter_w=fw, channels=c, n_filters=f, stride=s)
            r = sy.estimate(sy.SystolicConfig(rows=8, cols=8, dataflow=df, timing="scalesim", sram_kb=SRAM_KB), g)
            conv_ok += agreement(rep, r)["cycles"]
    record["scalesim"] = {
        "version": getattr(scalesim, "__version__", "3.0.0"), "sram_kb": list(SRAM_KB),
        "gemm_cases": n, "agree": counts, "disagreements": disagree,
        "conv_layers_cycles_agree": f"{conv_ok} of {3 * len(conv_layers)}",
        "seconds_scalesim_small": round(t_ref, 3), "seconds_effdl_small": round(t_ours, 5),
        "ratio_small": round(t_ref / t_ours),
    }
    return record


if __name__ == "__main__":
    rec = main()
    OUT.write_text(json.dumps(rec, indent=1) + "\n")
    print(f"{rec['estimates']} estimates ({rec['shapes']} shapes × {len(rec['arrays'])} arrays × 3 dataflows × "
          f"2 timings) in {1000 * rec['seconds_all']:.1f} ms; fc6 on 8×8 ({rec['fc6_gemv_folds_on_8x8']:,} folds) "
          f"in {1e6 * rec['seconds_fc6_gemv_on_8x8']:.0f} µs")
    ref = rec["reference_fold_table"]
    print(f"fold_table (numpy over folds) on the GEMVs: {ref['seconds']:.3f} s, {ref['ratio']:,}× the closed form")
    ss = rec["scalesim"]
    if isinstance(ss, dict):
        print(f"SCALE-Sim {ss['version']}: {ss['gemm_cases']} GEMM cases, agree {ss['agree']}; "
              f"convs (cycles) {ss['conv_layers_cycles_agree']}; "
              f"{ss['seconds_scalesim_small']:.2f} s vs {1000 * ss['seconds_effdl_small']:.2f} ms "
              f"({ss['ratio_small']:,}×)")
    else:
        print(ss)
    print(f"wrote {OUT}")
