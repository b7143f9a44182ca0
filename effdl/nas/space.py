"""The search space: small MobileNetV2-style CNNs for 28×28 digits, one :class:`Arch` per candidate.

Taught in chapter 17. The space follows Once-for-All (Cai et al., ICLR 2020):
a fixed macro-structure whose elastic dimensions are the input resolution, the
depth of each stage, and each block's kernel size and expansion ratio.

The network (widths fixed)::

    input r×r (r ∈ RESOLUTIONS, the 28×28 image resized)
    stem      3×3 conv, 1 → 16, stride 2, BN, ReLU
    stage 1   d₁ inverted-residual blocks → 16 channels, stride 1
    stage 2   d₂ blocks → 24 channels, first block stride 2
    stage 3   d₃ blocks → 40 channels, first block stride 2
    head      1×1 conv 40 → 128, BN, ReLU; global average pool; fc 128 → 10

An inverted-residual block (MobileNetV2) with kernel k and expansion e on c_in
channels: 1×1 conv c_in → e·c_in, BN, ReLU; k×k depthwise conv (stride s),
BN, ReLU; 1×1 conv e·c_in → c_out, BN; plus the input when s = 1 and
c_in = c_out. Each stage has d ∈ DEPTHS blocks, each block its own
k ∈ KERNELS and e ∈ EXPANSIONS, so a stage has Σ_d (|K|·|E|)^d choices and the
space has |R| · (Σ_d (|K|·|E|)^d)^3 architectures (:func:`space_size`).

>>> space_size()
2197413036
>>> a = Arch(resolution=28, depths=(1, 2, 1), kernels=((3,), (5, 7), (3,)), expansions=((2,), (4, 4), (3,)))
>>> a.n_blocks, a.key()
(4, 'r28-s1:k3e2-s2:k5e4,k7e4-s3:k3e3')
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from effdl.validation import Instance, Interval, Options, check_part, validate_params

RESOLUTIONS = (16, 20, 24, 28)
DEPTHS = (1, 2, 3)
KERNELS = (3, 5, 7)
EXPANSIONS = (2, 3, 4)
STEM_WIDTH = 16
WIDTHS = (16, 24, 40)          # output channels of stages 1, 2, 3
STRIDES = (1, 2, 2)            # stride of each stage's first block
HEAD_WIDTH = 128
N_CLASSES = 10
N_STAGES = len(WIDTHS)

RNG = Instance(np.random.Generator, "a numpy Generator (np.random.default_rng(seed))")
PROB = Interval(float, 0, 1)


def _check_choice(field: str, value, options: tuple[int, ...]) -> int:
    """``value`` must be one of ``options``: an int, named by its field, e.g. ``kernels[1][0]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"Arch: {field} must be an integer, one of {list(options)}; got {value!r}.")
    if int(value) not in options:
        raise ValueError(f"Arch: {field} must be one of {list(options)} (out of the search space); got {value!r}.")
    return int(value)


def _as_tuple(field: str, value, length: int | None = None) -> tuple:
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)):
        raise TypeError(f"Arch: {field} must be a tuple or list; got {value!r}.")
    if length is not None and len(value) != length:
        raise ValueError(f"Arch: {field} must have {length} entries; got {value!r}.")
    return tuple(value)


@dataclass(frozen=True)
class Arch:
    """One candidate network of the space: ``resolution``, ``depths`` (one per stage) and, per
    stage, one kernel size and one expansion ratio per block (``kernels[s][i]``, ``expansions[s][i]``).

    Validated when made: an out-of-space choice raises a ValueError naming the
    field (``"Arch: kernels[2][0] must be one of [3, 5, 7] …"``). Hashable and
    ordered by nothing; :meth:`key` is its canonical string.

    Behind chapter 17, "Designing efficient models".
    """

    resolution: int
    depths: tuple
    kernels: tuple
    expansions: tuple

    def __post_init__(self):
        object.__setattr__(self, "resolution", _check_choice("resolution", self.resolution, RESOLUTIONS))
        depths = tuple(_check_choice(f"depths[{s}]", d, DEPTHS)
                       for s, d in enumerate(_as_tuple("depths", self.depths, N_STAGES)))
        object.__setattr__(self, "depths", depths)
        for name, options in (("kernels", KERNELS), ("expansions", EXPANSIONS)):
            stages = _as_tuple(name, getattr(self, name), N_STAGES)
            value = tuple(tuple(_check_choice(f"{name}[{s}][{i}]", v, options)
                                for i, v in enumerate(_as_tuple(f"{name}[{s}]", stage, depths[s])))
                          for s, stage in enumerate(stages))
            object.__setattr__(self, name, value)

    @property
    def n_blocks(self) -> int:
        return sum(self.depths)

    def blocks(self) -> list[tuple[int, int, int, int]]:
        """``(stage, index in stage, kernel, expansion)`` of every block, in order."""
        return [(s, i, self.kernels[s][i], self.expansions[s][i])
                for s in range(N_STAGES) for i in range(self.depths[s])]

    def key(self) -> str:
        """Canonical text, e.g. ``'r28-s1:k3e2-s2:k5e4,k7e4-s3:k3e3'``; :func:`from_key` reads it back."""
        stages = ["s%d:" % (s + 1) + ",".join(f"k{k}e{e}" for k, e in zip(self.kernels[s], self.expansions[s]))
                  for s in range(N_STAGES)]
        return f"r{self.resolution}-" + "-".join(stages)

    def to_dict(self) -> dict:
        return {"resolution": self.resolution, "depths": list(self.depths),
                "kernels": [list(k) for k in self.kernels], "expansions": [list(e) for e in self.expansions]}


ARCH = Instance(Arch, "an effdl.nas.Arch")


@validate_params(key=Instance(str, "an Arch key such as 'r28-s1:k3e2-s2:k5e4-s3:k3e3'"))
def from_key(key: str) -> Arch:
    """The :class:`Arch` whose :meth:`Arch.key` is ``key``.

    Taught in chapter 17, "Designing efficient models".
    """
    try:
        head, *stages = key.split("-")
        resolution = int(head[1:]) if head.startswith("r") else None
        kernels, expansions = [], []
        for stage in stages:
            blocks = stage.split(":", 1)[1].split(",")
            kernels.append(tuple(int(b[1:b.index("e")]) for b in blocks))
            expansions.append(tuple(int(b[b.index("e") + 1:]) for b in blocks))
    except (ValueError, IndexError):
        raise ValueError(f"from_key: key must read like 'r28-s1:k3e2-s2:k5e4,k7e4-s3:k3e3'; got {key!r}.") from None
    if resolution is None:
        raise ValueError(f"from_key: key must start with 'r' and the resolution; got {key!r}.")
    return Arch(resolution, tuple(len(k) for k in kernels), tuple(kernels), tuple(expansions))


@validate_params(arch=Instance(dict, "a dict with resolution, depths, kernels, expansions"))
def from_dict(arch: dict) -> Arch:
    """The :class:`Arch` of :meth:`Arch.to_dict`'s output.

    Behind chapter 17, "Designing efficient models".
    """
    missing = {"resolution", "depths", "kernels", "expansions"} - set(arch)
    if missing:
        raise ValueError(f"from_dict: arch must have the keys {sorted(missing)}; got {sorted(arch)}.")
    return Arch(arch["resolution"], tuple(arch["depths"]), tuple(tuple(k) for k in arch["kernels"]),
                tuple(tuple(e) for e in arch["expansions"]))


@validate_params()
def space_size() -> int:
    """Number of architectures: |R| · (Σ_d (|K|·|E|)^d)^3 = 4 · (9 + 81 + 729)^3.

    Taught in chapter 17, "Designing efficient models".
    """
    per_stage = sum((len(KERNELS) * len(EXPANSIONS)) ** d for d in DEPTHS)
    return len(RESOLUTIONS) * per_stage ** N_STAGES


@validate_params()
def largest() -> Arch:
    """The largest network of the space (resolution 28, depth 3, kernel 7, expansion 4 everywhere).

    Taught in chapter 17, "Designing efficient models".
    """
    d = max(DEPTHS)
    return Arch(max(RESOLUTIONS), (d,) * N_STAGES, ((max(KERNELS),) * d,) * N_STAGES,
                ((max(EXPANSIONS),) * d,) * N_STAGES)


@validate_params()
def smallest() -> Arch:
    """The smallest network of the space (resolution 16, depth 1, kernel 3, expansion 2).

    Taught in chapter 17, "Designing efficient models".
    """
    return Arch(min(RESOLUTIONS), (1,) * N_STAGES, ((min(KERNELS),),) * N_STAGES, ((min(EXPANSIONS),),) * N_STAGES)


def _pick(rng: np.random.Generator, options: tuple[int, ...]) -> int:
    return int(options[int(rng.integers(len(options)))])


def _sample(rng: np.random.Generator, resolutions=RESOLUTIONS, depths=DEPTHS, kernels=KERNELS,
            expansions=EXPANSIONS) -> Arch:
    ds = tuple(_pick(rng, depths) for _ in range(N_STAGES))
    ks = tuple(tuple(_pick(rng, kernels) for _ in range(d)) for d in ds)
    es = tuple(tuple(_pick(rng, expansions) for _ in range(d)) for d in ds)
    return Arch(_pick(rng, resolutions), ds, ks, es)


_CHOICES = Instance(tuple, "a tuple of allowed values (a subset of the space's)", optional=True)


@validate_params(rng=RNG, resolutions=_CHOICES, depths=_CHOICES, kernels=_CHOICES, expansions=_CHOICES)
def sample(rng: np.random.Generator, *, resolutions=None, depths=None, kernels=None, expansions=None) -> Arch:
    """A uniformly random architecture (each choice uniform, independently), drawn from ``rng``.

    ``resolutions``, ``depths``, ``kernels``, ``expansions`` restrict a
    dimension to a subset (progressive shrinking samples kernels first, then
    depths, then expansions); None means the whole space's choices.

    Behind chapter 17, "Designing efficient models".
    """
    chosen = {}
    for name, value, full in (("resolutions", resolutions, RESOLUTIONS), ("depths", depths, DEPTHS),
                              ("kernels", kernels, KERNELS), ("expansions", expansions, EXPANSIONS)):
        value = full if value is None else value
        if not value or any(v not in full for v in value):
            raise ValueError(f"sample: {name} must be a non-empty subset of {list(full)}; got {value!r}.")
        chosen[name] = tuple(value)
    return _sample(rng, **chosen)


@validate_params(arch=ARCH, rng=RNG, prob=PROB)
def mutate(arch: Arch, rng: np.random.Generator, *, prob: float = 0.1) -> Arch:
    """A copy of ``arch`` with each choice redrawn with probability ``prob``.

    Genes: the resolution, each stage's depth (a deeper stage gets new random
    blocks appended, a shallower one keeps its first blocks), then every
    block's kernel and expansion. The result may equal ``arch``.

    Behind chapter 17, "Designing efficient models".
    """
    res = _pick(rng, RESOLUTIONS) if rng.random() < prob else arch.resolution
    depths, kernels, expansions = [], [], []
    for s in range(N_STAGES):
        d = _pick(rng, DEPTHS) if rng.random() < prob else arch.depths[s]
        ks, es = list(arch.kernels[s][:d]), list(arch.expansions[s][:d])
        while len(ks) < d:
            ks.append(_pick(rng, KERNELS))
            es.append(_pick(rng, EXPANSIONS))
        for i in range(d):
            if rng.random() < prob:
                ks[i] = _pick(rng, KERNELS)
            if rng.random() < prob:
                es[i] = _pick(rng, EXPANSIONS)
        depths.append(d)
        kernels.append(tuple(ks))
        expansions.append(tuple(es))
    return Arch(res, tuple(depths), tuple(kernels), tuple(expansions))


@validate_params(a=ARCH, b=ARCH, rng=RNG)
def crossover(a: Arch, b: Arch, rng: np.random.Generator) -> Arch:
    """A child taking each gene from ``a`` or ``b`` with equal probability.

    The resolution and each stage's depth come from one parent; block i of a
    stage takes its kernel and its expansion, independently, from a parent
    that has a block i there (from the only one when the other's stage is shallower).

    Behind chapter 17, "Designing efficient models".
    """
    res = a.resolution if rng.random() < 0.5 else b.resolution
    depths, kernels, expansions = [], [], []
    for s in range(N_STAGES):
        d = a.depths[s] if rng.random() < 0.5 else b.depths[s]
        ks, es = [], []
        for i in range(d):
            parents = [p for p in (a, b) if p.depths[s] > i]
            pk = parents[int(rng.integers(len(parents)))]
            pe = parents[int(rng.integers(len(parents)))]
            ks.append(pk.kernels[s][i])
            es.append(pe.expansions[s][i])
        depths.append(d)
        kernels.append(tuple(ks))
        expansions.append(tuple(es))
    return Arch(res, tuple(depths), tuple(kernels), tuple(expansions))


@validate_params(arch=ARCH)
def stage_shapes(arch: Arch) -> list[tuple[int, int, int, int]]:
    """Per block: ``(c_in, c_out, stride, input size)`` with sizes as torch computes them (padding k // 2).

    Behind chapter 17, "Designing efficient models".
    """
    size = (arch.resolution + 2 - 3) // 2 + 1          # stem: 3×3, stride 2, padding 1
    c_in, rows = STEM_WIDTH, []
    for s, _, k, _ in arch.blocks():
        first = len([r for r in rows if r[4] == s]) == 0
        stride = STRIDES[s] if first else 1
        rows.append((c_in, WIDTHS[s], stride, size, s))
        size = (size + 2 * (k // 2) - k) // stride + 1
        c_in = WIDTHS[s]
    return [r[:4] for r in rows]


__all__ = ["Arch", "RESOLUTIONS", "DEPTHS", "KERNELS", "EXPANSIONS", "WIDTHS", "STRIDES", "STEM_WIDTH", "HEAD_WIDTH",
           "N_CLASSES", "N_STAGES", "space_size", "sample", "mutate", "crossover", "largest", "smallest", "from_key",
           "from_dict", "stage_shapes"]
