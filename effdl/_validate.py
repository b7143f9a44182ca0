"""Argument checks shared by every public function.

One message template for the whole package (STYLE.md, after scikit-learn):
``"{name} must be …; got {value!r}."`` — a ``TypeError`` for a wrong type,
a ``ValueError`` for a wrong value. A bool is never accepted as a number.
"""
from __future__ import annotations

import numbers
import threading
from typing import Any, Iterable


# The public function being run (set by effdl.validation.validate_params), so that every message
# raised while it runs names it: "prune: sparsity must be …; got 1.5."
context = threading.local()


def _fail(exc: type, name: str, what: str, value: Any):
    label = getattr(context, "label", None)
    raise exc(f"{label + ': ' if label else ''}{name} must be {what}; got {value!r}.")


def check_int(name: str, value: Any, *, min: int | None = None, max: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer within [min, max]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        _fail(TypeError, name, "an integer", value)
    value = int(value)
    if (min is not None and value < min) or (max is not None and value > max):
        lo = "-inf" if min is None else min
        hi = "inf" if max is None else max
        _fail(ValueError, name, f"an integer in [{lo}, {hi}]", value)
    return value


def check_float(name: str, value: Any, *, min: float | None = None, max: float | None = None,
                min_open: bool = False, max_open: bool = False) -> float:
    """Return ``value`` as ``float`` if it is a finite real number within the bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        _fail(TypeError, name, "a real number", value)
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        _fail(ValueError, name, "finite", value)
    lo_bad = min is not None and (value <= min if min_open else value < min)
    hi_bad = max is not None and (value >= max if max_open else value > max)
    if lo_bad or hi_bad:
        lo = "-inf" if min is None else min
        hi = "inf" if max is None else max
        _fail(ValueError, name, f"in {'(' if min_open else '['}{lo}, {hi}{')' if max_open else ']'}", value)
    return value


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``."""
    choices = list(choices)
    if not isinstance(value, str) and any(isinstance(c, str) for c in choices):
        _fail(TypeError, name, f"a string, one of {choices}", value)
    if value not in choices:
        _fail(ValueError, name, f"one of {choices}", value)
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        _fail(TypeError, name, "True or False", value)
    return value


def check_type(name: str, value: Any, types: type | tuple, what: str) -> Any:
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        _fail(TypeError, name, what, value)
    return value


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)
