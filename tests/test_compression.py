"""Tests for effdl.compression: the Deep Compression file round trip (bit-exact weights, equal
outputs), the byte accounting (breakdown sums to the file size, fillers as the encoder counts
them), the pipeline record and its byte-identical rebuild on any thread count, and damaged
files — every truncation, random bit flips, empty and foreign files, consistent-checksum
forgeries — which must raise CompressedFileError."""
import struct
import zlib

import numpy as np
import pytest
import torch

from effdl.coding import relative_index_encode
from effdl.compression import (DEFAULT_BITS, MAGIC, CompressedFileError, deep_compression, encode_compressed,
                               read_compressed, read_shared, size_breakdown, write_compressed)
from effdl.data import Split, load_mnist
from effdl.models import build_model, count_parameters
from effdl.pruning import pruned_copy, remove_masks
from effdl.sharing import SharedModel, quantized_model, share_weights


def pruned(arch, sparsity, seed=0, scope="global"):
    return remove_masks(pruned_copy(build_model(arch, seed=seed), sparsity=sparsity, scope=scope))


@pytest.fixture(scope="module")
def lenet300_shared():
    return share_weights(pruned("lenet300", 0.92), 6)


@pytest.fixture(scope="module")
def test_split():
    return load_mnist("test")


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    """A ~3.4 KB file (LeNet-300-100 at 99.7 % sparsity, 2-bit weights): quick to fuzz."""
    path = tmp_path_factory.mktemp("small") / "small.dc"
    write_compressed(path, share_weights(pruned("lenet300", 0.997, scope="layer"), 2), index_bits="auto")
    return path


def assert_same(a: SharedModel, b: SharedModel):
    assert a.arch == b.arch and list(a.layers) == list(b.layers) and list(a.others) == list(b.others)
    for name, layer in a.layers.items():
        other = b.layers[name]
        assert np.array_equal(layer.index, other.index) and np.array_equal(layer.codebook, other.codebook)
        assert (layer.n_bits, layer.reserves_zero) == (other.n_bits, other.reserves_zero)
    for name, t in a.others.items():
        assert np.array_equal(t, b.others[name])


# -------------------------------------------------------------- round trips
@pytest.mark.parametrize("index_bits", [5, 1, 16, "auto"])
def test_round_trip_is_exact(tmp_path, lenet300_shared, test_split, index_bits):
    path = tmp_path / "m.dc"
    n = write_compressed(path, lenet300_shared, index_bits=index_bits)
    assert n == path.stat().st_size and path.read_bytes()[:8] == MAGIC
    assert_same(read_shared(path), lenet300_shared)
    model = read_compressed(path)
    with torch.no_grad():
        assert torch.equal(model(test_split.x), quantized_model(lenet300_shared)(test_split.x))


def test_round_trip_lenet5_conv_dense_layers_and_per_layer_widths(tmp_path, test_split):
    model = pruned("lenet5", 0.9)
    with torch.no_grad():
        model.conv1.weight.copy_(build_model("lenet5", seed=1).conv1.weight)     # a dense layer
    shared = share_weights(model, {"conv1.weight": 3, "conv2.weight": 8, "fc1.weight": 5, "fc2.weight": 1})
    assert not shared.layers["conv1.weight"].reserves_zero
    path = tmp_path / "lenet5.dc"
    write_compressed(path, shared, index_bits={"conv1.weight": 3, "conv2.weight": 4, "fc1.weight": 7,
                                               "fc2.weight": "auto"})
    assert_same(read_shared(path), shared)
    x = test_split.x[:200]
    with torch.no_grad():
        assert torch.equal(read_compressed(path)(x), quantized_model(shared)(x))
    assert size_breakdown(path)["layers"]["conv1.weight"]["index_bits"] == 0                 # no gap stream


def test_round_trip_lstm(tmp_path):
    shared = share_weights(pruned("lstm", 0.8), 4)
    write_compressed(tmp_path / "lstm.dc", shared)
    assert_same(read_shared(tmp_path / "lstm.dc"), shared)


def test_stream_order_is_column_major(lenet300_shared):
    """fc1 (300, 784) is stored column by column: its fillers are those of the transpose."""
    layer = lenet300_shared.layers["fc1.weight"]
    breakdown = size_breakdown(lenet300_shared, index_bits=3)["layers"]["fc1.weight"]
    _, _, fillers_csc = relative_index_encode(layer.index.T, 3)
    _, _, fillers_csr = relative_index_encode(layer.index, 3)
    assert breakdown["n_fillers"] == fillers_csc != fillers_csr


# --------------------------------------------------------------- accounting
def test_size_breakdown_sums_to_the_file(tmp_path, lenet300_shared):
    path = tmp_path / "m.dc"
    write_compressed(path, lenet300_shared, index_bits=4)
    b = size_breakdown(path)
    assert b == size_breakdown(lenet300_shared, index_bits=4)
    total = b["header_bytes"] + sum(r["file"] for r in b["layers"].values()) + b["other_bytes"] + b["checksum_bytes"]
    assert total == b["total_bytes"] == path.stat().st_size
    assert b["dense_fp32_bytes"] == 4 * count_parameters(build_model("lenet300"))
    assert b["ratio"] == b["dense_fp32_bytes"] / b["total_bytes"]
    for name, r in b["layers"].items():
        layer = lenet300_shared.layers[name]
        _, _, n_fillers = relative_index_encode(layer.index.T, 4)
        assert r["nonzeros"] == np.count_nonzero(layer.weight()) and r["n_fillers"] == n_fillers
        assert r["n_entries"] == r["nonzeros"] + r["n_fillers"]
        assert r["weight_index_fixed"] == -(-r["n_entries"] * 6 // 8)
        assert r["relative_index_fixed"] == -(-r["n_entries"] * 4 // 8)
        assert r["codebook"] == 4 * 64 and r["bias"] == 4 * layer.shape[0]
        assert r["weight_index_huffman"] <= r["weight_index_fixed"]     # Huffman never loses here
        assert r["relative_index_huffman"] <= r["relative_index_fixed"]


def test_auto_index_bits_is_never_larger(lenet300_shared):
    auto = size_breakdown(lenet300_shared, index_bits="auto")["total_bytes"]
    assert all(auto <= size_breakdown(lenet300_shared, index_bits=b)["total_bytes"] for b in (1, 3, 5, 8, 12))


def test_deep_compression_record(tmp_path, test_split):
    dense = build_model("lenet300", seed=0)
    model = pruned("lenet300", 0.92)
    train = load_mnist("train")
    tiny = Split("train", train.source, train.x[:128], train.y[:128])
    val = Split("val", train.source, train.x[128:256], train.y[128:256])
    x_eval = Split("test", test_split.source, test_split.x[:300], test_split.y[:300])
    r = deep_compression(model, path=tmp_path / "dc.dc", finetune=(tiny, val), epochs=1, lr=1e-3,
                         eval_split=x_eval, dense_model=dense)
    assert r.bits == DEFAULT_BITS["lenet300"] and set(r.index_bits.values()) == {5}
    assert r.sizes["huffman"] == (tmp_path / "dc.dc").stat().st_size == r.breakdown["total_bytes"]
    assert r.sizes["dense"] > r.sizes["pruned"] > r.sizes["quantized"] > r.sizes["huffman"]
    assert r.ratio == r.sizes["dense"] / r.sizes["huffman"]
    assert set(r.accuracy) == {"dense", "pruned", "quantized", "finetuned", "file"}
    assert r.accuracy["file"] == r.accuracy["finetuned"] and r.outputs_match is True
    assert r.summary()["finetune_best_epoch"] in (0, 1)
    assert_same(read_shared(r.path), r.shared)


def test_rebuild_is_byte_identical_whatever_the_thread_count(tmp_path):
    """``effdl reproduce deep-compression`` rebuilds the shipped files byte for byte: fine-tuning
    gives the same codebook bits on 1 and 2 torch threads (MKL's matmul and torch's scatter-add
    of the centroid gradients do not) and leaves the caller's thread count alone."""
    model = pruned("lenet300", 0.92)
    train = load_mnist("train")
    tiny = Split("train", train.source, train.x[:256], train.y[:256])
    before, blobs = torch.get_num_threads(), []
    try:
        for i, threads in enumerate((1, 2, 2)):
            torch.set_num_threads(threads)
            r = deep_compression(model, path=tmp_path / f"{i}.dc", finetune=(tiny, None), epochs=1, lr=1e-2)
            assert torch.get_num_threads() == threads
            blobs.append((tmp_path / f"{i}.dc").read_bytes())
    finally:
        torch.set_num_threads(before)
    assert blobs[0] == blobs[1] == blobs[2]
    kmeans = share_weights(model, DEFAULT_BITS["lenet300"])
    assert not np.array_equal(r.shared.layers["fc1.weight"].codebook, kmeans.layers["fc1.weight"].codebook)


@pytest.mark.parametrize("kwargs, exc", [
    (dict(index_bits=0), ValueError), (dict(index_bits=17), ValueError), (dict(index_bits=True), TypeError),
    (dict(index_bits=5.0), TypeError), (dict(index_bits="fast"), ValueError),
    (dict(index_bits={"fc1.weight": 5}), ValueError),
    (dict(index_bits={"fc1.weight": 5, "fc2.weight": 5, "fc3.weight": 0}), ValueError),
])
def test_write_bad_arguments(tmp_path, lenet300_shared, kwargs, exc):
    with pytest.raises(exc, match=r"must be .*; got "):
        write_compressed(tmp_path / "x.dc", lenet300_shared, **kwargs)


def test_other_bad_arguments(tmp_path, lenet300_shared):
    with pytest.raises(TypeError, match="shared must be"):
        write_compressed(tmp_path / "x.dc", {"fc1": 1})
    with pytest.raises(TypeError, match="path must be"):
        read_compressed(3)
    with pytest.raises(TypeError, match="source must be"):
        size_breakdown(3)
    with pytest.raises(FileNotFoundError):
        read_compressed(tmp_path / "missing.dc")
    with pytest.raises(ValueError, match="bits must be given"):
        deep_compression(pruned("lstm", 0.5), path=tmp_path / "x.dc")
    with pytest.raises(TypeError, match="finetune must be"):
        deep_compression(pruned("lenet300", 0.9), path=tmp_path / "x.dc", finetune=[1, 2])


# ------------------------------------------------------------ damaged files
def reads_with_clear_error(path, blob: bytes) -> CompressedFileError:
    path.write_bytes(blob)
    with pytest.raises(CompressedFileError) as info:
        read_compressed(path)
    err = info.value
    assert str(path) in str(err) and isinstance(err, ValueError)
    assert err.__cause__ is None and (err.__suppress_context__ or err.__context__ is None)   # no chained trace
    return err


def test_truncations_are_clear_errors(tmp_path, small_file):
    """Every length through the table and the first payload bytes, then every 3rd, and the last 16."""
    blob = small_file.read_bytes()
    assert len(blob) < 4000
    table_end = 14 + struct.unpack_from("<I", blob, 10)[0]
    lengths = sorted(set(range(table_end + 64)) | set(range(0, len(blob), 3))
                     | set(range(len(blob) - 16, len(blob))))
    path = tmp_path / "cut.dc"
    messages = set()
    for n in lengths:
        err = reads_with_clear_error(path, blob[:n])
        messages.add(err.problem.split(":")[0])
    assert messages == {"the file is empty.", "truncated", "truncated or corrupted"}


def test_random_bit_flips_are_caught(tmp_path, small_file):
    blob = small_file.read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "flip.dc"
    for trial in range(300):
        damaged = bytearray(blob)
        for bit in rng.choice(8 * len(blob), size=1 + trial % 3, replace=False):
            damaged[bit // 8] ^= 1 << (bit % 8)
        reads_with_clear_error(path, bytes(damaged))
    # every single bit of the header and table
    table_end = 14 + struct.unpack_from("<I", blob, 10)[0]
    for bit in range(8 * table_end):
        damaged = bytearray(blob)
        damaged[bit // 8] ^= 1 << (bit % 8)
        reads_with_clear_error(path, bytes(damaged))


def test_foreign_and_extended_files(tmp_path, small_file):
    blob = small_file.read_bytes()
    err = reads_with_clear_error(tmp_path / "a.pt", b"PK\x03\x04" + bytes(100))
    assert "not an effdl Deep Compression file" in str(err)
    assert "not an effdl" in str(reads_with_clear_error(tmp_path / "b", b"EFFDL"[:3] + b"x"))
    assert "truncated" in str(reads_with_clear_error(tmp_path / "c", MAGIC[:5]))
    assert "table describes" in str(reads_with_clear_error(tmp_path / "d", blob + b"\0"))
    (tmp_path / "e").write_bytes(b"")
    with pytest.raises(CompressedFileError, match="empty"):
        size_breakdown(tmp_path / "e")


def forge(blob: bytes, body: bytes) -> bytes:
    """``body`` with a valid checksum: damage the CRC cannot see."""
    return body + struct.pack("<I", zlib.crc32(body))


def test_consistent_forgeries_are_still_refused(tmp_path, small_file):
    blob = small_file.read_bytes()
    body = blob[:-4]
    version = forge(blob, body[:8] + struct.pack("<H", 2) + body[10:])
    assert "version 2" in str(reads_with_clear_error(tmp_path / "v", version))
    other_arch = forge(blob, body.replace(b"\x08lenet300", b"\x08lenet301", 1))
    assert "unknown architecture" in str(reads_with_clear_error(tmp_path / "a", other_arch))
    # A layer claiming index_bits 0 (dense) though it stores only a few entries.
    at = body.index(b"\x0afc1.weight") + 11 + 1 + 8 + 1       # name, ndim, dims, n_bits → index_bits
    dense_claim = forge(blob, body[:at] + b"\x00" + body[at + 1:])
    assert "fc1.weight" in str(reads_with_clear_error(tmp_path / "d", dense_claim))


def test_encode_is_deterministic(lenet300_shared):
    assert encode_compressed(lenet300_shared) == encode_compressed(lenet300_shared)
