"""Declared argument constraints: each public function states what it accepts, next to its definition.

After scikit-learn's ``utils/_param_validation.py``. A public function is
decorated with :func:`validate_params`, one constraint per parameter::

    @validate_params(weight=Tensor(finite=True), sparsity=Interval(float, 0, 1, closed="left"))
    def magnitude_mask(weight, sparsity): ...

On every call the arguments are checked once, in signature order, before the
body runs; a bad one raises ``TypeError`` (wrong type) or ``ValueError`` (wrong
value) with one message template that names the function, the parameter and
the value: ``"magnitude_mask: sparsity must be in [0, 1); got 1.5."``. The
checked (converted) values are what the body receives: a list becomes a
tensor, a NumPy integer an ``int``; private cores (``_name``) assume clean
input and are never checked. A public function called from inside another
one checks its own arguments too, so that it receives converted values
whoever calls it (the checks are cheap next to the work: type tests and one
``isfinite`` pass over a tensor).

Every constraint can also *generate* values it refuses (:meth:`Constraint.invalid_values`);
``tests/test_bad_input.py`` feeds them to every public function's declared
parameters, and fails when a public function declares nothing.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable as _Callable
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from ._validate import _fail, check_bool, check_choice, context

class Shown(str):
    """A description shown as is in ``got …`` (not quoted like a string value)."""

    def __repr__(self) -> str:
        return str(self)


class Constraint:
    """What one parameter accepts. ``check`` returns the (converted) value or raises."""

    optional = False

    def check(self, name: str, value: Any) -> Any:
        raise NotImplementedError

    def invalid_values(self) -> list[tuple[Any, type]]:
        """Values this constraint refuses, each with the exception it must raise."""
        return []

    def describe(self) -> str:
        return type(self).__name__


class Interval(Constraint):
    """A real (``float``) or integer (``int``) number in an interval; a bool is not a number.

    ``closed``: "both", "left", "right" or "neither"; ``lo``/``hi`` may be None (unbounded).
    """

    def __init__(self, kind: type, lo: float | None, hi: float | None, *, closed: str = "both",
                 optional: bool = False):
        if kind not in (int, float):
            raise ValueError(f"kind must be int or float; got {kind!r}.")
        check_choice("closed", closed, ("both", "left", "right", "neither"))
        self.kind, self.lo, self.hi, self.closed, self.optional = kind, lo, hi, closed, optional

    def _text(self) -> str:
        left = "[" if self.closed in ("both", "left") else "("
        right = "]" if self.closed in ("both", "right") else ")"
        lo = "-inf" if self.lo is None else self.lo
        hi = "inf" if self.hi is None else self.hi
        noun = "an integer" if self.kind is int else "a real number"
        return f"{noun} in {left}{lo}, {hi}{right}"

    def describe(self) -> str:
        return self._text() + (" or None" if self.optional else "")

    def check(self, name, value):
        if value is None and self.optional:
            return None
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
                self.kind is int and not isinstance(value, numbers.Integral)):
            _fail(TypeError, name, self.describe(), value)
        value = self.kind(value)
        if self.kind is float and not math.isfinite(value):
            _fail(ValueError, name, "finite, " + self._text(), value)
        lo_bad = self.lo is not None and (value < self.lo if self.closed in ("both", "left") else value <= self.lo)
        hi_bad = self.hi is not None and (value > self.hi if self.closed in ("both", "right") else value >= self.hi)
        if lo_bad or hi_bad:
            _fail(ValueError, name, self._text(), value)
        return value

    def invalid_values(self):
        bad = [("3", TypeError), (True, TypeError), ([1], TypeError)]
        if not self.optional:
            bad.append((None, TypeError))
        if self.kind is int:
            bad.append((2.5, TypeError))
        else:
            bad += [(float("nan"), ValueError), (float("inf"), ValueError)]
        if self.lo is not None:
            below = self.lo - 1 if self.kind is int else self.lo - 1e-3 * max(1.0, abs(self.lo))
            bad.append((self.kind(below) if self.kind is int else below, ValueError))
            if self.closed in ("right", "neither"):
                bad.append((self.kind(self.lo), ValueError))
        if self.hi is not None:
            above = self.hi + 1 if self.kind is int else self.hi + 1e-3 * max(1.0, abs(self.hi))
            bad.append((self.kind(above) if self.kind is int else above, ValueError))
            if self.closed in ("left", "neither"):
                bad.append((self.kind(self.hi), ValueError))
        return bad


class Options(Constraint):
    """One of a fixed set of values (strings, or other hashables such as ints).

    ``options`` may be a zero-argument callable returning them, for a registry
    that fills up after the function is defined.
    """

    def __init__(self, options, *, optional: bool = False):
        self._options, self.optional = (options if callable(options) else tuple(options)), optional

    @property
    def options(self) -> tuple:
        return tuple(self._options()) if callable(self._options) else self._options

    def describe(self) -> str:
        return f"one of {list(self.options)}" + (" or None" if self.optional else "")

    def check(self, name, value):
        if value is None and self.optional:
            return None
        if any(isinstance(o, str) for o in self.options) and not isinstance(value, str):
            _fail(TypeError, name, f"a string, {self.describe()}", value)
        integers = all(isinstance(o, numbers.Integral) and not isinstance(o, bool) for o in self.options)
        if integers and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):   # 2.0 is not 2
            _fail(TypeError, name, f"an integer, {self.describe()}", value)
        if isinstance(value, bool) and not any(isinstance(o, bool) for o in self.options):
            _fail(TypeError, name, self.describe(), value)
        try:
            ok = value in self.options
        except TypeError:
            ok = False
        if not ok:
            _fail(ValueError, name, self.describe(), value)
        return value

    def invalid_values(self):
        strings = any(isinstance(o, str) for o in self.options)
        integers = all(isinstance(o, numbers.Integral) and not isinstance(o, bool) for o in self.options)
        if integers:
            return [(max(self.options) + 1, ValueError), (float(self.options[0]), TypeError), ("2", TypeError),
                    (True, TypeError)] + ([] if self.optional else [(None, TypeError)])
        bad = [("no-such-option", ValueError)] if strings else [(object(), ValueError)]
        if strings:
            bad.append((3, TypeError))
        if not self.optional:
            bad.append((None, TypeError if strings else ValueError))
        return bad


class Bool(Constraint):
    """``True`` or ``False`` (not 0/1, not a string)."""

    def __init__(self, *, optional: bool = False):
        self.optional = optional

    def describe(self):
        return "True or False" + (" or None" if self.optional else "")

    def check(self, name, value):
        if value is None and self.optional:
            return None
        return check_bool(name, value)

    def invalid_values(self):
        return [(1, TypeError), ("yes", TypeError)] + ([] if self.optional else [(None, TypeError)])


class Instance(Constraint):
    """An instance of ``types`` (described to the user as ``what``)."""

    def __init__(self, types, what: str, *, optional: bool = False):
        self.types, self.what, self.optional = types if isinstance(types, tuple) else (types,), what, optional

    def describe(self):
        return self.what + (" or None" if self.optional else "")

    def check(self, name, value):
        if value is None and self.optional:
            return None
        if not isinstance(value, self.types) or (isinstance(value, bool) and bool not in self.types):
            _fail(TypeError, name, self.describe(), value)
        return value

    def invalid_values(self):
        bad = [(v, TypeError) for v in ("not a valid value", 3.5, object()) if not isinstance(v, self.types)]
        return bad + ([] if self.optional else [(None, TypeError)])


class Tensor(Constraint):
    """A tensor (or an array / nested list of numbers, converted to one).

    ``finite``: no NaN or inf; ``dtype``: "float" (converted to ``torch.get_default_dtype()``
    unless already floating), "int", or None (any real dtype); ``ndim``: an int or a tuple of
    allowed ndims; ``nonempty``; ``convert=False``: only a ``torch.Tensor`` of the right dtype
    is accepted (nothing is converted).
    """

    def __init__(self, *, finite: bool = True, dtype: str | None = "float", ndim=None, nonempty: bool = True,
                 convert: bool = True, optional: bool = False):
        self.finite, self.dtype, self.nonempty, self.optional = finite, dtype, nonempty, optional
        self.convert = convert
        self.ndim = (ndim,) if isinstance(ndim, int) else ndim

    def describe(self):
        parts = ["a torch.Tensor" if not self.convert else "a tensor"]
        if self.dtype == "int":
            parts.append("of integers")
        elif self.dtype == "float" and not self.convert:
            parts.append("of floating-point numbers")
        if self.ndim:
            parts.append(f"with {' or '.join(map(str, self.ndim))} dimensions")
        if self.finite:
            parts.append("(finite: no NaN or inf)")
        return " ".join(parts) + (" or None" if self.optional else "")

    def check(self, name, value):
        if value is None and self.optional:
            return None
        if not isinstance(value, torch.Tensor):
            if not self.convert:
                _fail(TypeError, name, self.describe(), value)
            try:
                arr = np.asarray(value)
            except Exception:
                arr = None
            if arr is None or arr.dtype.kind not in "iuf" or isinstance(value, (bool, str)):
                _fail(TypeError, name, self.describe(), value)
            value = torch.as_tensor(arr)
        if value.dtype == torch.bool or value.is_complex():
            _fail(TypeError, name, self.describe(), value)
        if self.dtype == "int" and value.is_floating_point():
            _fail(TypeError, name, self.describe(), value)
        if self.dtype == "float" and not value.is_floating_point():
            if not self.convert:
                _fail(TypeError, name, self.describe(), value)
            value = value.to(torch.get_default_dtype())
        if self.ndim is not None and value.ndim not in self.ndim:
            _fail(ValueError, name, self.describe(), Shown(f"a tensor of shape {tuple(value.shape)}"))
        if self.nonempty and value.numel() == 0:
            _fail(ValueError, name, "non-empty", Shown(f"a tensor of shape {tuple(value.shape)}"))
        if self.finite and value.is_floating_point():
            bad = ~torch.isfinite(value.detach())
            if bool(bad.any()):
                where = tuple(int(i) for i in bad.nonzero()[0])
                _fail(ValueError, name, "finite (no NaN or inf)",
                      Shown(f"{float(value.detach()[bad].flatten()[0])!r} at index {where}"))
        return value

    def invalid_values(self):
        bad = [("text", TypeError), (torch.tensor([True, False]), TypeError)]
        if not self.convert:
            bad.append(([1.0, 2.0], TypeError))
            if self.dtype == "float":
                bad.append((torch.tensor([1, 2]), TypeError))
        if not self.optional:
            bad.append((None, TypeError))
        if self.finite and self.dtype != "int":
            shape = (2,) * (self.ndim[0] if self.ndim else 1)
            t = torch.ones(shape)
            t.view(-1)[0] = float("nan")
            bad.append((t, ValueError))
        dtype = torch.long if self.dtype == "int" else torch.get_default_dtype()   # right dtype, wrong shape
        if self.ndim:
            wrong = next(d for d in range(0, 6) if d not in self.ndim)
            bad.append((torch.ones((2,) * wrong, dtype=dtype), ValueError))
        if self.nonempty:
            shape = (0,) + (2,) * ((self.ndim[0] if self.ndim else 1) - 1)
            bad.append((torch.ones(shape, dtype=dtype), ValueError))
        return bad


class Array(Constraint):
    """Numbers a figure draws: an array, tensor or (nested) list/tuple of real numbers, returned
    as given (views keep their inputs' type). ``ndim``: an int or a tuple of allowed ndims;
    NaN is allowed (a figure may show a gap) unless ``finite``."""

    def __init__(self, *, ndim=None, finite: bool = False, nonempty: bool = True, optional: bool = False):
        self.ndim = (ndim,) if isinstance(ndim, int) else ndim
        self.finite, self.nonempty, self.optional = finite, nonempty, optional

    def describe(self):
        parts = ["an array of real numbers"]
        if self.ndim:
            parts.append(f"with {' or '.join(map(str, self.ndim))} dimensions")
        if self.finite:
            parts.append("(finite: no NaN or inf)")
        return " ".join(parts) + (" or None" if self.optional else "")

    def check(self, name, value):
        if value is None and self.optional:
            return None
        if isinstance(value, (str, bytes, bool, Mapping)) or value is None:
            _fail(TypeError, name, self.describe(), value)
        try:
            arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=float)
        except (TypeError, ValueError):
            _fail(TypeError, name, self.describe(), value)
        if self.ndim is not None and arr.ndim not in self.ndim:
            _fail(ValueError, name, self.describe(), Shown(f"an array of shape {arr.shape}"))
        if self.nonempty and arr.size == 0:
            _fail(ValueError, name, "non-empty", Shown(f"an array of shape {arr.shape}"))
        if self.finite and not np.isfinite(arr).all():
            _fail(ValueError, name, "finite (no NaN or inf)", Shown("an array with NaN or inf"))
        return value

    def invalid_values(self):
        bad = [("text", TypeError), ({"a": 1}, TypeError), ([["a", "b"]], TypeError)]
        if not self.optional:
            bad.append((None, TypeError))
        if self.ndim:
            wrong = next(d for d in range(0, 6) if d not in self.ndim)
            bad.append((np.ones((2,) * wrong), ValueError))
        if self.nonempty:
            bad.append((np.ones((0,) + (2,) * ((self.ndim[0] if self.ndim else 1) - 1)), ValueError))
        if self.finite:
            bad.append((np.full((2,) * (self.ndim[0] if self.ndim else 1), np.nan), ValueError))
        return bad


class ListOf(Constraint):
    """A list/tuple (any non-string iterable) whose items each satisfy ``item``; returns a list."""

    def __init__(self, item: Constraint, *, nonempty: bool = True, optional: bool = False):
        self.item, self.nonempty, self.optional = item, nonempty, optional

    def describe(self):
        return f"a list of {self.item.describe()}" + (" (non-empty)" if self.nonempty else "") + \
            (" or None" if self.optional else "")

    def check(self, name, value):
        if value is None and self.optional:
            return None
        if isinstance(value, (str, bytes, Mapping, torch.Tensor)) or not hasattr(value, "__iter__"):
            _fail(TypeError, name, self.describe(), value)
        items = list(value)
        if self.nonempty and not items:
            _fail(ValueError, name, self.describe(), value)
        return [self.item.check(f"{name}[{i}]", v) for i, v in enumerate(items)]

    def invalid_values(self):
        bad = [("abc", TypeError), (5, TypeError)]
        if self.nonempty:
            bad.append(([], ValueError))
        if not self.optional:
            bad.append((None, TypeError))
        bad += [([v], e) for v, e in self.item.invalid_values()[:2]]
        return bad


class OneOf(Constraint):
    """The first of several constraints that accepts the value (e.g. an int or a dict of ints)."""

    def __init__(self, *constraints: Constraint):
        self.constraints = constraints
        self.optional = any(c.optional for c in constraints)

    def describe(self):
        return " or ".join(c.describe() for c in self.constraints)

    def check(self, name, value):
        errors = []
        for c in self.constraints:
            try:
                return c.check(name, value)
            except (TypeError, ValueError) as err:
                errors.append(err)
        # a wrong value for the constraint whose type matched is more helpful than a type error
        exc = next((e for e in errors if isinstance(e, ValueError)), None)
        if exc is not None:
            raise exc
        _fail(TypeError, name, self.describe(), value)

    def invalid_values(self):
        accepts_none = False
        for c in self.constraints:
            try:
                c.check("x", None)
                accepts_none = True
            except (TypeError, ValueError):
                pass
        return [(object(), TypeError)] + ([] if accepts_none else [(None, TypeError)])


class Callable(Constraint):
    """A callable (a function, a class, an object with ``__call__``)."""

    def __init__(self, *, optional: bool = False):
        self.optional = optional

    def describe(self):
        return "a callable" + (" or None" if self.optional else "")

    def check(self, name, value):
        if value is None and self.optional:
            return None
        if not isinstance(value, _Callable):
            _fail(TypeError, name, self.describe(), value)
        return value

    def invalid_values(self):
        return [(3, TypeError)] + ([] if self.optional else [(None, TypeError)])




class Unchecked(Constraint):
    """Declared on purpose as unconstrained here, with the reason (e.g. checked by the body against
    another argument, or any object is fine)."""

    def __init__(self, reason: str):
        self.reason = reason

    def describe(self):
        return f"anything ({self.reason})"

    def check(self, name, value):
        return value


def _qualname(func) -> str:
    return func.__qualname__.replace(".<locals>", "")


def validate_params(**constraints: Constraint):
    """Decorate a public function with one :class:`Constraint` per parameter (every parameter but
    ``self``/``cls``; ``*args``/``**kwargs`` are not allowed)."""

    def decorate(func):
        sig = inspect.signature(func)
        params = [p for p in sig.parameters if p not in ("self", "cls")]
        kinds = {p.kind for p in sig.parameters.values()}
        if inspect.Parameter.VAR_POSITIONAL in kinds or inspect.Parameter.VAR_KEYWORD in kinds:
            raise TypeError(f"{func.__qualname__}: validate_params cannot check *args / **kwargs")
        missing, extra = set(params) - set(constraints), set(constraints) - set(params)
        if missing or extra:
            raise TypeError(f"{func.__qualname__}: constraints must name exactly its parameters; "
                            f"missing {sorted(missing)}, unknown {sorted(extra)}")
        for p, c in constraints.items():
            if not isinstance(c, Constraint):
                raise TypeError(f"{func.__qualname__}: constraint for {p} must be a Constraint; got {c!r}")
        label = _qualname(func)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            try:
                bound = sig.bind(*args, **kwargs)
            except TypeError as err:
                raise TypeError(f"{label}: {err}") from None
            bound.apply_defaults()
            outer, context.label = getattr(context, "label", None), label   # messages from here on name `label`
            try:
                for name in params:
                    bound.arguments[name] = constraints[name].check(name, bound.arguments[name])
                return func(*bound.args, **bound.kwargs)
            finally:
                context.label = outer

        wrapper.__effdl_constraints__ = dict(constraints)
        return wrapper

    return decorate


def check_part(func_name: str, constraint: Constraint, name: str, value: Any) -> Any:
    """Check a part of an argument (a dict's value, say ``sparsity['fc1.weight']``), or a class's
    constructor argument, with the same message template as the declared checks, naming ``func_name``."""
    before, context.label = getattr(context, "label", None), func_name
    try:
        return constraint.check(name, value)
    finally:
        context.label = before


def check_fields(obj, **constraints: Constraint) -> None:
    """Check a (frozen) dataclass's fields in ``__post_init__``, naming the class:
    ``"FloatFormat: bits must be …"``; converted values are stored back."""
    for field_name, constraint in constraints.items():
        value = check_part(type(obj).__name__, constraint, field_name, getattr(obj, field_name))
        object.__setattr__(obj, field_name, value)


def check_argument(func, name: str, value: Any) -> Any:
    """Check one argument of a decorated function against its declared constraint (the generated
    bad-input tests use this; it raises exactly what a call would)."""
    constraints = getattr(func, "__effdl_constraints__", None)
    if constraints is None:
        raise TypeError(f"{func!r} declares no constraints (decorate it with validate_params).")
    before, context.label = getattr(context, "label", None), _qualname(getattr(func, "__wrapped__", func))
    try:
        return constraints[name].check(name, value)
    finally:
        context.label = before


# Constraints many modules share.
def Module(*, optional: bool = False) -> Instance:
    """A ``torch.nn.Module``."""
    return Instance(torch.nn.Module, "a torch.nn.Module", optional=optional)


def Seed() -> Interval:
    """A non-negative integer seed."""
    return Interval(int, 0, None)


def PositiveInt(*, optional: bool = False) -> Interval:
    """An integer ≥ 1 (counts, batch sizes, repeats)."""
    return Interval(int, 1, None, optional=optional)


def Fraction(*, closed: str = "both") -> Interval:
    """A real number in [0, 1] (``closed`` as in :class:`Interval`)."""
    return Interval(float, 0, 1, closed=closed)


def Text(*, optional: bool = False) -> Instance:
    """A string (titles, labels, names)."""
    return Instance(str, "a string", optional=optional)


def Dict(*, optional: bool = False) -> Instance:
    """A mapping (results keyed by name)."""
    return Instance(Mapping, "a dict", optional=optional)


def Records(*, nonempty: bool = True, optional: bool = False) -> ListOf:
    """A list of dicts (table rows)."""
    return ListOf(Instance(Mapping, "a dict"), nonempty=nonempty, optional=optional)


__all__ = ["Constraint", "Interval", "Options", "Bool", "Instance", "Tensor", "ListOf", "OneOf", "Callable",
           "Unchecked", "Array", "Text", "Dict", "Records", "Module", "Seed", "PositiveInt", "Fraction", "Shown", "validate_params", "check_argument", "check_part", "check_fields"]
