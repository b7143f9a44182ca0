"""The Deep Compression file: pruned + shared weights, relative indexes, Huffman coding — chapter 4.

Implements the storage format of Han, Mao & Dally, *Deep Compression*
(ICLR 2016), §4–5 and Tables 2–3, as one real file that
:func:`read_compressed` turns back into a model, and the whole pipeline
pruned model → weight sharing (:mod:`effdl.sharing`) → optional centroid
fine-tuning → file (:func:`deep_compression`).

Each shared layer is stored as a relative-index sparse stream
(:func:`effdl.coding.relative_index_encode`, filler zeros included) of
*cluster indexes*: a gap stream (zeros skipped, ``index_bits`` wide) and a
weight-index stream (``n_bits`` wide), both Huffman coded with canonical codes
stored as their code lengths. Index 0 of a pruned layer's codebook is the
reserved zero (see :mod:`effdl.sharing`), so a filler's value is index 0 and
every position the stream skips reads ``codebook[0] = 0.0``, as in the
authors' released decoder. A dense layer (no zeros) has no gap stream.

**Order.** A weight of shape ``(out, …)`` is viewed as the matrix ``(out,
rest)`` (a conv filter flattened to ``in·kh·kw``) and stored *column-major*
(compressed sparse column, the paper's and EIE's layout): the stream encodes
``W.reshape(out, -1).T`` row-major, so a gap counts down a column, over
output neurons, and runs on from one column into the next.

**Biases** (and any other non-shared tensor) are stored as raw float32: 410
of LeNet-300-100's 266,610 parameters (0.15 %) and 580 of LeNet-5's 431,080
(0.13 %) — but, against a file 40× smaller than the dense weights, about 6 %
and 5 % of the bytes.

File layout, version 1 (all integers little-endian)::

    magic       8 bytes  b"EFFDLDC1"
    version     uint16   1
    table_len   uint32   bytes of the table that follows
    table                arch (str8), n_layers (uint16), per layer: name (str8),
                         ndim (uint8), dims (uint32 each), n_bits (uint8),
                         index_bits (uint8; 0 = dense, no gap stream),
                         length_bits (uint8; 4 or 8), n_codes (uint32),
                         n_entries (uint32), n_gap_symbols (uint32),
                         weight_stream_bits (uint32), gap_stream_bits (uint32);
                         n_others (uint16), per other tensor: name (str8),
                         ndim (uint8), dims (uint32 each)
    payload              per layer, in table order: codebook (float32 ×
                         n_codes); the canonical Huffman code lengths of the
                         weight indexes (n_codes of them, 0 = unused symbol)
                         and of the gaps (n_gap_symbols), length_bits each
                         (4 when no code is longer than 15 bits), each table
                         packed MSB-first and padded to a byte; the weight
                         stream and the gap stream (each ceil(bits/8) bytes,
                         MSB-first); then each other tensor as float32, row-major
    checksum    uint32   CRC-32 (zlib.crc32) of every byte before it

(``str8`` is a uint8 length and that many UTF-8 bytes.) A damaged file raises
:class:`CompressedFileError` naming the file and the problem.

**What the reader checks.** The checksum catches damage, not a writer bug or
a hand edit with a recomputed CRC, so the reader also checks that every field
agrees with the others and with what the writer produces, and names the layer,
the field and the values when one does not: the tensors and shapes of the
architecture; ``n_bits`` in 1 … 16 and ``n_codes <= 2**n_bits``;
``index_bits <= 16``, ``n_gap_symbols <= 2**index_bits`` and equal to the
largest gap + 1; ``n_entries`` within the shape (all of it for a dense
layer); each code-length table a complete prefix code (Kraft sum 1, a lone
symbol 1 bit) stored in 4 bits unless a code is longer than 15; each stream
holding exactly ``n_entries`` codewords that fill its ``*_stream_bits`` and
leave zero padding bits, coded with the Huffman code of its own symbol
counts (ties broken by symbol, as :func:`effdl.coding.huffman_code` breaks
them); the relative indexes ending inside the layer; the reserved zero
(``codebook[0]``, +0.0) stored only as a filler (gap ``2**index_bits − 1``,
never last); every codebook entry and other tensor finite; and no byte left
over or missing after the last section. A file that passes is the one the
writer writes for the model it holds; a changed weight index, position or
value that keeps all of this true is a valid file too, and only the
checksum tells it apart.

Longer than 600 lines because the file format is one unit: the writer, the
layout and the checking reader share the private layout helpers and must
change together (a field the writer adds is a field the reader checks); the
byte accounting and the pipeline that close the module are short.
"""
from __future__ import annotations

import functools
import math
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, NoReturn

import numpy as np
import torch
from torch import nn

from ._validate import _fail, check_choice, check_int
from .coding import code_lengths, entropy_bits, huffman_code, huffman_decode, huffman_encode, mean_code_length, \
    pack_bits, relative_index_decode, relative_index_encode, unpack_bits
from .data import Split
from .models import MODELS, build_model, count_parameters
from .pruning import sparsity_report
from .sharing import INITS, SharedLayer, SharedModel, finetune_centroids, share_weights
from .train import History, evaluate
from .validation import Bool, Instance, Interval, Module, OneOf, Options, Seed, Unchecked, validate_params

__all__ = ["MAGIC", "FORMAT_VERSION", "DEFAULT_BITS", "DEFAULT_INDEX_BITS", "CompressedFileError",
           "encode_compressed", "write_compressed", "read_shared", "read_compressed", "size_breakdown",
           "DeepCompressionResult", "deep_compression"]

MAGIC = b"EFFDLDC1"
FORMAT_VERSION = 1
# The paper's bits (Deep Compression Tables 2 and 3): LeNet-300-100 6-bit weights in
# every ip layer; LeNet-5 8-bit conv and 5-bit fc weights; 5-bit relative index for both.
DEFAULT_BITS = {
    "lenet300": {"fc1.weight": 6, "fc2.weight": 6, "fc3.weight": 6},
    "lenet5": {"conv1.weight": 8, "conv2.weight": 8, "fc1.weight": 5, "fc2.weight": 5},
}
DEFAULT_INDEX_BITS = 5
_CHECKSUM_BYTES = 4


class CompressedFileError(ValueError):
    """A Deep Compression file is empty, truncated, corrupted or not one at all.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """

    def __init__(self, path: Any, problem: str):
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


# ------------------------------------------------------------------ layout
def _csc(a: np.ndarray) -> np.ndarray:
    """Flat stream order of a weight-shaped array: ``a.reshape(out, -1).T`` row-major."""
    return a.reshape(a.shape[0], -1).T.ravel()


def _from_csc(flat: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    return flat.reshape(-1, shape[0]).T.reshape(shape)


@dataclass(frozen=True)
class _LayerRecord:
    """One layer as stored: table fields and the payload pieces."""

    name: str
    shape: tuple[int, ...]
    n_bits: int
    index_bits: int                 # 0: dense layer, no gap stream
    n_entries: int                  # stored entries, fillers included
    n_fillers: int
    codebook: np.ndarray            # (n_codes,) float32
    weight_lengths: np.ndarray      # (n_codes,) canonical code lengths, 0 = unused symbol
    gap_lengths: np.ndarray         # (n_gap_symbols,)
    weight_stream: bytes
    weight_bits: int
    gap_stream: bytes
    gap_bits: int

    @property
    def length_bits(self) -> int:
        """Width of a stored code length: a nibble when every code is at most 15 bits long."""
        longest = max(self.weight_lengths.max(initial=0), self.gap_lengths.max(initial=0))
        return 4 if longest <= 15 else 8

    def payload(self) -> list[bytes]:
        lb = self.length_bits
        return [self.codebook.astype("<f4").tobytes(), pack_bits(self.weight_lengths, lb),
                pack_bits(self.gap_lengths, lb), self.weight_stream, self.gap_stream]

    @property
    def nbytes(self) -> int:
        return sum(len(part) for part in self.payload())


def _huffman(symbols: np.ndarray, n_symbols: int) -> tuple[np.ndarray, bytes, int]:
    """Canonical Huffman code lengths (n_symbols,) uint8, packed stream, its bit count."""
    lengths = np.zeros(n_symbols, dtype=np.int64)
    if symbols.size == 0:
        return lengths, b"", 0
    code = huffman_code(np.bincount(symbols, minlength=n_symbols))
    for s, n in code_lengths(code).items():
        lengths[s] = n
    if lengths.max() > 255:      # needs > 2**32 symbols (Fibonacci counts), asserted all the same
        raise ValueError(f"symbols must give Huffman codes of at most 255 bits; got {lengths.max()}.")
    data, n_bits = huffman_encode(symbols, code)
    return lengths, data, n_bits


def _encode_layer(layer: SharedLayer, index_bits: int | str) -> _LayerRecord:
    if index_bits == "auto":     # the width giving the fewest bytes: Huffman makes wide gaps cheap
        return min((_encode_layer(layer, b) for b in range(1, 17)), key=lambda r: (r.nbytes, r.index_bits))
    index = _csc(layer.index)                        # cluster index per position, CSC order
    if layer.reserves_zero:
        gaps, symbols, n_fillers = relative_index_encode(index, index_bits)   # fillers: symbol 0
        n_gap_symbols = int(gaps.max()) + 1 if gaps.size else 0
        gap_lengths, gap_stream, gap_bits = _huffman(gaps, n_gap_symbols)
    else:                                            # dense: every position stored, no gaps
        index_bits, symbols, n_fillers = 0, index, 0
        gap_lengths, gap_stream, gap_bits = np.zeros(0, dtype=np.int64), b"", 0
    weight_lengths, weight_stream, weight_bits = _huffman(symbols, layer.codebook.size)
    return _LayerRecord(layer.name, layer.shape, layer.n_bits, index_bits, int(symbols.size), n_fillers,
                        layer.codebook.astype(np.float32), weight_lengths, gap_lengths,
                        weight_stream, weight_bits, gap_stream, gap_bits)


@validate_params(layer=Instance(SharedLayer, "an effdl.sharing.SharedLayer"), index_bits=Interval(int, 1, 16))
def layer_streams(layer: SharedLayer, index_bits: int) -> dict:
    """The two symbol streams the file Huffman-codes for ``layer``, and what they cost.

    Entries are taken in CSC order (column by column), as the file stores
    them. Returns ``weight_index`` (the cluster index of each stored entry,
    fillers as 0), ``relative_index`` (the gap before each entry; empty for
    a dense layer), ``n_fillers``, and per stream ``{"fixed_bits",
    "entropy_bits", "huffman_bits"}`` per symbol (the fixed width, the
    empirical entropy and the Huffman code's mean length).

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    index = _csc(layer.index)
    if layer.reserves_zero:
        gaps, symbols, n_fillers = relative_index_encode(index, index_bits)
    else:
        gaps, symbols, n_fillers = np.zeros(0, dtype=np.int64), index, 0

    def cost(stream: np.ndarray, fixed: int) -> dict:
        if stream.size == 0:
            return {"fixed_bits": fixed, "entropy_bits": 0.0, "huffman_bits": 0.0}
        counts = np.bincount(stream)
        return {"fixed_bits": fixed, "entropy_bits": entropy_bits(counts),
                "huffman_bits": mean_code_length(counts, huffman_code(counts))}

    return {"weight_index": symbols, "relative_index": gaps, "n_fillers": n_fillers,
            "weight_cost": cost(symbols, layer.n_bits),
            "index_cost": cost(gaps, index_bits if layer.reserves_zero else 0)}


def _str8(s: str) -> bytes:
    raw = s.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"name must be at most 255 bytes of UTF-8; got {s!r}.")
    return bytes([len(raw)]) + raw


def _dims(shape: tuple[int, ...]) -> bytes:
    return struct.pack(f"<B{len(shape)}I", len(shape), *shape)


def _table(arch: str, records: list[_LayerRecord], others: dict[str, np.ndarray]) -> bytes:
    out = [_str8(arch), struct.pack("<H", len(records))]
    for r in records:
        out += [_str8(r.name), _dims(r.shape),
                struct.pack("<BBBIIIII", r.n_bits, r.index_bits, r.length_bits, r.codebook.size,
                            r.n_entries, r.gap_lengths.size, r.weight_bits, r.gap_bits)]
    out.append(struct.pack("<H", len(others)))
    for name, a in others.items():
        out += [_str8(name), _dims(a.shape)]
    return b"".join(out)


PATH = Instance((str, os.PathLike), "a path (str or os.PathLike)")
SHARED = Instance(SharedModel, "an effdl.sharing.SharedModel")
SPLIT = Instance(Split, "an effdl.data.Split", optional=True)
# an int in [1, 16], "auto", or a dict per layer of either: checked in full by _index_bits_per_layer
INDEX_BITS = OneOf(Interval(int, 1, 16), Options(("auto",)), Instance(dict, "a dict of weight name → index width"))


def _check_index_bits(name: str, value: Any) -> int | str:
    if isinstance(value, str):
        return check_choice(name, value, ("auto",))
    return check_int(name, value, min=1, max=16)


def _index_bits_per_layer(index_bits: Any, names: list[str]) -> dict[str, int | str]:
    if isinstance(index_bits, Mapping):
        if set(index_bits) != set(names):
            _fail(ValueError, "index_bits", f"a dict with exactly the keys {names}", index_bits)
        return {n: _check_index_bits(f"index_bits[{n!r}]", index_bits[n]) for n in names}
    index_bits = _check_index_bits("index_bits", index_bits)
    return {n: index_bits for n in names}


@validate_params(shared=SHARED, index_bits=INDEX_BITS)
def encode_compressed(shared: SharedModel, *, index_bits: int | dict[str, int] = DEFAULT_INDEX_BITS) -> bytes:
    """The bytes of the Deep Compression file of ``shared`` (what :func:`write_compressed` writes).

    Behind chapter 03, "Weight sharing and trained quantization".
    """
    ib = _index_bits_per_layer(index_bits, list(shared.layers))
    records = [_encode_layer(layer, ib[name]) for name, layer in shared.layers.items()]
    others = {n: np.ascontiguousarray(a, dtype="<f4") for n, a in shared.others.items()}
    table = _table(shared.arch, records, others)
    parts = [MAGIC, struct.pack("<HI", FORMAT_VERSION, len(table)), table]
    for r in records:
        parts += r.payload()
    parts += [a.tobytes() for a in others.values()]
    body = b"".join(parts)
    return body + struct.pack("<I", zlib.crc32(body))


@validate_params(path=PATH, shared=SHARED, index_bits=INDEX_BITS)
def write_compressed(path: str | os.PathLike, shared: SharedModel, *,
                     index_bits: int | dict[str, int] = DEFAULT_INDEX_BITS) -> int:
    """Write ``shared`` as a Deep Compression file (layout in the module docstring); return its bytes.

    Parameters
    ----------
    path : str or path-like
        Written whole, through a temporary file and a rename.
    shared : SharedModel
        From :func:`effdl.sharing.share_weights` or
        :func:`effdl.sharing.finetune_centroids`.
    index_bits : int in [1, 16], "auto", or dict {weight name: either}, default 5
        Width of a relative index (the gap between stored entries); more
        zeros in a row than it can count cost a filler entry. ``"auto"``
        tries every width and keeps the smallest encoding of the layer (the
        choice is lossless: it never changes a weight). Ignored for a dense layer.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    blob = encode_compressed(shared, index_bits=index_bits)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(blob)
    os.replace(tmp, path)
    return len(blob)


# ------------------------------------------------------------------ reading
class _Reader:
    """Bounds-checked reads from ``blob``; running off the end is a CompressedFileError."""

    def __init__(self, blob: bytes, path: Any, end: int):
        self.blob, self.path, self.pos, self.end = blob, path, 0, end

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise CompressedFileError(self.path, f"truncated or corrupted: it ends inside the {what}.")
        out = self.blob[self.pos:self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def str8(self, what: str) -> str:
        (n,) = self.unpack("B", what)
        try:
            return self.take(n, what).decode("utf-8")
        except UnicodeDecodeError:
            raise CompressedFileError(self.path, f"corrupted: the {what} is not UTF-8.") from None

    def dims(self, what: str) -> tuple[int, ...]:
        (ndim,) = self.unpack("B", what)
        return tuple(self.unpack(f"{ndim}I", what))


@dataclass(frozen=True)
class _Parsed:
    arch: str
    layers: list[dict]              # table fields per layer, plus payload byte ranges
    others: list[tuple[str, tuple[int, ...]]]
    header_bytes: int               # magic + version + table length + table
    others_offset: int              # where the float32 tensors begin
    length: int                     # file bytes the table implies, checksum included
    blob: bytes

    def piece(self, rec: dict, part: str) -> bytes:
        """The bytes of one payload section of layer ``rec`` (``"codebook"``, ``"weight_stream"``, …)."""
        a, b = rec["ranges"][part]
        return self.blob[a:b]


_MIN_BYTES = len(MAGIC) + 2 + 4 + _CHECKSUM_BYTES    # magic, version, table length, checksum


def _corrupted(path: Any, where: str, problem: str) -> CompressedFileError:
    """The error for a field that disagrees with the rest of the file: ``where`` names the tensor."""
    return CompressedFileError(path, f"corrupted: {where}: {problem}.")


def _parse(blob: bytes, path: Any) -> _Parsed:
    """Check magic, version, table, length and checksum, in that order. No decoding yet."""
    if len(blob) == 0:
        raise CompressedFileError(path, "the file is empty.")
    if blob[:len(MAGIC)] != MAGIC:
        if len(blob) < len(MAGIC) and MAGIC.startswith(blob):
            raise CompressedFileError(path, f"truncated: {len(blob)} bytes, shorter than the magic bytes.")
        raise CompressedFileError(path, f"not an effdl Deep Compression file (it starts with "
                                        f"{blob[:len(MAGIC)]!r}, expected {MAGIC!r}).")
    if len(blob) < _MIN_BYTES:
        raise CompressedFileError(path, f"truncated: {len(blob)} bytes, too short for a header and checksum.")
    (version,) = struct.unpack_from("<H", blob, len(MAGIC))
    if version != FORMAT_VERSION:
        raise CompressedFileError(path, f"format version {version} is not supported (this reader knows "
                                        f"version {FORMAT_VERSION}); the file may be corrupted.")
    parsed = _layout(blob, path)                     # table errors say "truncated or corrupted"
    if parsed.length != len(blob):
        gap = len(blob) - parsed.length
        where = f"{gap} byte(s) left over after the last section" if gap > 0 else f"{-gap} byte(s) short"
        raise CompressedFileError(path, f"truncated or corrupted: its table describes {parsed.length} bytes, "
                                        f"the file has {len(blob)} ({where}).")
    (stored,) = struct.unpack_from("<I", blob, len(blob) - _CHECKSUM_BYTES)
    computed = zlib.crc32(memoryview(blob)[:len(blob) - _CHECKSUM_BYTES])
    if computed != stored:
        raise CompressedFileError(path, f"corrupted: CRC-32 checksum mismatch (stored {stored:08x}, "
                                        f"computed {computed:08x}).")
    return parsed


def _layout(blob: bytes, path: Any) -> _Parsed:
    """Read the table (after magic and version) and locate every payload piece."""
    r = _Reader(blob, path, len(blob) - _CHECKSUM_BYTES)
    r.pos = len(MAGIC) + 2
    (table_len,) = r.unpack("I", "table length")
    table_end = r.pos + table_len
    if table_end > r.end:
        raise CompressedFileError(path, f"truncated or corrupted: its table ({table_len} bytes) runs past "
                                        f"the end of the file.")
    t = _Reader(blob, path, table_end)
    t.pos = r.pos
    arch = t.str8("architecture name")
    (n_layers,) = t.unpack("H", "layer table")
    layers = []
    offset = table_end
    for i in range(n_layers):
        name = t.str8(f"name of layer {i}")
        shape = t.dims(f"shape of {name!r}")
        n_bits, index_bits, length_bits, n_codes, n_entries, n_gap, w_bits, g_bits = \
            t.unpack("BBBIIIII", f"entry of {name!r}")
        if length_bits not in (4, 8):
            raise _corrupted(path, name, f"length_bits {length_bits} is neither 4 nor 8")
        sizes = {"codebook": 4 * n_codes, "weight_lengths": -(-n_codes * length_bits // 8),
                 "gap_lengths": -(-n_gap * length_bits // 8),
                 "weight_stream": -(-w_bits // 8), "gap_stream": -(-g_bits // 8)}
        ranges = {}
        for part, size in sizes.items():
            ranges[part] = (offset, offset + size)
            offset += size
        layers.append(dict(name=name, shape=shape, n_bits=n_bits, index_bits=index_bits,
                           length_bits=length_bits, n_codes=n_codes,
                           n_entries=n_entries, n_gap_symbols=n_gap, weight_stream_bits=w_bits,
                           gap_stream_bits=g_bits,
                           ranges=ranges))
    (n_others,) = t.unpack("H", "table of other tensors")
    others = []
    for i in range(n_others):
        name = t.str8(f"name of tensor {i}")
        others.append((name, t.dims(f"shape of {name!r}")))
    if t.pos != table_end:
        raise CompressedFileError(path, f"corrupted: the table has {table_end - t.pos} bytes left over.")
    length = offset + sum(4 * math.prod(shape) for _, shape in others) + _CHECKSUM_BYTES
    return _Parsed(arch, layers, others, table_end, offset, length, blob)


_Fail = Callable[[str], NoReturn]


def _failer(path: Any, name: str) -> _Fail:
    """``fail(problem)`` raises the CompressedFileError for a field of tensor ``name``."""

    def fail(problem: str) -> NoReturn:
        raise _corrupted(path, name, problem)
    return fail


def _check_table_entry(rec: dict, numel: int, fail: _Fail) -> None:
    """The layer's table entry on its own: widths in range, counts that fit the shape and each other."""
    n_bits, n_codes, ib = rec["n_bits"], rec["n_codes"], rec["index_bits"]
    n, n_gap = rec["n_entries"], rec["n_gap_symbols"]
    w_bits, g_bits = rec["weight_stream_bits"], rec["gap_stream_bits"]
    if not 1 <= n_bits <= 16:
        fail(f"n_bits {n_bits} is outside 1 … 16")
    if not 1 <= n_codes <= 1 << n_bits:
        fail(f"n_codes {n_codes} does not fit n_bits {n_bits} (1 … {1 << n_bits} codebook entries)")
    if ib > 16:
        fail(f"index_bits {ib} is outside 0 … 16 (0: a dense layer)")
    if n > numel:                                    # every entry, filler or not, has its own position
        fail(f"n_entries {n} exceeds the {numel} weights of its shape {rec['shape']}")
    if ib == 0:
        if n != numel:
            fail(f"n_entries {n} does not match the {numel} weights of a dense layer (index_bits 0)")
        if n_gap or g_bits:
            fail(f"a dense layer (index_bits 0) has no gap stream, but its n_gap_symbols is {n_gap} and "
                 f"gap_stream_bits {g_bits}")
    elif n_gap > 1 << ib:
        fail(f"n_gap_symbols {n_gap} exceeds the {1 << ib} gaps that index_bits {ib} can store")
    if n == 0 and (w_bits or g_bits or n_gap):
        fail(f"n_entries 0, but weight_stream_bits {w_bits}, gap_stream_bits {g_bits}, n_gap_symbols {n_gap}")
    if n and ib and not n_gap:
        fail(f"n_entries {n}, but n_gap_symbols 0 (no gap has a code)")


def _check_finite(values: np.ndarray, what: str, fail: _Fail) -> None:
    """Every stored float is finite: a NaN or ±inf codebook entry or bias is a corrupted file."""
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = ", ".join(str(int(k)) for k in np.unravel_index(bad[0], values.shape))
        fail(f"{what}[{i}] is {float(values.flat[bad[0]])}, not a finite number "
             f"({bad.size} of its {values.size} values are not)")


def _check_padding(raw: bytes, n_bits: int, what: str, fail: _Fail) -> None:
    """The bits after the last meaningful one of a byte-padded section are zero, as the writer leaves them."""
    spare = 8 * len(raw) - n_bits                    # 0 … 7: sections are ceil(bits / 8) bytes
    if spare and raw[-1] & ((1 << spare) - 1):
        fail(f"the {spare} padding bits after its {what} are not zero")


def _check_code(lengths: np.ndarray, what: str, fail: _Fail) -> None:
    """Canonical code lengths (0 = no code) of a complete prefix code, as a Huffman code's are."""
    used = lengths[lengths > 0]
    if used.size == 1 and used[0] != 1:
        fail(f"its {what} code lengths give their lone symbol {int(used[0])} bits, not 1")
    if used.size > 1:                                # Kraft's sum, exactly: Σ 2**(top − L) = 2**top
        top = int(used.max())
        kraft = sum(int(c) << (top - length) for length, c in enumerate(np.bincount(used)) if c)
        if kraft != 1 << top:
            fail(f"its {what} code lengths are not those of a complete prefix code "
                 f"(Kraft sum {kraft / 2 ** top:.6g}, a Huffman code's is 1)")


def _decode_stream(raw: bytes, stream_bits: int, lengths: np.ndarray, n: int, what: str,
                   fail: _Fail) -> np.ndarray:
    """The ``n`` symbols of a Huffman stream: they fill ``stream_bits`` exactly, in the writer's code."""
    if n == 0:                                       # _check_table_entry: then the stream is empty
        return np.zeros(0, dtype=np.int64)
    field = f"{what}_stream_bits"
    if not lengths.any():
        fail(f"n_entries {n}, but no {what} symbol has a code (its {what} code lengths are all 0)")
    try:
        symbols = huffman_decode(raw, stream_bits, lengths, n)
    except ValueError:                               # a complete code always matches: the stream ran out
        symbols = None                               # (raised below, outside the except: no chained trace)
    if symbols is None:
        fail(f"n_entries {n} does not match its {what} stream: its {field} {stream_bits} end before "
             f"the last codeword")
    used = int(lengths[symbols].sum())
    if used != stream_bits:
        fail(f"n_entries {n} does not match its {what} stream: {n} codeword(s) take {used} of its "
             f"{field} {stream_bits}")
    _check_padding(raw, stream_bits, f"{what} stream", fail)
    # The writer's code for these symbols (ties broken by symbol): a relabelled or hand-made table that
    # still parses the stream is refused, so an accepted file is the one the writer writes for its model.
    counts = np.bincount(symbols, minlength=lengths.size)
    huffman = np.zeros(lengths.size, dtype=np.int64)
    for s, length in code_lengths(huffman_code(counts)).items():
        huffman[s] = length
    if not np.array_equal(lengths, huffman):
        s = int(np.flatnonzero(lengths != huffman)[0])
        fail(f"its {what} code lengths are not the Huffman code of its {what} stream: symbol {s} "
             f"(used {int(counts[s])} times) has a {int(lengths[s])}-bit code, the Huffman code gives it "
             f"{int(huffman[s])} bits")
    return symbols


@dataclass(frozen=True)
class _Tables:
    """A layer's table entry, codebook and code-length tables, checked; its streams not yet decoded."""

    rec: dict
    codebook: np.ndarray            # (n_codes,) float32
    weight_lengths: np.ndarray      # (n_codes,) code lengths, 0 = no code
    gap_lengths: np.ndarray         # (n_gap_symbols,)


def _layer_tables(p: _Parsed, rec: dict, path: Any) -> _Tables:
    """Check what a layer stores besides its streams (cheap: every layer is checked before any decodes)."""
    ib, fail = rec["index_bits"], _failer(path, rec["name"])
    _check_table_entry(rec, math.prod(rec["shape"]), fail)
    codebook = np.frombuffer(p.piece(rec, "codebook"), dtype="<f4").astype(np.float32)
    _check_finite(codebook, "codebook", fail)
    if ib and codebook.view(np.uint32)[0] != 0:
        fail(f"codebook[0] is {float(codebook[0])!r}, not the +0.0 a pruned layer (index_bits {ib}) reserves")
    lengths = {}
    for what, count in (("weight", rec["n_codes"]), ("gap", rec["n_gap_symbols"])):
        raw = p.piece(rec, f"{what}_lengths")
        lengths[what] = unpack_bits(raw, rec["length_bits"], count)
        _check_padding(raw, count * rec["length_bits"], f"{what} code lengths", fail)
        _check_code(lengths[what], what, fail)
    longest = int(max(lengths["weight"].max(initial=0), lengths["gap"].max(initial=0)))
    if rec["length_bits"] == 8 and longest <= 15:
        fail(f"length_bits 8, but its longest code has {longest} bits (4 bits store up to 15)")
    return _Tables(rec, codebook, lengths["weight"], lengths["gap"])


def _decode_layer(p: _Parsed, t: _Tables, path: Any) -> tuple[SharedLayer, int]:
    """One layer's SharedLayer and its number of fillers, from its checked tables and its streams."""
    rec = t.rec
    name, shape, ib, n = rec["name"], rec["shape"], rec["index_bits"], rec["n_entries"]
    numel, fail = math.prod(shape), _failer(path, name)
    symbols = _decode_stream(p.piece(rec, "weight_stream"), rec["weight_stream_bits"], t.weight_lengths, n,
                             "weight", fail)
    if ib == 0:                                      # dense layer: every position, in order
        flat, n_fillers = symbols, 0
    else:
        gaps = _decode_stream(p.piece(rec, "gap_stream"), rec["gap_stream_bits"], t.gap_lengths, n, "gap", fail)
        flat, n_fillers = _place(gaps, symbols, rec, numel, fail)
    index = _from_csc(flat, shape).astype(np.int64)
    return SharedLayer(name, t.codebook, index, rec["n_bits"], ib > 0), n_fillers


def _place(gaps: np.ndarray, symbols: np.ndarray, rec: dict, numel: int, fail: _Fail) -> tuple[np.ndarray, int]:
    """The flat cluster index of a relative-index stream, and its fillers, as the writer lays them out."""
    ib, n_gap = rec["index_bits"], rec["n_gap_symbols"]
    if gaps.size == 0:
        return np.zeros(numel, dtype=np.int64), 0
    if int(gaps.max()) + 1 != n_gap:
        fail(f"n_gap_symbols {n_gap} does not match its largest gap {int(gaps.max())} "
             f"(n_gap_symbols is the largest gap + 1)")
    last = int(gaps.sum()) + gaps.size - 1           # entry k sits at prev + gap + 1
    if last >= numel:
        fail(f"its relative indexes run to position {last}, past the end of its {numel} weights")
    # A stored 0 (the reserved zero) is a filler: it bridges 2**index_bits positions and a non-zero follows.
    fillers = symbols == 0
    odd = np.flatnonzero(fillers & (gaps != (1 << ib) - 1))
    if odd.size:
        k = int(odd[0])
        fail(f"entry {k} stores the reserved zero (codebook index 0) after a gap of {int(gaps[k])}; only a "
             f"filler does, after a gap of {(1 << ib) - 1} (index_bits {ib})")
    if fillers[-1]:
        fail(f"its last entry (of n_entries {symbols.size}) is a filler, with no non-zero weight after it")
    return relative_index_decode(gaps, symbols, numel), int(np.count_nonzero(fillers))


@functools.lru_cache(maxsize=None)
def _reference_shapes(arch: str) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """(name, shape) of every state-dict tensor of ``build_model(arch)``, in order (built once per arch)."""
    return tuple((n, tuple(t.shape)) for n, t in build_model(arch, seed=0).state_dict().items())


def _check_arch(p: _Parsed, path: Any) -> None:
    if p.arch not in MODELS:
        raise CompressedFileError(path, f"corrupted: unknown architecture {p.arch!r}.")
    reference = dict(_reference_shapes(p.arch))
    seen = set()
    for name, shape in [(r["name"], tuple(r["shape"])) for r in p.layers] + p.others:
        if name in seen:
            raise _corrupted(path, name, "the tensor is stored twice")
        seen.add(name)
        if name not in reference:
            raise _corrupted(path, name, f"not a tensor of the {p.arch} architecture (its tensors are "
                                         f"{list(reference)})")
        if shape != reference[name]:
            raise _corrupted(path, name, f"shape {shape} does not match {reference[name]} in the {p.arch} "
                                         f"architecture")
    missing = [n for n in reference if n not in seen]
    if missing:
        raise CompressedFileError(path, f"corrupted: it lacks the tensors {missing} of the {p.arch} "
                                        f"architecture.")


def _read(path: str | os.PathLike) -> tuple[SharedModel, _Parsed, dict[str, int]]:
    path = os.fspath(path)
    blob = Path(path).read_bytes()
    p = _parse(blob, path)                           # magic, version, table, length, checksum
    _check_arch(p, path)                             # names and shapes
    tables = [_layer_tables(p, rec, path) for rec in p.layers]      # fields, codebooks, code lengths
    others, offset = {}, p.others_offset
    for name, shape in p.others:
        size = 4 * math.prod(shape)
        others[name] = np.frombuffer(p.blob[offset:offset + size], dtype="<f4").astype(np.float32).reshape(shape)
        _check_finite(others[name], name, _failer(path, name))
        offset += size
    layers, fillers = {}, {}
    for t in tables:                                 # the streams, last: decoding is the slow part
        layers[t.rec["name"]], fillers[t.rec["name"]] = _decode_layer(p, t, path)
    return SharedModel(p.arch, layers, others), p, fillers


@validate_params(path=PATH)
def read_shared(path: str | os.PathLike) -> SharedModel:
    """The :class:`~effdl.sharing.SharedModel` stored in a Deep Compression file.

    Raises :class:`CompressedFileError` (a ``ValueError``) for an empty,
    truncated, bit-flipped or foreign file.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    return _read(path)[0]


@validate_params(path=PATH)
def read_compressed(path: str | os.PathLike) -> nn.Module:
    """Rebuild the model stored in a Deep Compression file (``effdl.models.build_model(arch)``, eval mode).

    Its weights are bit for bit the shared weights that were written, so its
    outputs equal those of :func:`effdl.sharing.quantized_model` exactly.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    return read_shared(path).to_model()


# --------------------------------------------------------------- accounting
def _owner(name: str, layer_names: list[str]) -> str | None:
    module = name.rpartition(".")[0]
    for n in layer_names:
        if n.rpartition(".")[0] == module:
            return n
    return None


@validate_params(source=OneOf(PATH, SHARED), index_bits=INDEX_BITS)
def size_breakdown(source: str | os.PathLike | SharedModel, *,
                   index_bits: int | dict[str, int] = DEFAULT_INDEX_BITS) -> dict:
    """Where the bytes of a Deep Compression file go, per layer and in total.

    Parameters
    ----------
    source : path of a file, or a SharedModel
        A SharedModel is encoded in memory with ``index_bits`` (ignored for a path).

    Returns
    -------
    dict
        ``layers``: per weight — ``numel``, ``nonzeros``, ``n_fillers``,
        ``n_entries`` (non-zeros + fillers), ``n_bits``, ``index_bits``,
        ``dense_fp32_bytes``, and bytes of ``codebook``, ``code_lengths``
        (the two canonical Huffman tables), ``weight_index_fixed`` /
        ``weight_index_huffman`` (before / after Huffman),
        ``relative_index_fixed`` / ``relative_index_huffman``,
        ``fillers_fixed`` (what the fillers' entries cost at fixed width),
        ``bias`` (its float32 bias) and ``file`` (its bytes in the file, bias
        included). Top level: ``header_bytes`` (magic, version, table),
        ``checksum_bytes``, ``other_bytes`` (tensors not tied to a layer),
        ``total_bytes`` (= header + Σ file + other + checksum, the file size),
        ``dense_fp32_bytes`` (every parameter as float32) and ``ratio``.

    Taught in chapter 03, "Weight sharing and trained quantization".
    """
    if isinstance(source, SharedModel):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.dc"
            write_compressed(path, source, index_bits=index_bits)
            return size_breakdown(path)
    shared, p, fillers = _read(source)
    names = list(shared.layers)
    layers = {}
    for rec in p.layers:
        name, layer = rec["name"], shared.layers[rec["name"]]
        ib, n_entries = rec["index_bits"], rec["n_entries"]
        size = {part: b - a for part, (a, b) in rec["ranges"].items()}
        layers[name] = {
            "shape": list(rec["shape"]), "numel": layer.index.size, "nonzeros": layer.nonzeros,
            "n_fillers": fillers[name], "n_entries": n_entries, "n_bits": rec["n_bits"], "index_bits": ib,
            "dense_fp32_bytes": 4 * layer.index.size,
            "codebook": size["codebook"],
            "code_lengths": size["weight_lengths"] + size["gap_lengths"],
            "weight_index_fixed": -(-n_entries * rec["n_bits"] // 8),
            "weight_index_huffman": size["weight_stream"],
            "relative_index_fixed": -(-n_entries * ib // 8),
            "relative_index_huffman": size["gap_stream"],
            "fillers_fixed": -(-fillers[name] * (rec["n_bits"] + ib) // 8),
            "bias": 0,
        }
    other_bytes = 0
    for name, a in shared.others.items():
        owner = _owner(name, names)
        if owner is None:
            other_bytes += 4 * a.size
        else:
            layers[owner]["bias"] += 4 * a.size
    for rec in layers.values():
        rec["file"] = (rec["codebook"] + rec["code_lengths"] + rec["weight_index_huffman"]
                       + rec["relative_index_huffman"] + rec["bias"])
    total = os.path.getsize(source)
    dense = 4 * (sum(layer.index.size for layer in shared.layers.values())
                 + sum(a.size for a in shared.others.values()))
    assert p.header_bytes + sum(r["file"] for r in layers.values()) + other_bytes + _CHECKSUM_BYTES == total
    return {"arch": shared.arch, "layers": layers, "header_bytes": p.header_bytes,
            "checksum_bytes": _CHECKSUM_BYTES, "other_bytes": other_bytes, "total_bytes": total,
            "dense_fp32_bytes": dense, "ratio": dense / total}


# ------------------------------------------------------------------ pipeline
@dataclass
class DeepCompressionResult:
    """Record of :func:`deep_compression`.

    ``sizes`` (bytes): ``dense`` (every parameter float32), ``pruned`` (CSR:
    float32 value + 16-bit column index per non-zero, row pointers, float32
    biases — :func:`effdl.pruning.sparsity_report`), ``quantized`` (fixed
    width: ``n_bits`` + ``index_bits`` per stored entry, fillers included,
    float32 codebooks and biases, no header), ``huffman`` (the file on disk).
    ``ratio`` = dense ÷ file bytes. ``accuracy`` (%, on ``eval_split``):
    ``dense`` (if given), ``pruned``, ``quantized`` (k-means only),
    ``finetuned`` (if fine-tuned) and ``file`` (the model read back).

    Behind chapter 03, "Weight sharing and trained quantization".
    """

    path: str
    arch: str
    bits: dict[str, int]
    index_bits: dict[str, int]      # per layer, as stored (0 = dense layer)
    sizes: dict[str, int]
    ratio: float
    accuracy: dict[str, float]
    outputs_match: bool | None      # file model's logits == shared model's, bit for bit
    breakdown: dict = field(repr=False)
    shared: SharedModel = field(repr=False)
    history: History | None = field(default=None, repr=False)

    def summary(self) -> dict:
        """The JSON-friendly part of the record (no arrays)."""
        return {"path": self.path, "arch": self.arch, "bits": self.bits, "index_bits": self.index_bits,
                "sizes": self.sizes, "ratio": round(self.ratio, 2), "accuracy": self.accuracy,
                "outputs_match": self.outputs_match,
                "finetune_best_epoch": None if self.history is None else self.history.best_epoch}


def _quantized_bytes(breakdown: dict) -> int:
    layers = breakdown["layers"].values()
    return (sum(r["codebook"] + r["weight_index_fixed"] + r["relative_index_fixed"] + r["bias"] for r in layers)
            + breakdown["other_bytes"])


@torch.no_grad()
def _logits(model: nn.Module, split: Split) -> torch.Tensor:
    return model.eval().cpu()(split.x)


@validate_params(model=Module(), path=PATH,
                 n_bits=OneOf(Interval(int, 1, 16, optional=True), Instance(dict, "a dict of weight name → bit width")),
                 index_bits=INDEX_BITS, init=Options(INITS),
                 finetune=Unchecked("None or a (train, val) tuple of Splits; checked in the body"),
                 epochs=Interval(int, 0, None), lr=Interval(float, 0, None, closed="neither"),
                 momentum=Interval(float, 0, 1, closed="left"), train_biases=Bool(),
                 eval_split=SPLIT, dense_model=Module(optional=True), seed=Seed())
def deep_compression(model: nn.Module, *, path: str | os.PathLike, n_bits: int | dict[str, int] | None = None,
                     index_bits: int | dict[str, int] = DEFAULT_INDEX_BITS, init: str = "linear",
                     finetune: tuple[Split, Split] | None = None, epochs: int = 5, lr: float = 1e-3,
                     momentum: float = 0.9, train_biases: bool = False, eval_split: Split | None = None,
                     dense_model: nn.Module | None = None, seed: int = 0) -> DeepCompressionResult:
    """Pruned model → weight sharing → (optional) centroid fine-tuning → Huffman-coded file.

    Parameters
    ----------
    model : nn.Module
        The pruned effdl model (zeros mark pruned weights; masks are applied).
    path : str or path-like
        Where the file is written.
    n_bits : int, dict {weight name: int} or None
        Weight-index width per layer; None takes :data:`DEFAULT_BITS` of the
        architecture (the paper's: 6 for LeNet-300-100; 8 conv / 5 fc for LeNet-5).
    index_bits : int or dict, default 5
        Relative-index width (the paper's 5 for both LeNets).
    init : {"linear", "density", "random"}
        k-means initialisation (:func:`effdl.sharing.kmeans_1d`).
    finetune : (train, val) or None
        Splits for :func:`effdl.sharing.finetune_centroids` (``epochs``,
        ``lr``, ``momentum``, ``train_biases``, ``seed``); the epoch is chosen
        on ``val``. None: k-means centroids only.
    eval_split : Split, optional
        Where the accuracies are measured (choose settings on val, report test).
    dense_model : nn.Module, optional
        The unpruned model, for the ``dense`` accuracy.

    Behind chapter 03, "Weight sharing and trained quantization".
    """
    bits = n_bits
    if bits is None:
        arch = next((a for a, cls in MODELS.items() if type(model) is cls), None)
        if arch not in DEFAULT_BITS:
            _fail(ValueError, "n_bits", f"given for a model without defaults (defaults exist for "
                                      f"{sorted(DEFAULT_BITS)})", bits)
        bits = DEFAULT_BITS[arch]
    if finetune is not None and (not isinstance(finetune, tuple) or len(finetune) != 2
                                 or not isinstance(finetune[0], Split)
                                 or not isinstance(finetune[1], (Split, type(None)))):
        _fail(TypeError, "finetune", "None or a (train, val) tuple of Splits (val may be None)", finetune)

    shared = share_weights(model, bits, init, seed=seed)
    accuracy = {}
    if eval_split is not None:
        if dense_model is not None:
            accuracy["dense"] = evaluate(dense_model, eval_split)
        accuracy["pruned"] = evaluate(model, eval_split)
        accuracy["quantized"] = evaluate(shared.to_model(), eval_split)
    history = None
    if finetune is not None:
        train, val = finetune
        shared, history = finetune_centroids(shared, train, val, epochs=epochs, lr=lr, momentum=momentum,
                                             train_biases=train_biases, seed=seed, show_progress=False)
        if eval_split is not None:
            accuracy["finetuned"] = evaluate(shared.to_model(), eval_split)
    write_compressed(path, shared, index_bits=index_bits)
    restored = read_compressed(path)
    outputs_match = None
    if eval_split is not None:
        accuracy["file"] = evaluate(restored, eval_split)
        outputs_match = bool(torch.equal(_logits(restored, eval_split), _logits(shared.to_model(), eval_split)))
    breakdown = size_breakdown(path)
    pruned_bytes = (sum(r.sparse_bytes for r in sparsity_report(model))
                    + 4 * sum(a.size for a in shared.others.values()))
    sizes = {"dense": 4 * count_parameters(model), "pruned": pruned_bytes,
             "quantized": _quantized_bytes(breakdown), "huffman": os.path.getsize(path)}
    chosen_index_bits = {n: r["index_bits"] for n, r in breakdown["layers"].items()}   # resolves "auto"
    return DeepCompressionResult(os.fspath(path), shared.arch, {n: l.n_bits for n, l in shared.layers.items()},
                                 chosen_index_bits, sizes, sizes["dense"] / sizes["huffman"], accuracy,
                                 outputs_match, breakdown, shared, history)
