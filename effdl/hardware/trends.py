"""Fifty years of microprocessor trend data: the end of Dennard scaling, with cited numbers.

Chapter 14 (hardware for training) shows why training moved to GPUs and
TPUs: transistor counts kept doubling, but from the mid-2000s clock
frequency, single-thread performance and power per chip stopped following
them, and the extra transistors went into more cores instead.

The data are Karl Rupp's *Microprocessor Trend Data*
(https://github.com/karlrupp/microprocessor-trend-data, folder ``50yrs/`` at
commit f2121ab2b83a156b114fe34e62e1edeca98e8e38, CC BY 4.0): "original data
up to the year 2010 collected and plotted by M. Horowitz, F. Labonte,
O. Shacham, K. Olukotun, L. Hammond, and C. Batten; new plot and data
collected for 2010-2021 by K. Rupp". Its five ``.dat`` files are merged,
values unchanged, into ``data/trends/microprocessor_trends.csv``
(``series,unit,year,value``; :func:`convert_rupp` does it). One point is one
processor; the year is fractional.

>>> t = load_trends()
>>> sorted(t)
['cores', 'frequency', 'power', 'single_thread', 'transistors']
>>> bool(t["transistors"].values.max() * 1e3 > 5e10)      # thousands of transistors: > 50 billion by 2021
True
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import DataError, verified_path
from ..validation import Instance, Interval, Options, check_part, validate_params

TRENDS_FILE = "trends/microprocessor_trends.csv"
SOURCE = ("K. Rupp, Microprocessor Trend Data (github.com/karlrupp/microprocessor-trend-data, CC BY 4.0); "
          "data to 2010 by M. Horowitz, F. Labonte, O. Shacham, K. Olukotun, L. Hammond and C. Batten")
# series -> (unit as stored, axis label, the .dat file of the original repository)
SERIES = {
    "transistors": ("thousands", "transistors (thousands)", "transistors.dat"),
    "single_thread": ("SpecINT x 1000", "single-thread performance (SpecINT × 10³)", "specint.dat"),
    "frequency": ("MHz", "frequency (MHz)", "frequency.dat"),
    "power": ("W", "typical power (W)", "watts.dat"),
    "cores": ("logical cores", "number of logical cores", "cores.dat"),
}
HEADER = ["series", "unit", "year", "value"]
YEARS = (1970.0, 2030.0)
YEAR = Interval(float, None, None)
PATH = Instance((str, Path), "a path (str or pathlib.Path)")


@dataclass(frozen=True)
class Series:
    """One trend: ``years`` (n,) and ``values`` (n,), sorted by year, in ``unit``.

    Behind chapter 14, "Hardware for training".
    """

    name: str
    unit: str
    label: str
    years: np.ndarray
    values: np.ndarray

    def __len__(self) -> int:
        return len(self.years)

    def window(self, start: float, end: float) -> Series:
        """The points with ``start <= year < end``."""
        start = check_part("Series.window", YEAR, "start", start)
        end = check_part("Series.window", YEAR, "end", end)
        _check_window("Series.window", start, end)
        keep = (self.years >= start) & (self.years < end)
        return Series(self.name, self.unit, self.label, self.years[keep], self.values[keep])


def _check_window(func: str, start: float, end: float) -> None:
    if end <= start:
        raise ValueError(f"{func}: end must be after start ({start}); got {end!r}.")


@validate_params(data_dir=Instance((str, Path), "a path (str or pathlib.Path)", optional=True))
def load_trends(*, data_dir: Path | str | None = None) -> dict[str, Series]:
    """The five trends from ``data/trends/microprocessor_trends.csv``, checked against ``data/MANIFEST``.

    Raises :class:`effdl.data.DataError` naming the file (and the line) when it
    is missing, altered, or — for a copy whose manifest was updated with it —
    malformed: a wrong header, an unknown series or unit, a year outside
    1970–2030, a value that is not a finite positive number, or a series
    with no points.

    Taught in chapter 14, "Hardware for training".
    """
    path = verified_path(TRENDS_FILE, data_dir=None if data_dir is None else Path(data_dir))
    return parse_trends(path.read_text(), source=str(path))


@validate_params(text=Instance(str, "the CSV text (a str)"), source=Instance(str, "a string"))
def parse_trends(text: str, *, source: str = "<text>") -> dict[str, Series]:
    """Parse and validate the CSV ``text`` (see :func:`load_trends`); ``source`` names it in errors.

    Behind chapter 14, "Hardware for training".
    """
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or rows[0] != HEADER:
        raise DataError(f"{source}: the header must be {','.join(HEADER)}; got {rows[0] if rows else 'nothing'!r}.")
    points: dict[str, list[tuple[float, float]]] = {name: [] for name in SERIES}
    for line_no, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != 4:
            raise DataError(f"{source}, line {line_no}: expected 4 fields ({','.join(HEADER)}); got {row!r}.")
        name, unit, year_s, value_s = row
        if name not in SERIES:
            raise DataError(f"{source}, line {line_no}: series must be one of {list(SERIES)}; got {name!r}.")
        if unit != SERIES[name][0]:
            raise DataError(f"{source}, line {line_no}: {name} must be in {SERIES[name][0]!r}; got {unit!r}.")
        try:
            year, value = float(year_s), float(value_s)
        except ValueError:
            raise DataError(f"{source}, line {line_no}: year and value must be numbers; "
                            f"got {year_s!r}, {value_s!r}.") from None
        if not YEARS[0] <= year <= YEARS[1]:
            raise DataError(f"{source}, line {line_no}: year must be in [{YEARS[0]:g}, {YEARS[1]:g}]; got {year!r}.")
        if not (math.isfinite(value) and value > 0):
            raise DataError(f"{source}, line {line_no}: value must be a finite positive number; got {value!r}.")
        points[name].append((year, value))
    out = {}
    for name, pts in points.items():
        if not pts:
            raise DataError(f"{source}: series {name!r} has no points.")
        arr = np.array(sorted(pts))                      # (n, 2): year, value
        out[name] = Series(name, SERIES[name][0], SERIES[name][1], arr[:, 0], arr[:, 1])
    return out


SERIES_ARG = Instance(Series, "an effdl.hardware.trends.Series")


@validate_params(series=SERIES_ARG, start=YEAR, end=YEAR)
def growth_per_year(series: Series, start: float, end: float) -> float:
    """Least-squares growth factor per year of ``series`` over ``start <= year < end``.

    Fits log2(value) = a + b · year to the points of the window and returns
    2^b (1.41 means +41 % a year, a doubling every two years).

    Taught in chapter 14, "Hardware for training".
    """
    _check_window("growth_per_year", start, end)
    w = series.window(start, end)
    if len(w) < 2 or np.ptp(w.years) == 0:
        raise ValueError(f"growth_per_year: the window [{start}, {end}) must hold points from at least two "
                         f"different years; got {len(w)} point(s) of {series.name}.")
    slope = np.polyfit(w.years, np.log2(w.values), 1)[0]   # doublings per year
    return float(2.0 ** slope)


@validate_params(series=SERIES_ARG, start=YEAR, end=YEAR)
def doubling_time(series: Series, start: float, end: float) -> float:
    """Years for ``series`` to double over the window (``math.inf`` if it does not grow).

    Taught in chapter 14, "Hardware for training".
    """
    _check_window("doubling_time", start, end)
    g = growth_per_year(series, start, end)
    return math.log(2) / math.log(g) if g > 1 else math.inf


@validate_params(folder=PATH)
def convert_rupp(folder: Path | str) -> str:
    """The CSV text of ``data/trends/`` made from the ``.dat`` files of Rupp's ``50yrs/`` folder.

    Each ``.dat`` line is ``year value`` (optionally ``# comment``); lines
    starting with ``#`` separate the original data from later additions and
    are skipped. Values are copied as written, not reformatted.

    Behind chapter 14, "Hardware for training".
    """
    folder = Path(folder)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for name, (unit, _, filename) in SERIES.items():
        path = folder / filename
        if not path.is_file():
            raise FileNotFoundError(f"convert_rupp: folder must hold Rupp's {filename}; {path} is missing.")
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                year, value = line.split()
                writer.writerow([name, unit, year, value])
    return out.getvalue()


@validate_params(name=Options(SERIES))
def series_label(name: str) -> str:
    """The axis label of series ``name`` (with its unit).

    Behind chapter 14, "Hardware for training".
    """
    return SERIES[name][1]
