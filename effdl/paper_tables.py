"""Paper-table calculator — chapter 4, "Huffman coding and Deep Compression".

Recomputes the storage columns of Han, Mao & Dally, "Deep Compression", ICLR
2016, Tables 2–5 (LeNet-300-100, LeNet-5, AlexNet, VGG-16) from each layer's
*inputs* as the paper lists them: density after pruning, weight bits and index
bits after pruning + quantization (P+Q), and the average bits after Huffman
coding (P+Q+H). The per-layer numbers below are transcribed from those tables
(Han, Mao & Dally, ICLR 2016, Tables 1–5) and labelled with their table; the weight counts
are exact, from :mod:`effdl.architectures`, and the table's rounded value is
kept beside them. Only the paper's *totals* are compared with what comes out.

The storage model of one layer (:func:`layer_storage`):

- stored entries = non-zeros ``d·n`` + expected filler zeros. Non-zero
  positions are modelled as independent Bernoulli(``d``) draws, which gives
  ``q / (1 − q)`` fillers per non-zero with ``q = (1 − d)**(2**index_bits)``
  (:func:`effdl.coding.expected_fillers_per_nonzero`; the tests check it
  against the exact encoder :func:`effdl.coding.relative_index_encode`);
- every entry, filler or not, stores a weight (cluster index) and an index:
  ``weight_bits + index_bits`` bits for P+Q, the paper's average bits after
  Huffman coding for P+Q+H;
- one codebook per layer: ``2**weight_bits`` centroids of ``codebook_bits``
  (32) bits — the ``k·b`` term of the paper's compression rate, §3;
- dense size: ``n`` fp32 weights. Biases are left out on both sides, as in
  the paper's per-layer tables.

``cr`` is the compressed size in percent of the dense size (the paper's
per-layer "Weights %" columns are of this kind); a network ratio is dense
bytes over compressed bytes ("35×").

>>> row = layer_storage(1000, 0.1, 5, 4)
>>> round(row["fillers_per_nonzero"], 4), round(row["cr"], 2)
(0.2274, 6.65)
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

from effdl.architectures import get_architecture, layer_table
from effdl.coding import expected_fillers_per_nonzero
from effdl.validation import Interval, Options, PositiveInt, validate_params

__all__ = ["PaperLayer", "PaperNetwork", "PAPER_TABLES", "SQUEEZENET_PAPER", "layer_storage",
           "network_table", "squeezenet_estimate", "paper_tables_report"]


@dataclass(frozen=True)
class PaperLayer:
    """One row of a Deep Compression per-layer table (all values as printed).

    Behind chapter 04, "Huffman coding and Deep Compression".
    """
    name: str
    table_weights: float          # the table's rounded "#Weights" (e.g. 35K)
    density: float                # "Weights% (P)": fraction kept after pruning
    weight_bits: int              # weight bits, P+Q
    index_bits: int               # index bits, P+Q
    huffman_weight_bits: float    # average weight bits, P+Q+H
    huffman_index_bits: float     # average index bits, P+Q+H


@dataclass(frozen=True)
class PaperNetwork:
    """One network of Deep Compression's tables: its per-layer rows and the paper's reported totals.

    Behind chapter 04, "Huffman coding and Deep Compression".
    """
    key: str                      # architecture key in effdl.architectures
    title: str
    source: str
    layers: tuple[PaperLayer, ...]
    reported: Mapping[str, Any]   # the paper's totals (None where the paper gives none)


_K, _M = 1e3, 1e6
_PAPER = "Han, Mao & Dally, Deep Compression, ICLR 2016"

# Rows: name, #weights, density, weight bits (P+Q), index bits (P+Q),
# weight bits (P+Q+H), index bits (P+Q+H).
PAPER_TABLES: Mapping[str, PaperNetwork] = MappingProxyType({n.key: n for n in [
    PaperNetwork("lenet300", "LeNet-300-100", f"{_PAPER}, Table 2", tuple(PaperLayer(*r) for r in [
        ("ip1", 235 * _K, 0.08, 6, 5, 4.4, 3.7),
        ("ip2", 30 * _K, 0.09, 6, 5, 4.4, 4.3),
        ("ip3", 1 * _K, 0.26, 6, 5, 4.3, 3.2),
    ]), {"weights": 266 * _K, "density": 0.08, "ratio_pruning": 12.0, "ratio_pq": None,
         "ratio_pqh": 40.0, "dense_kb": 1070, "compressed_kb": 27}),
    PaperNetwork("lenet5", "LeNet-5", f"{_PAPER}, Table 3", tuple(PaperLayer(*r) for r in [
        ("conv1", 0.5 * _K, 0.66, 8, 5, 7.2, 1.5),
        ("conv2", 25 * _K, 0.12, 8, 5, 7.2, 3.9),
        ("ip1", 400 * _K, 0.08, 5, 5, 4.5, 4.5),
        ("ip2", 5 * _K, 0.19, 5, 5, 5.2, 3.7),   # 5.2 > 5 bits as printed (see tests)
    ]), {"weights": 431 * _K, "density": 0.08, "ratio_pruning": None, "ratio_pq": None,
         "ratio_pqh": 39.0, "dense_kb": 1720, "compressed_kb": 44}),
    PaperNetwork("alexnet", "AlexNet", f"{_PAPER}, Table 4 (4-bit relative index)",
                 tuple(PaperLayer(*r) for r in [
        ("conv1", 35 * _K, 0.84, 8, 4, 6.3, 1.2),
        ("conv2", 307 * _K, 0.38, 8, 4, 5.5, 2.3),
        ("conv3", 885 * _K, 0.35, 8, 4, 5.1, 2.6),
        ("conv4", 663 * _K, 0.37, 8, 4, 5.2, 2.5),
        ("conv5", 442 * _K, 0.37, 8, 4, 5.6, 2.5),
        ("fc6", 38 * _M, 0.09, 5, 4, 3.9, 3.2),
        ("fc7", 17 * _M, 0.09, 5, 4, 3.6, 3.7),
        ("fc8", 4 * _M, 0.25, 5, 4, 4.0, 3.2),
    ]), {"weights": 61 * _M, "density": 0.11, "ratio_pruning": 9.0, "ratio_pq": 27.0,
         "ratio_pqh": 35.0, "dense_mb": 240, "compressed_mb": 6.9}),
    PaperNetwork("vgg16", "VGG-16", f"{_PAPER}, Table 5 (5-bit relative index)",
                 tuple(PaperLayer(*r) for r in [
        ("conv1_1", 2 * _K, 0.58, 8, 5, 6.8, 1.7),
        ("conv1_2", 37 * _K, 0.22, 8, 5, 6.5, 2.6),
        ("conv2_1", 74 * _K, 0.34, 8, 5, 5.6, 2.4),
        ("conv2_2", 148 * _K, 0.36, 8, 5, 5.9, 2.3),
        ("conv3_1", 295 * _K, 0.53, 8, 5, 4.8, 1.8),
        ("conv3_2", 590 * _K, 0.24, 8, 5, 4.6, 2.9),
        ("conv3_3", 590 * _K, 0.42, 8, 5, 4.6, 2.2),
        ("conv4_1", 1 * _M, 0.32, 8, 5, 4.6, 2.6),
        ("conv4_2", 2 * _M, 0.27, 8, 5, 4.2, 2.9),
        ("conv4_3", 2 * _M, 0.34, 8, 5, 4.4, 2.5),
        ("conv5_1", 2 * _M, 0.35, 8, 5, 4.7, 2.5),
        ("conv5_2", 2 * _M, 0.29, 8, 5, 4.6, 2.7),
        ("conv5_3", 2 * _M, 0.36, 8, 5, 4.6, 2.3),
        ("fc6", 103 * _M, 0.04, 5, 5, 3.6, 3.5),
        ("fc7", 17 * _M, 0.04, 5, 5, 4.0, 4.3),
        ("fc8", 4 * _M, 0.23, 5, 5, 4.0, 3.4),
    ]), {"weights": 138 * _M, "density": 0.075, "ratio_pruning": 13.0, "ratio_pq": 31.0,
         "ratio_pqh": 49.0, "dense_mb": 552, "compressed_mb": 11.3}),
]})

# Iandola et al., SqueezeNet, 2016, Table 2: totals only, no per-layer table.
# Both ratios are against AlexNet's 240 MB, not against SqueezeNet's own 4.8 MB.
SQUEEZENET_PAPER: Mapping[str, Any] = MappingProxyType({
    "dense_mb": 4.8,
    "8bit": {"compressed_mb": 0.66, "ratio_vs_alexnet": 363.0, "weight_bits": 8, "sparsity": 0.33},
    "6bit": {"compressed_mb": 0.47, "ratio_vs_alexnet": 510.0, "weight_bits": 6, "sparsity": None},
    "alexnet_dense_mb": 240.0,
})


DENSITY = Interval(float, 0, 1, closed="right")
FIELD_BITS = Interval(int, 1, 16)                                   # a cluster index or a relative index
HUFFMAN_BITS = Interval(float, 0, 64, closed="right", optional=True)  # average bits after Huffman coding


@validate_params(weights=PositiveInt(), density=DENSITY, weight_bits=FIELD_BITS, index_bits=FIELD_BITS,
                 huffman_weight_bits=HUFFMAN_BITS, huffman_index_bits=HUFFMAN_BITS, codebook_bits=PositiveInt())
def layer_storage(weights: int, density: float, weight_bits: int, index_bits: int, *,
                  huffman_weight_bits: float | None = None,
                  huffman_index_bits: float | None = None,
                  codebook_bits: int = 32) -> dict[str, float]:
    """Expected storage of one layer in Deep Compression's format.

    Parameters
    ----------
    weights : int >= 1
        Number of weights of the dense layer.
    density : float in (0, 1]
        Fraction of weights kept after pruning.
    weight_bits : int in [1, 16]
        Bits of a cluster index; the codebook has ``2**weight_bits`` entries.
    index_bits : int in [1, 16]
        Width of the relative index; sets the filler overhead.
    huffman_weight_bits, huffman_index_bits : float > 0, optional
        Average bits per stored weight / index after Huffman coding. When
        given they replace ``weight_bits`` / ``index_bits`` in the entry cost
        (not in the codebook size or the filler rate).
    codebook_bits : int >= 1, default 32
        Bits of one codebook entry (fp32 centroids).

    Returns
    -------
    dict
        ``nonzeros``, ``fillers_per_nonzero``, ``fillers``, ``entries``,
        ``weight_bits_total``, ``index_bits_total``, ``codebook_bits_total``,
        ``total_bytes``, ``dense_bytes`` (fp32), ``cr`` (percent of dense) and
        ``ratio`` (dense / compressed). Counts are expectations (floats).

    Behind chapter 04, "Huffman coding and Deep Compression".
    """
    bits_w = weight_bits if huffman_weight_bits is None else huffman_weight_bits
    bits_i = index_bits if huffman_index_bits is None else huffman_index_bits

    nonzeros = density * weights
    per_nonzero = expected_fillers_per_nonzero(density, index_bits)   # q / (1 − q)
    fillers = nonzeros * per_nonzero
    entries = nonzeros + fillers                     # fillers pay a weight and an index too
    weight_total = entries * bits_w
    index_total = entries * bits_i
    codebook_total = (1 << weight_bits) * codebook_bits
    total_bytes = (weight_total + index_total + codebook_total) / 8
    dense_bytes = 4.0 * weights                      # fp32
    return {"nonzeros": nonzeros, "fillers_per_nonzero": per_nonzero, "fillers": fillers,
            "entries": entries, "weight_bits_total": weight_total, "index_bits_total": index_total,
            "codebook_bits_total": float(codebook_total), "total_bytes": total_bytes,
            "dense_bytes": dense_bytes, "cr": 100.0 * total_bytes / dense_bytes,
            "ratio": dense_bytes / total_bytes}


def _exact_weights(key: str) -> dict[str, int]:
    return {row.name: row.weights for row in layer_table(get_architecture(key))}


@validate_params(name=Options(PAPER_TABLES))
def network_table(name: str) -> dict[str, Any]:
    """Per-layer and total storage of one network of Deep Compression Tables 2–5.

    Parameters
    ----------
    name : {"lenet300", "lenet5", "alexnet", "vgg16"}

    Returns
    -------
    dict
        ``"layers"``: ``{layer: row}``, each row with the paper's inputs, the
        exact and the table's weight count, ``fillers_per_nonzero``, and
        ``cr_pq`` / ``cr_pqh`` (percent of dense fp32), ``bytes_pq`` /
        ``bytes_pqh``. ``"total"``: weights, density, dense bytes,
        ``ratio_pruning`` (weights / non-zeros), ``ratio_pq``, ``ratio_pqh``.
        ``"paper"``: the paper's reported totals, for comparison.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    net = PAPER_TABLES[name]
    exact = _exact_weights(net.key)
    layers: dict[str, dict[str, Any]] = {}
    dense = nonzeros = pq = pqh = 0.0
    for row in net.layers:
        n = exact[row.name]
        a = layer_storage(n, row.density, row.weight_bits, row.index_bits)
        h = layer_storage(n, row.density, row.weight_bits, row.index_bits,
                          huffman_weight_bits=row.huffman_weight_bits,
                          huffman_index_bits=row.huffman_index_bits)
        layers[row.name] = {
            "weights": n, "table_weights": row.table_weights, "density": row.density,
            "weight_bits": row.weight_bits, "index_bits": row.index_bits,
            "huffman_weight_bits": row.huffman_weight_bits,
            "huffman_index_bits": row.huffman_index_bits,
            "fillers_per_nonzero": a["fillers_per_nonzero"],
            "bytes_pq": a["total_bytes"], "bytes_pqh": h["total_bytes"],
            "cr_pq": a["cr"], "cr_pqh": h["cr"],
        }
        dense += a["dense_bytes"]
        nonzeros += a["nonzeros"]
        pq += a["total_bytes"]
        pqh += h["total_bytes"]
    weights = sum(exact[row.name] for row in net.layers)
    return {"title": net.title, "source": net.source, "layers": layers,
            "total": {"weights": weights, "density": nonzeros / weights, "dense_bytes": dense,
                      "bytes_pq": pq, "bytes_pqh": pqh, "ratio_pruning": weights / nonzeros,
                      "ratio_pq": dense / pq, "ratio_pqh": dense / pqh},
            "paper": dict(net.reported)}


@validate_params(density=DENSITY, weight_bits=FIELD_BITS, index_bits=FIELD_BITS,
                 huffman_weight_bits=HUFFMAN_BITS, huffman_index_bits=HUFFMAN_BITS)
def squeezenet_estimate(density: float = 0.67, weight_bits: int = 8, index_bits: int = 4, *,
                        huffman_weight_bits: float | None = None,
                        huffman_index_bits: float | None = None) -> dict[str, Any]:
    """Deep Compression storage of SqueezeNet 1.0 with the same settings in every layer.

    An *assumption*, not the paper's recipe: the SqueezeNet paper gives only
    totals (4.8 MB → 0.66 MB at 8 bits and 33 % sparsity, 0.47 MB at 6 bits),
    so every conv layer here gets the same ``density`` (default 0.67, i.e.
    33 % sparsity), ``weight_bits`` (8) and ``index_bits`` (4, AlexNet's
    width in Table 4), and no Huffman coding unless average bits are given.
    Weight counts are the exact per-layer counts of
    ``get_architecture("squeezenet")`` (biases left out, as in the tables).

    Returns
    -------
    dict
        ``settings``; ``weights``; ``dense_mb`` and ``compressed_mb`` (10**6
        bytes); ``ratio`` (own dense / compressed); ``ratio_vs_alexnet``
        (the paper's basis: AlexNet's 240 MB / compressed); ``paper``.

    Taught in chapter 04, "Huffman coding and Deep Compression".
    """
    counts = list(_exact_weights("squeezenet").values())      # 26 conv layers, no FC
    rows = [layer_storage(n, density, weight_bits, index_bits,
                          huffman_weight_bits=huffman_weight_bits,
                          huffman_index_bits=huffman_index_bits) for n in counts]
    dense = sum(r["dense_bytes"] for r in rows)
    total = sum(r["total_bytes"] for r in rows)
    return {"settings": {"density": density, "weight_bits": weight_bits, "index_bits": index_bits,
                         "huffman_weight_bits": huffman_weight_bits,
                         "huffman_index_bits": huffman_index_bits, "layers": len(rows)},
            "weights": sum(counts),
            "dense_mb": dense / 1e6, "compressed_mb": total / 1e6, "ratio": dense / total,
            "ratio_vs_alexnet": SQUEEZENET_PAPER["alexnet_dense_mb"] * 1e6 / total,
            "paper": {k: (dict(v) if isinstance(v, Mapping) else v)
                      for k, v in SQUEEZENET_PAPER.items()}}


@validate_params()
def paper_tables_report() -> dict[str, Any]:
    """Chapter 4's headline numbers, JSON-able.

    ``{"alexnet": {"layers": {"conv1": {"cr_pq": %, "cr_pqh": %}, …},
    "total": {"ratio_pq": …, "ratio_pqh": …}, "paper": {…}}, "vgg16": …,
    "lenet300": …, "lenet5": …, "squeezenet": …}``. Percentages and ratios
    are rounded to 2 decimals.

    Behind chapter 04, "Huffman coding and Deep Compression".
    """
    out: dict[str, Any] = {}
    for key in ("alexnet", "vgg16", "lenet300", "lenet5"):
        t = network_table(key)
        out[key] = {
            "layers": {name: {"cr_pq": round(r["cr_pq"], 2), "cr_pqh": round(r["cr_pqh"], 2)}
                       for name, r in t["layers"].items()},
            "total": {"ratio_pq": round(t["total"]["ratio_pq"], 2),
                      "ratio_pqh": round(t["total"]["ratio_pqh"], 2),
                      "ratio_pruning": round(t["total"]["ratio_pruning"], 2),
                      "density": round(t["total"]["density"], 4)},
            "paper": {k: v for k, v in t["paper"].items()
                      if k in ("ratio_pruning", "ratio_pq", "ratio_pqh", "density")},
        }
    sq = squeezenet_estimate()
    out["squeezenet"] = {"settings": sq["settings"], "compressed_mb": round(sq["compressed_mb"], 3),
                         "ratio": round(sq["ratio"], 2),
                         "ratio_vs_alexnet": round(sq["ratio_vs_alexnet"], 1),
                         "paper": {"compressed_mb": 0.66, "ratio_vs_alexnet": 363.0}}
    return out
