"""SCALE-Sim topology files: a network as a CSV of conv layers (or of GEMMs), read into :class:`Gemm` s.

Part of :mod:`effdl.hardware.systolic` (chapter 9). The conv format has the
header ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,
Channels, Num Filter, Strides`` (one trailing comma allowed, as SCALE-Sim
writes it); the GEMM format ``Layer, M, N, K``. A layer whose name contains
``DP`` is depthwise, as in SCALE-Sim: one single-channel convolution per
channel (``count`` = channels). Every error names the file's line.
"""
from __future__ import annotations

from pathlib import Path

from effdl.hardware.systolic.config import Gemm, conv_gemm
from effdl.validation import Instance, PositiveInt, validate_params

CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                "Num Filter", "Strides")
GEMM_COLUMNS = ("Layer", "M", "N", "K")


def _cells(line: str) -> list[str]:
    cells = [c.strip() for c in line.split(",")]
    return cells[:-1] if cells and cells[-1] == "" else cells


def _int(where: str, column: str, text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"read_topology: {where}: {column} must be an integer; got {text!r}.") from None
    if value < 1:
        raise ValueError(f"read_topology: {where}: {column} must be a positive integer; got {value}.")
    return value


@validate_params(path=Instance((str, Path), "a path to a CSV file"), batch_size=PositiveInt())
def read_topology(path, *, batch_size: int = 1) -> list[Gemm]:
    """The layers of a SCALE-Sim topology CSV as GEMMs (convs by im2col, :func:`conv_gemm`).

    Behind chapter 09, "The roofline and the TPU".
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_topology: path must be an existing file; got {str(path)!r}.")
    lines = [(i + 1, line) for i, line in enumerate(path.read_text().splitlines()) if line.strip()]
    if not lines:
        raise ValueError(f"read_topology: {path} must have a header line; got an empty file.")
    header = [h.lower() for h in _cells(lines[0][1])]
    gemm_format = header[:4] == [c.lower() for c in GEMM_COLUMNS]
    columns = GEMM_COLUMNS if gemm_format else CONV_COLUMNS
    missing = [c for c in columns if c.lower() not in header]
    if missing:
        raise ValueError(f"read_topology: {path} line {lines[0][0]}: the header must name the columns "
                         f"{list(CONV_COLUMNS)} (or {list(GEMM_COLUMNS)}); missing {missing}.")
    at = {c: header.index(c.lower()) for c in columns}
    gemms = []
    for number, line in lines[1:]:
        cells = _cells(line)
        where = f"{path} line {number}"
        if len(cells) < len(header):
            raise ValueError(f"read_topology: {where}: a row must have {len(header)} values; got {len(cells)}.")
        name = cells[at[columns[0]]]
        v = {c: _int(where, c, cells[at[c]]) for c in columns[1:]}
        if gemm_format:
            gemms.append(Gemm(name=name, M=batch_size * v["M"], K=v["K"], N=v["N"]))
            continue
        depthwise = "DP" in name
        if v["Filter Height"] > v["IFMAP Height"] or v["Filter Width"] > v["IFMAP Width"]:
            raise ValueError(f"read_topology: {where}: the filter must fit in the IFMAP; got a "
                             f"{v['Filter Height']}×{v['Filter Width']} filter on a "
                             f"{v['IFMAP Height']}×{v['IFMAP Width']} input.")
        g = conv_gemm(name, ifmap_h=v["IFMAP Height"], ifmap_w=v["IFMAP Width"], filter_h=v["Filter Height"],
                      filter_w=v["Filter Width"], channels=1 if depthwise else v["Channels"],
                      n_filters=v["Num Filter"], stride=v["Strides"], batch_size=batch_size)
        gemms.append(Gemm(name=name, M=g.M, K=g.K, N=g.N, count=v["Channels"]) if depthwise else g)
    if not gemms:
        raise ValueError(f"read_topology: {path} must list at least one layer; got only a header.")
    return gemms


__all__ = ["CONV_COLUMNS", "GEMM_COLUMNS", "read_topology"]
