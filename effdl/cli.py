"""The ``effdl`` command (also ``python -m effdl``).

    effdl book [--out DIR] [--execute]   build the HTML book from book.yml
    effdl lab [JUPYTER_OPTIONS ...]      JupyterLab on chapters/ (options passed on: --no-browser, --port 8899)
    effdl execute [ID ...]               re-execute chapters, storing outputs
    effdl zoo train [--models ...]       retrain the pretrained checkpoints
    effdl zoo list                       show the zoo's accuracies
    effdl precompute STAGE               a chapter's heavy experiments into data/zoo
    effdl reproduce [NAME] [--json]      a chapter's headline experiment
    effdl data verify                    check every shipped file's hash
    effdl assign OUT_DIR [ID ...]        student versions of the chapters (nbgrader format)
    effdl systolic --array 32x32 --dataflow os --gemm M=256,N=256,K=256 [--timing scalesim|tpu]
                   [--sram KB,KB,KB] [--bandwidth W] [--json]      a systolic array's per-layer report
    effdl systolic --topology FILE.csv | --network alexnet [--batch-size B] …
    effdl --version                      the package's version
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from . import __version__, assign, book, precompute, reproduce, zoo
from .book import ROOT
from .data import verify_all
from .hardware import systolic
from .validation import ListOf, Text, validate_params


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="effdl", description="Efficient Methods and Hardware for "
                                     "Deep Learning: the course's command line.")
    parser.add_argument("--version", action="version", version=f"effdl {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    book = sub.add_parser("book", help="build the HTML book from book.yml (stored outputs)")
    book.add_argument("--out", default=None, help="folder that receives _build/html (default: the repository)")
    book.add_argument("--execute", action="store_true", help="re-execute every chapter first")

    # Its options go to Jupyter untouched (effdl lab --no-browser --port 8899, effdl lab -- --allow-root):
    # main() splits them off before argparse, which would otherwise take them for its own.
    sub.add_parser("lab", help="open the chapters in JupyterLab; any further options are passed on to "
                              "jupyter lab (e.g. --no-browser --port 8899, --allow-root)")

    exe = sub.add_parser("execute", help="re-execute chapters in place (maintainers)")
    exe.add_argument("ids", nargs="*", help="chapter ids from book.yml (default: all)")

    zoo = sub.add_parser("zoo", help="pretrained checkpoints")
    zoo_sub = zoo.add_subparsers(dest="zoo_command", required=True)
    train = zoo_sub.add_parser("train", help="train the checkpoints into data/zoo")
    train.add_argument("--models", nargs="*", default=None, help="subset of lenet300, lenet5, lstm")
    train.add_argument("--out", default=None, help="output folder (default: data/zoo)")
    train.add_argument("--seed", type=int, default=0)
    zoo_sub.add_parser("list", help="show the checkpoints and their accuracies")

    pre = sub.add_parser("precompute", help="run a chapter's heavy experiments into data/zoo (maintainers)")
    pre.add_argument("stage", help="e.g. pruning")
    pre.add_argument("--out", default=None, help="output folder (default: data/zoo)")

    rep = sub.add_parser("reproduce", help="run a chapter's headline experiment")
    rep.add_argument("name", nargs="?", help="experiment name (omit to list them)")
    rep.add_argument("--json", action="store_true", help="print one JSON object")

    data = sub.add_parser("data", help="shipped data files")
    data.add_argument("data_command", choices=["verify"])

    assign = sub.add_parser("assign", help="write student versions of the chapters (instructors)")
    assign.add_argument("out_dir", help="folder that receives the notebooks (not chapters/)")
    assign.add_argument("ids", nargs="*", help="chapter ids from book.yml (default: all)")
    assign.add_argument("--force", action="store_true",
                        help="replace a course's source notebook that differs from its chapter (after a chapter changed)")
    assign.add_argument("--nbgrader", action="store_true",
                        help="write an nbgrader course folder (source/ + nbgrader_config.py) instead")

    sa = sub.add_parser("systolic", help="cycles, utilisation and memory traffic of a systolic array, per layer "
                                         "(SCALE-Sim's report, in milliseconds)")
    work = sa.add_mutually_exclusive_group(required=True)
    work.add_argument("--gemm", help="one GEMM: M=…,N=…,K=… (M streamed rows, K reduction, N output columns)")
    work.add_argument("--topology", help="a SCALE-Sim topology CSV (conv or GEMM format)")
    work.add_argument("--network", help="an architecture of effdl.architectures (alexnet, vgg16, resnet50, lenet5 …)")
    sa.add_argument("--array", default="32x32", help="ROWSxCOLS (default 32x32)")
    sa.add_argument("--dataflow", default="ws", choices=systolic.DATAFLOWS, help="weight-, output- or "
                    "input-stationary (default ws)")
    sa.add_argument("--timing", default="scalesim", choices=systolic.TIMINGS,
                    help="scalesim: SCALE-Sim's accounting (default); tpu: double-buffered weights")
    sa.add_argument("--sram", default="64,64,64", help="input, filter, output SRAM sizes in KiB (default 64,64,64)")
    sa.add_argument("--bandwidth", type=float, default=None, help="DRAM words per cycle (default: as needed, "
                                                                     "no stalls)")
    sa.add_argument("--batch-size", type=int, default=1, help="batch for --topology and --network (default 1)")
    sa.add_argument("--json", action="store_true", help="print one JSON object (utilisations in %%)")
    return parser


def _systolic_gemm(text: str) -> "systolic.Gemm":
    sizes = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().upper()
        if not sep or key not in ("M", "N", "K") or key in sizes:
            raise ValueError(f"--gemm must be M=…,N=…,K=… (each once); got {text!r}.")
        try:
            sizes[key] = int(value)
        except ValueError:
            raise ValueError(f"--gemm: {key} must be an integer; got {value.strip()!r}.") from None
    if set(sizes) != {"M", "N", "K"}:
        raise ValueError(f"--gemm must give M, N and K; got {text!r}.")
    return systolic.Gemm(name="gemm", **sizes)


def _systolic_report(args) -> dict:
    start = time.perf_counter()
    rows, sep, cols = args.array.lower().partition("x")
    if not sep or not rows.strip().isdigit() or not cols.strip().isdigit():
        raise ValueError(f"--array must be ROWSxCOLS, e.g. 32x32; got {args.array!r}.")
    try:
        sram = tuple(float(v) for v in args.sram.split(","))
    except ValueError:
        raise ValueError(f"--sram must be three sizes in KiB, e.g. 64,64,64; got {args.sram!r}.") from None
    config = systolic.SystolicConfig(rows=int(rows), cols=int(cols), dataflow=args.dataflow, timing=args.timing,
                                     sram_kb=sram, dram_bandwidth=args.bandwidth)
    if args.gemm:
        gemms = [_systolic_gemm(args.gemm)]
    elif args.topology:
        gemms = systolic.read_topology(args.topology, batch_size=args.batch_size)
    else:
        gemms = systolic.network_gemms(args.network, batch_size=args.batch_size)
    net = systolic.estimate_network(config, gemms)
    layers = []
    for r in net.layers:
        row = r.row()
        layers.append({"name": row["name"], "M": row["M"], "K": row["K"], "N": row["N"], "count": row["count"],
                       "folds": row["folds"], "cycles": row["cycles"], "overall_util": 100 * row["overall_util"],
                       "mapping_eff": 100 * row["mapping_eff"], "compute_util": 100 * row["compute_util"],
                       "sram_reads": row["sram_reads"], "sram_writes": row["sram_writes"],
                       "dram_bytes": row["dram_bytes"], "bandwidth_needed": row["bandwidth_needed"],
                       "stall_cycles": row["stall_cycles"]})
    return {"array": [config.rows, config.cols], "dataflow": config.dataflow, "timing": config.timing,
            "layers": layers, "total_cycles": net.cycles, "overall_util": 100 * net.utilization,
            "wall_s": time.perf_counter() - start}


def _systolic_table(rep: dict) -> str:
    head = (f"{'layer':14s} {'M':>8s} {'K':>7s} {'N':>6s} {'folds':>9s} {'cycles':>12s} {'util%':>6s} {'map%':>6s} "
            f"{'comp%':>6s} {'SRAM in':>12s} {'SRAM filt':>12s} {'SRAM out':>12s} {'DRAM B':>12s} {'W/cyc':>7s} "
            f"{'stalls':>8s}")
    lines = [f"{rep['array'][0]}x{rep['array'][1]} array, {rep['dataflow']}, {rep['timing']} timing", head]
    for r in rep["layers"]:
        lines.append(f"{r['name'][:14]:14s} {r['M']:8d} {r['K']:7d} {r['N']:6d} {r['folds']:9,d} {r['cycles']:12,d} "
                     f"{r['overall_util']:6.1f} {r['mapping_eff']:6.1f} {r['compute_util']:6.1f} "
                     f"{r['sram_reads']['ifmap']:12,d} {r['sram_reads']['filter']:12,d} "
                     f"{r['sram_writes']['ofmap']:12,d} {sum(r['dram_bytes'].values()):12,d} "
                     f"{r['bandwidth_needed']:7.2f} {r['stall_cycles']:8,d}")
    lines.append(f"total: {rep['total_cycles']:,d} cycles, {rep['overall_util']:.1f} % overall utilisation "
                 f"({1000 * rep['wall_s']:.1f} ms)")
    return "\n".join(lines)


@validate_params(argv=ListOf(Text(), nonempty=False, optional=True))
def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    lab_args: list[str] = []
    if argv and argv[0] == "lab":
        argv, lab_args = argv[:1], argv[1:]
        if lab_args[:1] == ["--"]:
            lab_args = lab_args[1:]
    args = _parser().parse_args(argv)
    args.lab_args = lab_args
    try:
        return _dispatch(args)
    except (ValueError, TypeError, RuntimeError, FileNotFoundError) as err:
        print(f"effdl {args.command}: error: {err}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    if args.command == "book":
        if args.execute:
            times = book.execute_chapters()
            for cid, seconds in times.items():
                print(f"chapter {cid}: executed in {seconds:.1f} s")
            for line in book.over_budget(times):
                print("warning:", line)
        index = book.build_html(args.out or book.ROOT)
        print(f"\nThe book is at {index}\nOpen it in a browser, or run `effdl lab` for the live notebooks.")
        return 0
    if args.command == "lab":
        return subprocess.call([sys.executable, "-m", "jupyterlab", f"--notebook-dir={ROOT / 'chapters'}",
                                *args.lab_args])
    if args.command == "execute":
        times = book.execute_chapters(args.ids or None)
        for cid, seconds in times.items():
            print(f"chapter {cid}: executed in {seconds:.1f} s")
        for line in book.over_budget(times):
            print("warning:", line)
        return 0
    if args.command == "zoo":
        if args.zoo_command == "train":
            zoo.train_zoo(Path(args.out) if args.out else zoo.ZOO_DIR, args.models, seed=args.seed)
        else:
            for name, rec in zoo.info()["models"].items():
                print(f"{name:9s} {rec['params']:>8,d} params  val {rec['val_acc']:.1f} %  "
                      f"test {rec['test_acc']:.1f} %  (lr {rec['lr']}, epoch {rec['best_epoch']})")
        return 0
    if args.command == "precompute":
        record = precompute.run(args.stage, args.out)
        print(f"{args.stage}: done in {record['recompute_seconds']} s")
        return 0
    if args.command == "reproduce":
        if not args.name:
            for e in reproduce.EXPERIMENTS.values():
                print(f"{e.name:18s} chapter {e.chapter}  {e.summary}")
            return 0
        result = reproduce.run(args.name)
        print(reproduce.to_json(result) if args.json else reproduce.to_text(result))
        return 0
    if args.command == "assign":
        paths = assign.write_assignment(args.out_dir, args.ids or None, nbgrader=args.nbgrader, overwrite=args.force)
        for path in paths:
            print(f"wrote {path}")
        if args.nbgrader:
            print(f"\nThen, in {Path(args.out_dir)}: nbgrader generate_assignment NN_topic (see the instructors' page).")
        return 0
    if args.command == "systolic":
        rep = _systolic_report(args)
        print(json.dumps(rep) if args.json else _systolic_table(rep))
        return 0
    if args.command == "data":
        for path in verify_all():
            print(f"ok  {path}")
        return 0
    raise AssertionError(args.command)
