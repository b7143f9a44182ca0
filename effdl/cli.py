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
    effdl --version                      the package's version
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from . import __version__, assign, book, precompute, reproduce, zoo
from .book import ROOT
from .data import verify_all


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
    assign.add_argument("--nbgrader", action="store_true",
                        help="write an nbgrader course folder (source/ + nbgrader_config.py) instead")
    return parser


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
        paths = assign.write_assignment(args.out_dir, args.ids or None, nbgrader=args.nbgrader)
        for path in paths:
            print(f"wrote {path}")
        if args.nbgrader:
            print(f"\nThen, in {Path(args.out_dir)}: nbgrader generate_assignment NN_topic (see the instructors' page).")
        return 0
    if args.command == "data":
        for path in verify_all():
            print(f"ok  {path}")
        return 0
    raise AssertionError(args.command)
