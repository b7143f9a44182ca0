"""Search under a hardware budget: regularized evolution against random search, and Pareto fronts.

Taught in chapter 17. Both searches maximise an accuracy (``evaluate(arch)``,
e.g. a supernet sub-network's validation accuracy) over architectures whose
cost (``cost(arch)``: predicted CPU milliseconds, systolic microseconds or
microjoules) is within ``budget``, and both stop after the same number of
*distinct* evaluated architectures:

- :func:`random_search` draws architectures uniformly, keeping those within budget;
- :func:`evolution` is regularized (aging) evolution (Real, Aggarwal, Huang &
  Le, "Regularized Evolution for Image Classifier Architecture Search", AAAI
  2019): a population starts with random architectures within budget; each
  cycle picks the best of a random sample (a tournament), makes a child by
  mutation (or by crossover of two tournament winners), evaluates it, adds it
  and removes the *oldest* member.

Every random choice comes from ``numpy.random.default_rng(seed)``: the same
seed and the same ``evaluate`` give the same search.

>>> front = pareto_front([1.0, 2.0, 3.0, 2.5], [90.0, 95.0, 94.0, 96.0])
>>> front
[0, 1, 3]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from effdl.nas.space import Arch, crossover, mutate, sample
from effdl.validation import Callable, Interval, ListOf, PositiveInt, Seed, check_fields, Instance, validate_params

_BUDGET = Interval(float, 0, None, closed="neither")
_MAX_TRIES = 2000


@dataclass(frozen=True)
class SearchResult:
    """A search's evaluations in order (``history``: dicts with ``key``, ``acc``, ``cost``) and its best.

    Behind chapter 17, "Designing efficient models".
    """

    method: str
    budget: float
    seed: int
    history: tuple = field(default_factory=tuple)

    def __post_init__(self):
        check_fields(self, method=Instance(str, "a string"), budget=_BUDGET, seed=Seed(),
                     history=Instance(tuple, "a tuple of dicts"))

    @property
    def best(self) -> dict:
        """The evaluated architecture with the highest accuracy (the cheaper one on a tie, then the earlier)."""
        return max(self.history, key=lambda h: (h["acc"], -h["cost"]))

    def best_so_far(self) -> list[float]:
        """Best accuracy after each evaluation."""
        out, best = [], -np.inf
        for h in self.history:
            best = max(best, h["acc"])
            out.append(best)
        return out

    def to_dict(self) -> dict:
        return {"method": self.method, "budget": self.budget, "seed": self.seed, "best": self.best,
                "history": list(self.history)}


class _Evaluations:
    """Distinct architectures evaluated so far, in order, with their accuracy and cost."""

    def __init__(self, evaluate, cost, budget: float):
        self.evaluate, self.cost, self.budget = evaluate, cost, budget
        self.seen: dict[str, dict] = {}

    def feasible(self, arch: Arch) -> bool:
        return float(self.cost(arch)) <= self.budget

    def add(self, arch: Arch) -> dict:
        key = arch.key()
        if key not in self.seen:
            self.seen[key] = {"key": key, "acc": float(self.evaluate(arch)), "cost": float(self.cost(arch))}
        return self.seen[key]

    def new_feasible(self, arch: Arch) -> bool:
        return arch.key() not in self.seen and self.feasible(arch)


def _random_feasible(rng: np.random.Generator, ev: _Evaluations, fn: str) -> Arch:
    for _ in range(_MAX_TRIES):
        arch = sample(rng)
        if ev.new_feasible(arch):
            return arch
    raise ValueError(f"{fn}: budget must admit architectures of the space: none of {_MAX_TRIES} random draws "
                     f"costs at most {ev.budget!r} (and is new); got budget={ev.budget!r}.")


_COMMON = dict(evaluate=Callable(), cost=Callable(), budget=_BUDGET, n_evaluations=PositiveInt(), seed=Seed())


@validate_params(**_COMMON)
def random_search(evaluate, cost, budget: float, *, n_evaluations: int = 100, seed: int = 0) -> SearchResult:
    """Evaluate ``n_evaluations`` distinct uniformly random architectures with ``cost(arch) <= budget``.

    Behind chapter 17, "Designing efficient models".
    """
    rng = np.random.default_rng(seed)
    ev = _Evaluations(evaluate, cost, budget)
    while len(ev.seen) < n_evaluations:
        ev.add(_random_feasible(rng, ev, "random_search"))
    return SearchResult("random", budget, seed, tuple(ev.seen.values()))


@validate_params(**_COMMON, population=Interval(int, 2, None), sample_size=Interval(int, 1, None),
                 prob=Interval(float, 0, 1, closed="neither"), crossover_prob=Interval(float, 0, 1))
def evolution(evaluate, cost, budget: float, *, n_evaluations: int = 100, seed: int = 0, population: int = 16,
              sample_size: int = 4, prob: float = 0.2, crossover_prob: float = 0.3) -> SearchResult:
    """Regularized evolution within ``budget``, ``n_evaluations`` distinct evaluations in all.

    The first ``population`` evaluations are random architectures within
    budget. Then each cycle: a tournament (the best of ``sample_size``
    members drawn at random) gives a parent; with probability
    ``crossover_prob`` a second tournament gives another and the child is
    their :func:`~effdl.nas.space.crossover`, then the child is
    :func:`~effdl.nas.space.mutate`\\ d (each gene redrawn with ``prob``),
    redrawn until it is new and within budget; the oldest member dies.

    Taught in chapter 17, "Designing efficient models".
    """
    if sample_size > population:
        raise ValueError(f"evolution: sample_size must be at most population ({population}); got {sample_size}.")
    rng = np.random.default_rng(seed)
    ev = _Evaluations(evaluate, cost, budget)
    alive: list[tuple[Arch, float]] = []                        # (arch, acc), oldest first
    while len(ev.seen) < min(population, n_evaluations):
        arch = _random_feasible(rng, ev, "evolution")
        alive.append((arch, ev.add(arch)["acc"]))

    def tournament() -> Arch:
        picks = rng.choice(len(alive), size=sample_size, replace=False)
        return max((alive[int(i)] for i in picks), key=lambda m: m[1])[0]

    while len(ev.seen) < n_evaluations:
        for _ in range(_MAX_TRIES):
            parent = tournament()
            if rng.random() < crossover_prob:
                parent = crossover(parent, tournament(), rng)
            child = mutate(parent, rng, prob=prob)
            if ev.new_feasible(child):
                break
        else:
            child = _random_feasible(rng, ev, "evolution")
        alive.append((child, ev.add(child)["acc"]))
        alive.pop(0)                                            # aging: the oldest dies, not the worst
    return SearchResult("evolution", budget, seed, tuple(ev.seen.values()))


@validate_params(costs=ListOf(Interval(float, None, None)), accs=ListOf(Interval(float, None, None)))
def pareto_front(costs: list[float], accs: list[float]) -> list[int]:
    """Indices of the points no other point beats: lower-or-equal cost and higher-or-equal accuracy,
    one of them strictly. Sorted by cost (ties: by index).

    Behind chapter 17, "Designing efficient models".
    """
    if len(costs) != len(accs):
        raise ValueError(f"pareto_front: accs must have one value per cost ({len(costs)}); got {len(accs)}.")
    order = sorted(range(len(costs)), key=lambda i: (costs[i], -accs[i], i))
    front, best = [], -np.inf
    for i in order:
        if accs[i] > best:
            front.append(i)
            best = accs[i]
    return front


@validate_params(pool=ListOf(Instance(dict, "a dict with 'acc' and the cost key")),
                 cost_key=Instance(str, "a key of the pool's dicts"), budget=_BUDGET)
def best_within(pool: list[dict], cost_key: str, budget: float) -> dict | None:
    """The most accurate entry of ``pool`` with ``entry[cost_key] <= budget`` (cheaper on a tie); None if none.

    Behind chapter 17, "Designing efficient models".
    """
    if any(cost_key not in p or "acc" not in p for p in pool):
        raise ValueError(f"best_within: pool must hold 'acc' and {cost_key!r} in every entry; got an entry "
                         "without them.")
    ok = [p for p in pool if p[cost_key] <= budget]
    return max(ok, key=lambda p: (p["acc"], -p[cost_key])) if ok else None


__all__ = ["SearchResult", "random_search", "evolution", "pareto_front", "best_within"]
