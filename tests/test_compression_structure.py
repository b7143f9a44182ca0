"""Structure checks of the Deep Compression reader (effdl.compression) on forged files.

A CRC catches damage, not a writer bug or a hand edit whose checksum was recomputed. Here the
shipped files ``data/zoo/{lenet300,lenet5}.dc`` are walked into their fields by a parser written
from the module docstring's layout (not the module's own), every kind of field is mutated —
table counts and widths, shapes and names, code-length tables, the decoded symbol and gap
streams, codebook entries and biases, truncations and trailing bytes — and the CRC is recomputed.
The reader must refuse each mutation with a CompressedFileError whose message names the tensor
and the field, or, for the mutations that are consistent by construction (a finite codebook
entry, a raised ``n_bits``, a weight moved within its layer, …), load exactly the model the
forged fields describe, which the writer turns back into the same bytes. The generator is
seeded. A byte-flip fuzz, CRC recomputed, allows a clear error or a load and nothing else."""
from __future__ import annotations

import copy
import math
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pytest

from effdl.coding import code_lengths, huffman_code, huffman_decode, huffman_encode, pack_bits, \
    relative_index_decode, unpack_bits
from effdl.compression import CompressedFileError, encode_compressed, read_shared
from effdl.data import verified_path
from effdl.sharing import SharedLayer, SharedModel

ARCHS = ("lenet300", "lenet5")
SEED = 20160201                  # Deep Compression, ICLR 2016
U32 = (1 << 32) - 1
LAYER_FIELDS = ("n_bits", "index_bits", "length_bits", "n_codes", "n_entries", "n_gap_symbols",
                "weight_stream_bits", "gap_stream_bits")
SECTIONS = ("codebook", "weight_lengths", "gap_lengths", "weight_stream", "gap_stream")
NOT_FINITE = {"nan": 0x7FC00000, "-nan": 0xFFC00000, "snan": 0x7F800001, "+inf": 0x7F800000,
              "-inf": 0xFF800000}


# ----------------------------------------------------------------- the field walker
def _ceil8(bits: int) -> int:
    return -(-bits // 8)


def section_sizes(layer: dict) -> tuple[int, ...]:
    """Bytes of each payload section of a layer, from its table fields (module docstring)."""
    lb = layer["length_bits"]
    return (4 * layer["n_codes"], _ceil8(layer["n_codes"] * lb), _ceil8(layer["n_gap_symbols"] * lb),
            _ceil8(layer["weight_stream_bits"]), _ceil8(layer["gap_stream_bits"]))


def walk(blob: bytes) -> dict:
    """Every field of a well-formed file: names as raw bytes, table numbers, payload sections."""
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        out, pos = blob[pos:pos + n], pos + n
        return out

    def unpack(fmt: str) -> tuple:
        return struct.unpack("<" + fmt, take(struct.calcsize("<" + fmt)))

    def str8() -> bytes:
        return take(unpack("B")[0])

    def dims() -> list[int]:
        return list(unpack(f"{unpack('B')[0]}I"))

    f = {"magic": take(8), "version": unpack("H")[0], "table_len": None, "n_layers": None, "n_others": None,
         "trailing": b""}
    table_start = pos + 4
    table_len = unpack("I")[0]
    f["arch"] = str8()
    layers = []
    for _ in range(unpack("H")[0]):
        layer = {"name": str8(), "dims": dims()}
        layer.update(zip(LAYER_FIELDS, unpack("BBBIIIII")))
        layers.append(layer)
    others = [{"name": str8(), "dims": dims()} for _ in range(unpack("H")[0])]
    assert pos == table_start + table_len
    for layer in layers:
        for part, size in zip(SECTIONS, section_sizes(layer)):
            layer[part] = take(size)
    for other in others:
        other["data"] = take(4 * math.prod(other["dims"]))
    assert len(blob) - pos == 4 and zlib.crc32(blob[:pos]) == struct.unpack("<I", blob[pos:])[0]
    f["layers"], f["others"] = layers, others
    return f


def build(f: dict) -> bytes:
    """The bytes of ``f`` with a recomputed CRC; ``table_len``, ``n_layers``, ``n_others`` override."""
    def str8(raw: bytes) -> bytes:
        return bytes([len(raw)]) + raw

    def dims(d: list[int]) -> bytes:
        return struct.pack(f"<B{len(d)}I", len(d), *d)

    table = [str8(f["arch"]), struct.pack("<H", len(f["layers"]) if f["n_layers"] is None else f["n_layers"])]
    for layer in f["layers"]:
        table += [str8(layer["name"]), dims(layer["dims"]),
                  struct.pack("<BBBIIIII", *(layer[k] for k in LAYER_FIELDS))]
    table.append(struct.pack("<H", len(f["others"]) if f["n_others"] is None else f["n_others"]))
    for other in f["others"]:
        table += [str8(other["name"]), dims(other["dims"])]
    table = b"".join(table)
    table_len = len(table) if f["table_len"] is None else f["table_len"]
    body = [f["magic"], struct.pack("<HI", f["version"], table_len), table]
    body += [layer[part] for layer in f["layers"] for part in SECTIONS]
    body += [other["data"] for other in f["others"]] + [f["trailing"]]
    body = b"".join(body)
    return body + struct.pack("<I", zlib.crc32(body))


def code_tables(layer: dict) -> tuple[np.ndarray, np.ndarray]:
    lb = layer["length_bits"]
    return (unpack_bits(layer["weight_lengths"], lb, layer["n_codes"]),
            unpack_bits(layer["gap_lengths"], lb, layer["n_gap_symbols"]))


def decode_streams(layer: dict) -> tuple[np.ndarray, np.ndarray]:
    """(weight symbols, gaps) of a layer, with effdl.coding's primitives and no checks."""
    wl, gl = code_tables(layer)
    n = layer["n_entries"]
    none = np.zeros(0, dtype=np.int64)
    symbols = huffman_decode(layer["weight_stream"], layer["weight_stream_bits"], wl, n) if n else none
    sparse = n and layer["index_bits"]
    gaps = huffman_decode(layer["gap_stream"], layer["gap_stream_bits"], gl, n) if sparse else none
    return symbols, gaps


def encode_streams(layer: dict, symbols: np.ndarray, gaps: np.ndarray, *, alphabet: int | None = None) -> None:
    """Store ``symbols`` and ``gaps`` in ``layer`` as the writer would: fresh Huffman codes, all fields.

    ``alphabet`` > n_codes codes the weights over that many symbols but stores only the first
    n_codes code lengths (a writer whose indexes run past its codebook)."""
    n_codes = layer["n_codes"]
    streams = [("weight", symbols, alphabet or n_codes)]
    if layer["index_bits"]:
        streams.append(("gap", gaps, int(gaps.max()) + 1 if gaps.size else 0))
    tables = {"weight": np.zeros(0, int), "gap": np.zeros(0, int)}
    for what, values, size in streams:
        lengths, data, n_bits = np.zeros(size, dtype=np.int64), b"", 0
        if values.size:
            code = huffman_code(np.bincount(values, minlength=size))
            for s, length in code_lengths(code).items():
                lengths[s] = length
            data, n_bits = huffman_encode(values, code)
        tables[what] = lengths
        layer[f"{what}_stream"], layer[f"{what}_stream_bits"] = data, n_bits
    tables["weight"] = tables["weight"][:n_codes]
    lb = 4 if max(tables["weight"].max(initial=0), tables["gap"].max(initial=0)) <= 15 else 8
    layer.update(n_entries=int(symbols.size), n_gap_symbols=int(tables["gap"].size), length_bits=lb,
                 weight_lengths=pack_bits(tables["weight"], lb), gap_lengths=pack_bits(tables["gap"], lb))


def naive_model(f: dict) -> SharedModel:
    """The model the fields describe, decoded without any check (for mutations that must load)."""
    layers = {}
    for layer in f["layers"]:
        name, shape = layer["name"].decode(), tuple(layer["dims"])
        symbols, gaps = decode_streams(layer)
        flat = relative_index_decode(gaps, symbols, math.prod(shape)) if layer["index_bits"] else symbols
        index = flat.reshape(-1, shape[0]).T.reshape(shape)          # stored column-major (CSC)
        codebook = np.frombuffer(layer["codebook"], dtype="<f4").astype(np.float32)
        layers[name] = SharedLayer(name, codebook, index, layer["n_bits"], layer["index_bits"] > 0)
    others = {o["name"].decode(): np.frombuffer(o["data"], dtype="<f4").astype(np.float32).reshape(o["dims"])
              for o in f["others"]}
    return SharedModel(f["arch"].decode(), layers, others)


# ----------------------------------------------------------------- mutations
@dataclass(frozen=True)
class Case:
    label: str
    fields: dict
    # Alternatives: the message holds every word of one. None: consistent by construction, must load
    # as naive_model(fields).
    refuse: tuple[tuple[str, ...], ...] | None
    oracle: bool = False    # consistent (and then must load) if writer_would_write, else refuse


@dataclass
class Shipped:
    arch: str
    blob: bytes
    fields: dict
    streams: list[tuple[np.ndarray, np.ndarray]]  # (symbols, gaps) per layer

    def edit(self, fn: Callable[[dict], None]) -> dict:
        f = copy.deepcopy(self.fields)
        fn(f)
        return f

    def layer_edit(self, i: int, **values) -> dict:
        return self.edit(lambda f: f["layers"][i].update(values))


def refuse(*alternatives: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    return alternatives


def writer_would_write(fields: dict, blob: bytes, model: SharedModel | None = None) -> bool:
    """Whether ``blob`` is what the writer writes for the model its fields describe (no checks: a
    field that does not decode, or decodes to something the writer writes differently, is not)."""
    try:
        model = model or naive_model(fields)
        index_bits = {n: layer["index_bits"] or 5 for n, layer in zip(model.layers, fields["layers"])}
        return encode_compressed(model, index_bits=index_bits) == blob
    except (ValueError, IndexError):
        return False


def layer_name(layer: dict) -> str:
    return layer["name"].decode()


def table_counts(s: Shipped, rng: np.random.Generator) -> Iterator[Case]:
    """n_entries, n_bits, index_bits, length_bits, n_codes, n_gap_symbols, *_stream_bits."""
    for i, layer in enumerate(s.fields["layers"]):
        N, numel, n = layer_name(layer), math.prod(layer["dims"]), layer["n_entries"]
        symbols, gaps = s.streams[i]
        has_fillers = bool(layer["index_bits"]) and bool(np.any(symbols == 0))
        for v in sorted({0, 1, n - 1, n + 1, n // 2, 2 * n, numel, numel + 1, U32,
                         *rng.integers(0, numel + 1, 6).tolist()} - {n}):
            yield Case(f"{N} n_entries {v}", s.layer_edit(i, n_entries=v), refuse((N, "n_entries")))
        need = max(1, math.ceil(math.log2(layer["n_codes"])))
        for v in sorted({0, 1, need - 1, need, need + 1, 16, 17, 31, 64, 128, 255} - {layer["n_bits"], -1}):
            yield Case(f"{N} n_bits {v}", s.layer_edit(i, n_bits=v),
                       None if need <= v <= 16 else refuse((N, "n_bits")))
        ib = layer["index_bits"]
        for v in sorted({0, 1, 2, ib - 2, ib - 1, ib + 1, ib + 2, 16, 17, 32, 255} - {ib, -1, -2}):
            if v == 0:
                expect = refuse((N, "index_bits 0"))
            elif v > 16:
                expect = refuse((N, "index_bits"))
            elif 1 << v < layer["n_gap_symbols"]:          # a stored gap wider than index_bits
                expect = refuse((N, "n_gap_symbols", "index_bits"))
            elif has_fillers:                              # a filler bridges 2**index_bits positions
                expect = refuse((N, "reserved zero"))
            else:
                expect = None                              # same gaps, no fillers: the writer's stream
            yield Case(f"{N} index_bits {v}", s.layer_edit(i, index_bits=v), expect)
        for v in sorted({*range(17), 255} - {4}):          # 8: the length tables would double
            yield Case(f"{N} length_bits {v}", s.layer_edit(i, length_bits=v),
                       refuse(("table describes",)) if v == 8 else refuse((N, "length_bits")))
        wl, gl = code_tables(layer)
        yield Case(f"{N} length_bits 8, tables re-packed",
                   s.layer_edit(i, length_bits=8, weight_lengths=pack_bits(wl, 8),
                                gap_lengths=pack_bits(gl, 8)),
                   refuse((N, "length_bits 8")))
        nc = layer["n_codes"]
        for v in sorted({0, 1, nc - 1, nc + 1, 2 * nc, (1 << layer["n_bits"]) + 1, U32} - {nc}):
            yield Case(f"{N} n_codes {v}", s.layer_edit(i, n_codes=v), refuse(("table describes",)))
        n_gap = layer["n_gap_symbols"]
        for v in sorted({0, n_gap - 1, n_gap + 1, n_gap + 2, 2 * n_gap, (1 << layer["index_bits"]) + 1, U32}
                        - {n_gap, -1}):
            yield Case(f"{N} n_gap_symbols {v}", s.layer_edit(i, n_gap_symbols=v),
                       refuse(("table describes",), (N, "n_gap_symbols"), (N, "gap code lengths")))
        for what in ("weight", "gap"):
            field = f"{what}_stream_bits"
            bits = layer[field]
            for v in sorted({bits - 9, bits - 8, bits - 1, bits + 1, bits + 7, bits + 8, 0, U32} - {bits}):
                if 0 <= v <= U32:
                    yield Case(f"{N} {field} {v}", s.layer_edit(i, **{field: v}),
                               refuse(("table describes",), (N, field), (N, f"{what} stream")))


def codebooks(s: Shipped, rng: np.random.Generator) -> Iterator[Case]:
    """Grown and shrunk codebooks (code-length tables resized with them)."""
    for i, layer in enumerate(s.fields["layers"]):
        N, nc, n_bits = layer_name(layer), layer["n_codes"], layer["n_bits"]
        wl, _ = code_tables(layer)
        codebook = np.frombuffer(layer["codebook"], dtype="<f4")
        for k in sorted({1, 2, nc // 2, nc - 1, *rng.integers(1, nc, 2).tolist()}):
            # A shorter codebook under the same stream: its indexes run past the codebook.
            edit = dict(n_codes=k, codebook=codebook[:k].tobytes(),
                        weight_lengths=pack_bits(wl[:k], layer["length_bits"]))
            consistent = not wl[k:].any()                  # only unused entries dropped
            yield Case(f"{N} codebook cut to {k}", s.layer_edit(i, **edit),
                       None if consistent else refuse((N, "weight code lengths"), (N, "weight stream"),
                                                      (N, "weight_stream_bits")))
        extra = np.float32(rng.normal(0, 0.1))
        grown = dict(n_codes=nc + 1, codebook=codebook.tobytes() + extra.astype("<f4").tobytes(),
                     weight_lengths=pack_bits(np.append(wl, 0), layer["length_bits"]))
        yield Case(f"{N} an unused codebook entry", s.layer_edit(i, **grown),
                   None if nc + 1 <= 1 << n_bits else refuse((N, "n_codes")))
        if n_bits < 16:
            yield Case(f"{N} an unused codebook entry, n_bits + 1",
                       s.layer_edit(i, n_bits=n_bits + 1, **grown), None)


def shapes_and_names(s: Shipped, rng: np.random.Generator) -> Iterator[Case]:
    """dims, tensor names, architecture name, layers dropped, duplicated or reordered."""
    kinds = [("layers", i) for i in range(len(s.fields["layers"]))] + \
            [("others", i) for i in range(len(s.fields["others"]))]
    all_names = [t["name"] for kind in ("layers", "others") for t in s.fields[kind]]
    for kind, i in kinds:
        tensor = s.fields[kind][i]
        N, d = tensor["name"].decode(), tensor["dims"]
        variants = [d[:j] + [d[j] + delta] + d[j + 1:] for j in range(len(d)) for delta in (-1, 1)]
        variants += [d[:j] + [0] + d[j + 1:] for j in range(len(d))]
        variants += [d + [1], [1] + d, d[:-1] or [0], d[::-1]]
        for v in variants:
            if v != d:
                yield Case(f"{N} dims {v}", s.edit(lambda f, v=v: f[kind][i].update(dims=v)),
                           refuse((N, "shape"), ("table describes",)))
        other = next(n for n in all_names if n != tensor["name"])
        renames = {b"fc9.weight": refuse(("fc9.weight", "architecture")),
                   tensor["name"].upper(): refuse((N.upper(), "architecture")),
                   tensor["name"] + b" ": refuse((N + " ", "architecture")),
                   b"": refuse(("architecture",)),
                   other: refuse((other.decode(), "stored twice"), (other.decode(), "shape")),
                   b"\xff" + tensor["name"][1:]: refuse(("not UTF-8",)),
                   tensor["name"][:-1] + b"\x80": refuse(("not UTF-8",))}
        for new, expect in renames.items():
            yield Case(f"{N} renamed {new!r}", s.edit(lambda f, new=new: f[kind][i].update(name=new)), expect)
        yield Case(f"{N} dropped", s.edit(lambda f: f[kind].pop(i)), refuse(("lacks", N)))
        yield Case(f"{N} twice", s.edit(lambda f: f[kind].append(copy.deepcopy(f[kind][i]))),
                   refuse((N, "stored twice")))
    layers = s.fields["layers"]

    def swap(f: dict, i: int) -> None:
        f["layers"][i], f["layers"][i + 1] = f["layers"][i + 1], f["layers"][i]

    for i in range(len(layers) - 1):                   # consistent: the writer keeps any order
        yield Case(f"{layer_name(layers[i])} <-> {layer_name(layers[i + 1])} (whole layers)",
                   s.edit(lambda f, i=i: swap(f, i)), None)
        yield Case(f"{layer_name(layers[i])} <-> {layer_name(layers[i + 1])} (names only)",
                   s.edit(lambda f, i=i: (f["layers"][i].update(name=layers[i + 1]["name"]),
                                          f["layers"][i + 1].update(name=layers[i]["name"]))),
                   refuse(("shape",)))
    for arch in sorted({b"lenet300", b"lenet5", b"lstm", b"lenet", b"LeNet300", b"", b"lenet300\x00",
                        b"\xfflenet", b"alexnet"} - {s.fields["arch"]}):
        yield Case(f"arch {arch!r}", s.edit(lambda f, arch=arch: f.update(arch=arch)),
                   refuse(("architecture",)))


def header_and_framing(s: Shipped, rng: np.random.Generator) -> Iterator[Case]:
    """version, magic, table_len, n_layers, n_others, truncations, missing and extra bytes."""
    for v in (0, 2, 3, 255, 256, 65535):
        yield Case(f"version {v}", s.edit(lambda f, v=v: f.update(version=v)), refuse(("version",)))
    for j in range(8):
        magic = bytearray(s.fields["magic"])
        magic[j] ^= 0x20
        yield Case(f"magic byte {j}", s.edit(lambda f, m=bytes(magic): f.update(magic=m)),
                   refuse(("not an effdl",)))
    table_len = struct.unpack_from("<I", s.blob, 10)[0]
    # A misread table fails where the misreading surfaces.
    framing = refuse(("table",), ("ends inside",), ("architecture",), ("not UTF-8",), ("length_bits",),
                     ("n_bits",), ("n_codes",), ("index_bits",), ("n_entries",))
    for v in sorted({0, 1, table_len - 8, table_len - 2, table_len - 1, table_len + 1, table_len + 2,
                     table_len + 8, U32}):
        yield Case(f"table_len {v}", s.edit(lambda f, v=v: f.update(table_len=v)), framing)
    n_layers, n_others = len(s.fields["layers"]), len(s.fields["others"])
    for field, count in (("n_layers", n_layers), ("n_others", n_others)):
        for v in sorted({0, count - 1, count + 1, 255, 65535} - {count}):
            yield Case(f"{field} {v}", s.edit(lambda f, field=field, v=v: f.update({field: v})), framing)
    body = s.blob[:-4]
    cuts = set(rng.integers(14, len(body), 24).tolist())
    offset = 14 + table_len                            # the payload starts after the table
    for layer in s.fields["layers"]:                   # every section boundary, and one byte either side
        for part in SECTIONS:
            offset += len(layer[part])
            cuts |= {offset - 1, offset, offset + 1}
    for k in sorted(c for c in cuts if 14 <= c < len(body)):
        yield Case(f"file cut at {k}, CRC recomputed", {"raw": body[:k]}, refuse(("truncated",)))
    for extra in (b"\0", b"\0" * 4, b"\xff", bytes(rng.integers(0, 256, 16, dtype=np.uint8))):
        yield Case(f"{len(extra)} trailing bytes", s.edit(lambda f, e=extra: f.update(trailing=e)),
                   refuse(("left over",)))
    for i, layer in enumerate(s.fields["layers"]):
        for part in SECTIONS:
            if layer[part]:
                yield Case(f"{layer_name(layer)} {part} one byte short",
                           s.layer_edit(i, **{part: layer[part][:-1]}), refuse(("byte(s) short",)))
            yield Case(f"{layer_name(layer)} {part} one byte long",
                       s.layer_edit(i, **{part: layer[part] + b"\0"}), refuse(("left over",)))
    for i, other in enumerate(s.fields["others"]):
        yield Case(f"{other['name'].decode()} one value short",
                   s.edit(lambda f, i=i: f["others"][i].update(data=f["others"][i]["data"][:-4])),
                   refuse(("byte(s) short",)))


def floats(s: Shipped, rng: np.random.Generator) -> Iterator[Case]:
    """Codebook entries and biases: NaN, ±inf, a reserved zero that is not +0.0, finite edits."""
    def f32(x: float) -> int:
        return struct.unpack("<I", struct.pack("<f", x))[0]

    def put(raw: bytes, k: int, bits: int) -> bytes:
        return raw[:4 * k] + struct.pack("<I", bits) + raw[4 * k + 4:]

    def codebook(i: int, k: int, bits: int) -> dict:
        return s.edit(lambda f: f["layers"][i].update(codebook=put(f["layers"][i]["codebook"], k, bits)))

    def tensor(i: int, k: int, bits: int) -> dict:
        return s.edit(lambda f: f["others"][i].update(data=put(f["others"][i]["data"], k, bits)))

    for i, layer in enumerate(s.fields["layers"]):
        N, nc, sparse = layer_name(layer), layer["n_codes"], layer["index_bits"] > 0
        for k in sorted({nc - 1, *rng.integers(int(sparse), nc, 2).tolist()}):
            for label, bits in NOT_FINITE.items():
                yield Case(f"{N} codebook[{k}] {label}", codebook(i, k, bits), refuse((N, f"codebook[{k}]")))
            value = float(rng.normal(0, 0.2))
            yield Case(f"{N} codebook[{k}] = {value:.3g}", codebook(i, k, f32(value)), None)
        if sparse:
            reserved = {"-0.0": 0x80000000, "1.0": f32(1.0), "subnormal": 1, "nan": NOT_FINITE["nan"]}
            for label, bits in reserved.items():
                yield Case(f"{N} reserved codebook[0] {label}", codebook(i, 0, bits),
                           refuse((N, "codebook[0]")))
    for i, other in enumerate(s.fields["others"]):
        N, size = other["name"].decode(), math.prod(other["dims"])
        for k in sorted({0, size - 1, int(rng.integers(size))}):
            for label, bits in NOT_FINITE.items():
                yield Case(f"{N}[{k}] {label}", tensor(i, k, bits), refuse((N, f"{N}[{k}]")))
        value = float(rng.normal(0, 0.2))
        yield Case(f"{N}[0] = {value:.3g}", tensor(i, 0, f32(value)), None)


def code_length_tables(s: Shipped, rng: np.random.Generator) -> Iterator[Case]:
    """One code length changed, two swapped, a padding bit set (streams left as they are)."""
    for i, layer in enumerate(s.fields["layers"]):
        N, lb = layer_name(layer), layer["length_bits"]
        for what, table in zip(("weight", "gap"), code_tables(layer)):
            if not table.size:
                continue
            expect = refuse((N, f"{what} code lengths"), (N, f"{what} stream"), (N, f"{what}_stream_bits"))
            # a relabelled stream: other symbols in the code's place, or gaps that move the weights
            relabelled = refuse((N, f"{what} code lengths"), (N, "reserved zero"), (N, "filler"),
                                (N, "past the end"), (N, "n_gap_symbols"))
            part = f"{what}_lengths"
            for sym in sorted(set(rng.integers(0, table.size, 4).tolist())):
                top = (1 << lb) - 1
                for v in sorted({0, 1, min(int(table[sym]) + 1, top), max(int(table[sym]) - 1, 0), top}
                                - {int(table[sym])}):
                    edited = table.copy()
                    edited[sym] = v
                    yield Case(f"{N} {what} length[{sym}] {table[sym]} -> {v}",
                               s.layer_edit(i, **{part: pack_bits(edited, lb)}), expect)
            for _ in range(3):
                # Swapped lengths keep the set of codewords: the stream parses the same, into relabelled
                # symbols. Consistent only if the writer codes the relabelled stream with the swapped table.
                a, b = rng.choice(table.size, 2, replace=False)
                if table[a] != table[b]:
                    edited = table.copy()
                    edited[[a, b]] = edited[[b, a]]
                    yield Case(f"{N} {what} lengths [{a}] <-> [{b}]",
                               s.layer_edit(i, **{part: pack_bits(edited, lb)}), relabelled, oracle=True)
            raw = layer[part]
            if 8 * len(raw) > table.size * lb:
                yield Case(f"{N} {what} code lengths padding bit",
                           s.layer_edit(i, **{part: raw[:-1] + bytes([raw[-1] | 1])}),
                           refuse((N, f"padding bits after its {what} code lengths")))


def streams(s: Shipped, rng: np.random.Generator) -> Iterator[Case]:
    """Decoded weight indexes and gaps edited, then Huffman-coded again as the writer would."""
    for i, layer in enumerate(s.fields["layers"]):
        N, ib, nc, numel = layer_name(layer), layer["index_bits"], layer["n_codes"], math.prod(layer["dims"])
        symbols, gaps = s.streams[i]
        span = 1 << ib
        fillers = np.flatnonzero(symbols == 0) if ib else np.zeros(0, int)
        kept = np.flatnonzero(symbols != 0) if ib else np.arange(symbols.size)
        last_pos = int(gaps.sum()) + gaps.size - 1 if ib else numel - 1

        def coded(sym=symbols, gap=gaps, **kw) -> dict:
            return s.edit(lambda f: encode_streams(f["layers"][i], np.asarray(sym), np.asarray(gap), **kw))

        for k in rng.choice(kept, 3, replace=False):        # another index of the codebook: a valid file
            sym = symbols.copy()
            sym[k] = rng.choice([c for c in range(int(ib > 0), nc) if c != symbols[k]])
            yield Case(f"{N} entry {k} index {symbols[k]} -> {sym[k]}", coded(sym), None)
        for k in rng.choice(kept, 2, replace=False):        # index past the codebook
            sym = symbols.copy()
            sym[k] = nc + int(rng.integers(3))
            yield Case(f"{N} entry {k} index {sym[k]} of {nc}", coded(sym, alphabet=int(sym[k]) + 1),
                       refuse((N, "weight code lengths"), (N, "weight stream"), (N, "weight_stream_bits")))
        # the stream holds one entry fewer / more
        yield Case(f"{N} last entry dropped", coded(symbols[:-1], gaps[:-1] if ib else gaps),
                   refuse((N, "n_entries")) if not ib else
                   (refuse((N, "filler")) if symbols[-2] == 0 else None))
        if not ib:
            continue
        for k in rng.choice(kept[gaps[kept] != span - 1], 2, replace=False):
            sym = symbols.copy()
            sym[k] = 0
            yield Case(f"{N} entry {k} index -> reserved 0", coded(sym), refuse((N, "reserved zero")))
        sym = symbols.copy()
        sym[-1] = 0
        yield Case(f"{N} last entry index -> reserved 0", coded(sym),
                   refuse((N, "reserved zero"), (N, "filler")))
        for k in rng.choice(fillers, min(2, fillers.size), replace=False):   # a filler turned into a weight
            sym = symbols.copy()
            sym[k] = 1 + rng.integers(nc - 1)
            yield Case(f"{N} filler {k} -> index {sym[k]}", coded(sym), None)
            gap = gaps.copy()
            gap[k] = rng.integers(span - 1)
            yield Case(f"{N} filler {k} gap {gap[k]}", coded(symbols, gap), refuse((N, "reserved zero")))
        room = numel - 1 - last_pos                        # free positions after the last entry
        movable = kept[(gaps[kept] > 0) | (room > 0)]
        for k in rng.choice(movable, 4, replace=False):     # a weight moved within the layer
            gap = gaps.copy()
            gap[k] += 1 if gap[k] == 0 else -1
            yield Case(f"{N} entry {k} gap {gaps[k]} -> {gap[k]}", coded(symbols, gap), None)
        gap = gaps.copy()
        gap[-1] += numel - last_pos                        # the last entry lands on position numel
        yield Case(f"{N} last gap {gap[-1]} (past the end)", coded(symbols, gap),
                   refuse((N, "past the end"), (N, "n_gap_symbols", "index_bits")))
        for k in rng.choice(kept, 2, replace=False):        # a gap wider than index_bits
            gap = gaps.copy()
            gap[k] = span + rng.integers(3)
            yield Case(f"{N} entry {k} gap {gap[k]} >= 2**{ib}", coded(symbols, gap),
                       refuse((N, "n_gap_symbols", "index_bits")))
        if room:                                           # one more weight after the last one
            g = int(rng.integers(min(room, span)))
            yield Case(f"{N} one entry more (gap {g})", coded(np.append(symbols, 1), np.append(gaps, g)), None)
        for what in ("weight", "gap"):                     # stream bytes cut / extended / padding bit set
            stream, field = f"{what}_stream", f"{what}_stream_bits"
            raw, bits = layer[stream], layer[field]
            expect = refuse((N, f"{what} stream"), (N, field))
            yield Case(f"{N} {what} stream one byte short",
                       s.layer_edit(i, **{stream: raw[:-1], field: min(bits, 8 * len(raw) - 8)}), expect)
            yield Case(f"{N} {what} stream one byte long",
                       s.layer_edit(i, **{stream: raw + b"\0", field: bits + 8}), expect)
            if bits % 8:
                yield Case(f"{N} {what} stream padding bit",
                           s.layer_edit(i, **{stream: raw[:-1] + bytes([raw[-1] | 1])}),
                           refuse((N, f"padding bits after its {what} stream")))


FAMILIES = (table_counts, codebooks, shapes_and_names, header_and_framing, floats, code_length_tables, streams)


@pytest.fixture(scope="module")
def shipped() -> dict[str, Shipped]:
    out = {}
    for arch in ARCHS:
        blob = verified_path(f"zoo/{arch}.dc").read_bytes()
        fields = walk(blob)
        out[arch] = Shipped(arch, blob, fields, [decode_streams(layer) for layer in fields["layers"]])
    return out


def cases(s: Shipped, family) -> list[Case]:
    rng = np.random.default_rng([SEED, ARCHS.index(s.arch), FAMILIES.index(family)])
    return list(family(s, rng))


def blob_of(case: Case) -> bytes:
    if "raw" in case.fields:                         # a cut file: the body as given, a fresh CRC
        return case.fields["raw"] + struct.pack("<I", zlib.crc32(case.fields["raw"]))
    return build(case.fields)


def assert_same(a: SharedModel, b: SharedModel):
    assert a.arch == b.arch and list(a.layers) == list(b.layers) and list(a.others) == list(b.others)
    for n, layer in a.layers.items():
        other = b.layers[n]
        assert np.array_equal(layer.index, other.index)
        assert layer.codebook.tobytes() == other.codebook.tobytes()
        assert (layer.n_bits, layer.reserves_zero) == (other.n_bits, other.reserves_zero)
    for n, t in a.others.items():
        assert t.tobytes() == b.others[n].tobytes()


def outcome(path, case: Case) -> str | None:
    """None if the reader did what the case expects, else what went wrong."""
    blob = blob_of(case)
    path.write_bytes(blob)
    if case.oracle and writer_would_write(case.fields, blob):
        case = Case(case.label, case.fields, None)
    try:
        model = read_shared(path)
    except CompressedFileError as err:
        message = str(err)
        if case.refuse is None:
            return f"refused a consistent file: {message}"
        if str(path) not in message or err.__cause__ is not None or not (err.__suppress_context__
                                                                        or err.__context__ is None):
            return f"unclear error: {message!r}"
        if not any(all(word in message for word in alt) for alt in case.refuse):
            return f"message names none of {case.refuse}: {message}"
        return None
    except Exception as err:                           # noqa: BLE001 - what the test is looking for
        return f"{type(err).__name__} escaped: {err}"
    if case.refuse is not None:
        return "loaded"
    expected = naive_model(case.fields)
    assert_same(model, expected)                       # the model the forged fields describe …
    if not writer_would_write(case.fields, blob, expected):   # … that the writer writes as these bytes
        return "loaded, but the writer would write other bytes for it"
    return None


# ----------------------------------------------------------------- tests
def test_walker_round_trips_the_shipped_files(shipped):
    for s in shipped.values():
        assert build(s.fields) == s.blob
        assert_same(naive_model(s.fields), read_shared(verified_path(f"zoo/{s.arch}.dc")))
        f = copy.deepcopy(s.fields)
        for layer, (symbols, gaps) in zip(f["layers"], s.streams):
            encode_streams(layer, symbols, gaps)       # re-encoding unchanged streams changes nothing
        assert build(f) == s.blob


@pytest.mark.parametrize("family", FAMILIES, ids=lambda fam: fam.__name__)
@pytest.mark.parametrize("arch", ARCHS)
def test_mutations_are_refused_unless_consistent(tmp_path, shipped, arch, family):
    path = tmp_path / f"{arch}.dc"
    failures = []
    for case in cases(shipped[arch], family):
        assert blob_of(case) != shipped[arch].blob, f"{case.label}: not a mutation"
        problem = outcome(path, case)
        if problem:
            failures.append(f"{case.label}: {problem}")
    assert not failures, f"{len(failures)} failures, e.g.\n" + "\n".join(failures[:10])


def test_mutation_set_is_large_and_mixed(shipped):
    kinds = Counter("oracle" if case.oracle else "load" if case.refuse is None else "refuse"
                    for arch in ARCHS for fam in FAMILIES for case in cases(shipped[arch], fam))
    assert sum(kinds.values()) >= 1000 and kinds["refuse"] > 5 * kinds["load"] > 0, kinds


@pytest.mark.parametrize("arch", ARCHS)
def test_byte_flips_with_recomputed_crc_are_clear_errors_or_load(tmp_path, shipped, arch):
    """Random bytes XOR-ed (1 to 3 per file; every other file within the header, table and first
    sections) before the checksum, which is recomputed: a CompressedFileError or a load, and a
    load is a file the writer writes. Many flips in a stream or a float do load — a changed
    weight index or value is a valid file too, which only the checksum can tell apart."""
    body = shipped[arch].blob[:-4]
    table_end = 14 + struct.unpack_from("<I", body, 10)[0]
    rng = np.random.default_rng([SEED, ARCHS.index(arch), 99])
    path = tmp_path / "flip.dc"
    outcomes, problems = Counter(), []
    for trial in range(100):
        damaged = bytearray(body)
        for at in rng.choice(table_end + 64 if trial % 2 else len(body), size=1 + trial % 3, replace=False):
            damaged[at] ^= int(rng.integers(1, 256))
        blob = bytes(damaged) + struct.pack("<I", zlib.crc32(damaged))
        path.write_bytes(blob)
        try:
            read_shared(path)
        except CompressedFileError as err:
            assert str(path) in str(err) and err.__cause__ is None
            outcomes["refused"] += 1
            continue
        except Exception as err:                       # noqa: BLE001 - what the test is looking for
            problems.append(f"{type(err).__name__} escaped: {err}")
            continue
        outcomes["loaded"] += 1
        if not writer_would_write(walk(blob), blob):
            problems.append(f"trial {trial} loaded a file the writer would not write")
    assert not problems, problems[:5]
    assert outcomes["refused"] > outcomes["loaded"] > 0, outcomes
