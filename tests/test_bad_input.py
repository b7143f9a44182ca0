"""Bad input, generated from the constraints each public function declares (effdl.validation).

For every public function decorated with ``validate_params``, every declared
parameter and every value its constraint refuses: the refusal is a
``TypeError``/``ValueError`` whose message names the function and the
parameter. Where the function can be called with only that argument (the
others have defaults), it is really called, so the check runs through the
decorator. A module in the declared-constraints regime fails the suite when a
public function declares nothing.
"""
from __future__ import annotations

import importlib
import inspect
import re

import pytest
import torch

from effdl import validation as V

# Every module of every layer declares its public functions' constraints, except these (still
# validating inline; each line goes when its module is converted).
PENDING: set[str] = set()
LAYERS_IN_SCOPE = ("base", "algorithms", "experiments", "views", "front")


def _in_scope() -> list[str]:
    from test_layering import MODULES, layer_of
    return sorted(m for m in MODULES if layer_of(m) in LAYERS_IN_SCOPE
                  and m not in ("effdl", "effdl._validate", "effdl.validation", "effdl.__main__"))


DECLARED = [m for m in _in_scope() if m not in PENDING]


def _public_functions(module_name: str):
    mod = importlib.import_module(module_name)
    for name, obj in vars(mod).items():
        if name.startswith("_") or not inspect.isfunction(obj):
            continue
        if getattr(obj, "__module__", None) != module_name:
            continue
        yield name, obj


def _cases():
    for module_name in DECLARED:
        for name, func in _public_functions(module_name):
            for param, constraint in getattr(func, "__effdl_constraints__", {}).items():
                for i, (value, exc) in enumerate(constraint.invalid_values()):
                    yield pytest.param(func, param, value, exc, id=f"{module_name}.{name}-{param}-{i}")


CASES = list(_cases())


@pytest.mark.parametrize("module_name", DECLARED)
def test_every_public_function_declares_its_constraints(module_name):
    missing = [name for name, func in _public_functions(module_name) if not hasattr(func, "__effdl_constraints__")]
    assert not missing, f"{module_name}: public functions without validate_params: {missing}"


def test_cases_were_generated():
    assert len(CASES) > 50


def test_pending_modules_exist():
    stale = PENDING - set(_in_scope())
    assert not stale, f"PENDING names modules that are gone: {sorted(stale)}"


@pytest.mark.parametrize("func,param,value,exc", CASES)
def test_declared_constraint_refuses_bad_value(func, param, value, exc):
    label = func.__wrapped__.__qualname__
    with pytest.raises(exc, match=rf"^{re.escape(label)}: {re.escape(param)}\b"):
        V.check_argument(func, param, value)
    sig = inspect.signature(func)
    others_default = all(p.default is not inspect.Parameter.empty
                         for n, p in sig.parameters.items() if n != param)
    if others_default:
        with pytest.raises(exc, match=rf"^{re.escape(label)}: {re.escape(param)}\b"):
            func(**{param: value})


# --------------------------------------------------------------- the mechanism itself
@V.validate_params(n=V.PositiveInt(), x=V.Tensor(ndim=1), mode=V.Options(("a", "b")))
def _demo(n, x, mode="a"):
    return _inner(x, n)


@V.validate_params(x=V.Tensor(), n=V.Interval(int, 5, None))
def _inner(x, n):
    return n


def test_a_nested_public_call_checks_its_own_arguments_and_names_itself():
    with pytest.raises(ValueError, match=r"^_inner: n must be an integer in \[5, inf\]; got 2\.$"):
        _demo(2, [1.0, 2.0])                 # _demo's n is fine (>= 1); _inner refuses it, by its own name
    assert _demo(7, [1.0, 2.0]) == 7
    with pytest.raises(ValueError, match=r"^_demo: mode must be one of"):   # the outer label is restored
        _demo(7, [1.0], "c")


def test_checked_values_are_converted():
    seen = {}

    @V.validate_params(x=V.Tensor(), k=V.Interval(int, 0, None))
    def f(x, k):
        seen.update(x=x, k=k)

    import numpy as np
    f([1, 2], np.int64(3))
    assert isinstance(seen["x"], torch.Tensor) and seen["x"].dtype == torch.float32
    assert type(seen["k"]) is int


def test_messages_name_function_parameter_and_value():
    with pytest.raises(TypeError, match=r"^_demo: n must be an integer in \[1, inf\]; got True\.$"):
        _demo(True, [1.0])
    with pytest.raises(ValueError, match=r"^_demo: x must be finite \(no NaN or inf\); got nan at index \(1,\)\.$"):
        _demo(1, [1.0, float("nan")])
    with pytest.raises(ValueError, match=r"^_demo: mode must be one of \['a', 'b'\]; got 'c'\.$"):
        _demo(1, [1.0], "c")
    with pytest.raises(TypeError, match=r"^_demo: missing a required argument: 'x'"):
        _demo(1)


def test_declarations_must_name_every_parameter():
    with pytest.raises(TypeError, match="missing \\['y'\\]"):
        @V.validate_params(x=V.Tensor())
        def g(x, y):
            pass
    with pytest.raises(TypeError, match="unknown \\['z'\\]"):
        @V.validate_params(x=V.Tensor(), z=V.Seed())
        def h(x):
            pass


def test_every_constraint_generates_values_it_refuses():
    for c in (V.Interval(int, 0, 10), V.Interval(float, 0, 1, closed="left"), V.Options(("x", "y")), V.Bool(),
              V.Instance(dict, "a dict"), V.Tensor(ndim=2), V.ListOf(V.PositiveInt()), V.Callable(),
              V.Tensor(convert=False)):
        bad = c.invalid_values()
        assert bad, c
        for value, exc in bad:
            with pytest.raises(exc):
                c.check("p", value)


# --------------------------------------------------------------- the reported examples
def test_prune_channels_refuses_a_next_layer_that_does_not_consume_the_layer():
    from effdl.models import LeNet5
    from effdl.pruning import prune_channels
    with pytest.raises(ValueError, match="next_layer must name the layer that consumes conv1's output"):
        prune_channels(LeNet5(), "conv1", 3, "fc2")
    with pytest.raises(ValueError, match="next_layer must name the layer that consumes conv1's output"):
        prune_channels(LeNet5(), "conv1", 3, "conv1")
    smaller = prune_channels(LeNet5(), "conv1", 3, "conv2")
    assert smaller(torch.zeros(1, 1, 28, 28)).shape == (1, 10)


def test_threshold_mask_refuses_inf():
    from effdl.pruning import threshold_mask
    with pytest.raises(ValueError, match="threshold_mask: weight must be finite"):
        threshold_mask(torch.tensor([1.0, 2.0, 3.0, float("inf")]), 1.0)


def test_split_checks_itself():
    from effdl.data import Split
    x, y = torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ValueError, match="same length"):
        Split("s", "t", x, y[:3])
    with pytest.raises(ValueError, match="at least one example"):
        Split("s", "t", x[:0], y[:0])
    bad = x.clone()
    bad[2, 0, 1, 1] = float("nan")
    with pytest.raises(ValueError, match="example 2 of 's' is not"):
        Split("s", "t", bad, y)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\); example 1 of 's' has label 10"):
        Split("s", "t", x, torch.tensor([0, 10, 1, 2]))
    with pytest.raises(TypeError, match="y must be a 1-D integer tensor"):
        Split("s", "t", x, y.float())
