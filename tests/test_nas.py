"""effdl.nas: the search space, the supernet's weight sharing, the costs, the latency predictor, the searches."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from effdl.architectures import count_macs, count_params
from effdl.hardware.systolic import network_gemms
from effdl.nas import costs as C
from effdl.nas import predictor as P
from effdl.nas import search as S
from effdl.nas import space
from effdl.nas.space import Arch
from effdl.data import Split
from effdl.nas.supernet import Supernet, SubNet, _phase_smallest, build_subnet, recalibrate_bn, train_supernet

MID = Arch(20, (1, 2, 3), ((3,), (5, 7), (3, 5, 7)), ((2,), (3, 4), (2, 3, 4)))


# --------------------------------------------------------------------------- space
def test_space_size_formula():
    per_stage = sum(9 ** d for d in (1, 2, 3))
    assert space.space_size() == 4 * per_stage ** 3 == 2_197_413_036


def test_space_size_by_enumeration_of_one_stage():
    # the per-stage count, enumerated: every depth, then every (kernel, expansion) per block
    import itertools
    n = sum(len(list(itertools.product(itertools.product(space.KERNELS, space.EXPANSIONS), repeat=d)))
            for d in space.DEPTHS)
    assert n == 819


def test_sample_mutate_crossover_stay_in_space():
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(200)]
    assert len({a.key() for a in archs}) > 190
    for a, b in zip(archs, archs[1:]):
        for child in (space.mutate(a, rng, prob=0.5), space.crossover(a, b, rng)):
            assert isinstance(child, Arch)
            assert space.from_key(child.key()) == child      # re-validated through the constructor
    # every choice appears
    assert {a.resolution for a in archs} == set(space.RESOLUTIONS)
    assert {k for a in archs for ks in a.kernels for k in ks} == set(space.KERNELS)


def test_mutate_zero_changes_nothing_and_one_changes_something():
    rng = np.random.default_rng(1)
    assert space.mutate(MID, rng, prob=0.0) == MID
    assert any(space.mutate(MID, rng, prob=1.0) != MID for _ in range(5))


def test_sample_restricted_choices():
    rng = np.random.default_rng(2)
    for _ in range(20):
        a = space.sample(rng, depths=(3,), kernels=(7,), expansions=(4,))
        assert a.depths == (3, 3, 3) and {k for ks in a.kernels for k in ks} == {7}


@pytest.mark.parametrize("kwargs,field", [
    (dict(resolution=32), "resolution"),
    (dict(depths=(1, 4, 1)), r"depths\[1\]"),
    (dict(kernels=((3,), (5, 7), (3, 5, 9))), r"kernels\[2\]\[2\]"),
    (dict(expansions=((6,), (3, 4), (2, 3, 4))), r"expansions\[0\]\[0\]"),
    (dict(kernels=((3,), (5,), (3, 5, 7))), r"kernels\[1\]"),
])
def test_out_of_space_choice_names_the_field(kwargs, field):
    fields = dict(resolution=MID.resolution, depths=MID.depths, kernels=MID.kernels, expansions=MID.expansions)
    fields.update(kwargs)
    with pytest.raises(ValueError, match=rf"Arch: {field}"):
        Arch(**fields)


def test_wrong_types_are_type_errors():
    with pytest.raises(TypeError, match="resolution"):
        Arch(28.0, MID.depths, MID.kernels, MID.expansions)
    with pytest.raises(TypeError, match="depths"):
        Arch(28, "123", MID.kernels, MID.expansions)


def test_key_round_trip_and_dict_round_trip():
    assert space.from_key(MID.key()) == MID
    assert space.from_dict(MID.to_dict()) == MID
    with pytest.raises(ValueError, match="key"):
        space.from_key("nonsense")


# --------------------------------------------------------------------------- supernet
def test_subnet_is_the_supernet_and_shares_its_weights():
    torch.manual_seed(0)
    net = Supernet().eval()
    x = torch.randn(3, 1, 28, 28)
    for arch in (space.largest(), space.smallest(), MID):
        sub = net.subnet(arch)
        assert isinstance(sub, SubNet) and len(sub.blocks) == arch.n_blocks
        torch.testing.assert_close(sub(x), net(x, arch), rtol=0, atol=1e-5)
    # weight shapes: the first e·c_in hidden channels, the kernel's centre (transformed)
    sub = net.subnet(MID)
    block = sub.blocks[1]                                             # stage 2, first block: k5, e3, c_in 16
    assert block.expand[0].weight.shape == (48, 16, 1, 1)
    assert block.depthwise[0].weight.shape == (48, 1, 5, 5)
    assert torch.equal(block.expand[0].weight, net.stages[1][0].expand.weight[:48])


def test_kernel_transform_starts_as_centre_crop():
    net = Supernet()
    block = net.stages[0][0]
    w = block.depthwise.weight
    assert torch.equal(block.kernel(5), w[:, :, 1:6, 1:6])           # identity matrices at the start
    assert torch.equal(block.kernel(3), w[:, :, 2:5, 2:5])


def test_sort_channels_keeps_the_function():
    torch.manual_seed(0)
    net = Supernet().eval()
    x = torch.randn(2, 1, 28, 28)
    before = net(x, space.largest())
    net.sort_channels()
    torch.testing.assert_close(net(x, space.largest()), before, rtol=1e-5, atol=1e-5)
    imp = net.stages[2][0].project.weight.abs().sum(dim=(0, 2, 3))
    assert bool((imp[:-1] >= imp[1:]).all())


def test_recalibrate_bn_sets_statistics():
    net = build_subnet(space.smallest(), seed=0)
    x = torch.randn(64, 1, 16, 16) * 3 + 1
    recalibrate_bn(net, x, batch_size=16)
    bn = net.stem[1]
    assert not net.training and bn.num_batches_tracked.item() == 4
    conv = net.stem[0](x)
    torch.testing.assert_close(bn.running_mean, conv.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-4)


def _tiny_split(n: int = 24) -> Split:
    g = torch.Generator().manual_seed(0)
    return Split("tiny", "random", torch.randn(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))


def test_phase_smallest():
    assert _phase_smallest("expand") == space.smallest()
    k = _phase_smallest("kernel")
    assert k.resolution == min(space.RESOLUTIONS) and k.depths == (3, 3, 3)
    assert {x for ks in k.kernels for x in ks} == {3} and {e for es in k.expansions for e in es} == {4}


def test_sandwich_training_is_deterministic_and_trains_the_smallest():
    split, states = _tiny_split(), []
    for _ in range(2):
        torch.manual_seed(0)
        net = Supernet()
        hist = train_supernet(net, split, epochs=1, full_epochs=1, batch_size=12, sandwich=1,
                              phases=("full", "expand"), seed=3)
        states.append(net.state_dict())
    assert list(hist["loss"]) == ["full", "expand"] and all(np.isfinite(v).all() for v in hist["loss"].values())
    for name, t in states[0].items():
        assert torch.equal(t, states[1][name]), name
    # the smallest network (kernel 3 everywhere) is trained every step: its transformation matrices moved
    assert not torch.equal(net.stages[0][0].transforms["3"], torch.eye(9))


def test_train_supernet_phases_are_checked():
    net, split = Supernet(), _tiny_split(4)
    with pytest.raises(ValueError, match="phases"):
        train_supernet(net, split, phases=("expand", "full"))
    with pytest.raises(ValueError, match="phases"):
        train_supernet(net, split, phases=("nope",))
    with pytest.raises(ValueError, match="sandwich"):
        train_supernet(net, split, sandwich=-1)


def test_calibration_study_rows_and_determinism(monkeypatch):
    from effdl.precompute import nas as N
    monkeypatch.setattr(N, "CALIBRATION_SIZES", (4, 8))
    monkeypatch.setattr(N, "CALIBRATION_DRAWS", 2)
    torch.manual_seed(0)
    net, train, val = Supernet(), _tiny_split(24), _tiny_split(12)
    rows = [N.calibration_study(net, train, val, n_random=1) for _ in range(2)]
    assert [r["n_calibration"] for r in rows[0]] == [4, 8, 24] and [r["draws"] for r in rows[0]] == [2, 2, 1]
    assert all(r["n_archs"] == len(N.PROBES) + 1 and r["spread_pts"] >= 0 for r in rows[0])
    assert rows[0][-1]["spread_pts"] == 0.0
    assert [{k: v for k, v in r.items() if k != "s_per_eval"} for r in rows[0]] == \
           [{k: v for k, v in r.items() if k != "s_per_eval"} for r in rows[1]]
    with pytest.raises(ValueError, match="n_random"):
        N.calibration_study(net, train, val, n_random=0)
    with pytest.raises(TypeError, match="val"):
        N.calibration_study(net, train, "val")


# --------------------------------------------------------------------------- costs
@pytest.mark.parametrize("arch", [space.smallest(), MID, space.largest()])
def test_costs_agree_with_torch_and_architectures(arch):
    net = build_subnet(arch).eval()
    spec = C.arch_spec(arch)
    assert count_params(spec) == sum(p.numel() for p in net.parameters())
    with FlopCounterMode(display=False) as flops:
        net(torch.zeros(1, 1, arch.resolution, arch.resolution))
    assert 2 * count_macs(spec) == flops.get_total_flops()
    c = C.candidate_costs(arch)
    assert c["macs"] == count_macs(spec) and c["params"] == count_params(spec)
    assert c["weight_bytes"] == 4 * sum(m.weight.numel() for m in net.modules()
                                        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))
    assert c["energy_uj"] == pytest.approx(c["energy_compute_uj"] + c["energy_memory_uj"])
    assert 0 < c["systolic_util"] < 1 and c["roofline_ms"] > 0


def test_depthwise_convs_map_to_one_column_gemms():
    gemms = {g.name: g for g in network_gemms(C.arch_spec(MID))}
    dw = gemms["s2b1_dw"]                                          # k5, hidden 48
    assert (dw.K, dw.N, dw.count) == (25, 1, 48)
    assert gemms["s2b1_expand"].count == 1


def test_target_cost_and_unknown_target():
    c = {**C.candidate_costs(MID), "cpu_ms": 1.5}
    assert C.target_cost(c, "cpu") == 1.5 and C.target_cost(c, "energy") == c["energy_uj"]
    with pytest.raises(ValueError, match="target"):
        C.target_cost(c, "gpu")


# --------------------------------------------------------------------------- predictor
def _synthetic_lut(rng):
    lut = {}
    for r in space.RESOLUTIONS:
        lut[f"stem-r{r}"], lut[f"head-r{r}"] = 0.01 * r, 0.05
        for s in (1, 2, 3):
            for first in (True, False):
                for k in space.KERNELS:
                    for e in space.EXPANSIONS:
                        lut[P.block_key(s, first, k, e, r)] = 1e-3 * k * k * e * r / 16 + 0.02 * rng.random()
    return lut


def test_predictor_on_a_synthetic_lut():
    rng = np.random.default_rng(0)
    lut = _synthetic_lut(rng)
    archs = [space.sample(rng) for _ in range(30)]
    # "measured" = lut sum + 0.3 ms overhead, exactly: the fit recovers the constant, error 0
    truth = [sum(lut[k] for k in P.arch_keys(a)) + 0.3 for a in archs]
    pred = P.fit_predictor(lut, archs[:10], truth[:10])
    assert pred.constant_ms == pytest.approx(0.3)
    assert P.mape([pred.predict(a) for a in archs[10:]], truth[10:]) == pytest.approx(0, abs=1e-9)
    assert len(P.arch_keys(MID)) == MID.n_blocks + 2
    with pytest.raises(ValueError, match="lut"):
        P.LatencyPredictor({}, 0.0).predict(MID)


def test_mape_and_lengths():
    assert P.mape([1.1, 1.8], [1.0, 2.0]) == pytest.approx(10.0)
    with pytest.raises(ValueError, match="measured"):
        P.mape([1.0], [1.0, 2.0])


def test_measure_lut_covers_every_block():
    m = P.measure_lut(repeats=1, archs=[space.smallest()])
    assert len(m["lut"]) == 4 * (2 + 3 * 2 * 9)
    assert all(k in m["lut"] for a in (space.largest(), MID) for k in P.arch_keys(a))
    assert m["end_to_end"][space.smallest().key()] > 0


# --------------------------------------------------------------------------- search
def _toy_objective():
    """A cheap deterministic accuracy: more blocks and larger kernels help; cost: a MAC-like proxy."""
    def acc(a):
        return 90 + a.n_blocks + 0.1 * sum(sum(k) for k in a.kernels) + 0.2 * a.resolution / 28
    def cost(a):
        return a.resolution ** 2 * sum(k * k + 2 * e for _, _, k, e in a.blocks()) / 20000
    return acc, cost


@pytest.mark.parametrize("method", [S.evolution, S.random_search])
def test_search_is_deterministic_for_a_seed_and_within_budget(method):
    acc, cost = _toy_objective()
    runs = [method(acc, cost, 3.0, n_evaluations=30, seed=s) for s in (3, 3, 4)]
    keys = [[h["key"] for h in r.history] for r in runs]
    assert keys[0] == keys[1] and keys[0] != keys[2]
    assert len(set(keys[0])) == 30
    assert all(h["cost"] <= 3.0 for r in runs for h in r.history)
    assert runs[0].best_so_far()[-1] == runs[0].best["acc"]


def test_evolution_beats_random_on_a_toy_objective():
    acc, cost = _toy_objective()
    evo = [S.evolution(acc, cost, 3.0, n_evaluations=60, seed=s).best["acc"] for s in range(3)]
    rnd = [S.random_search(acc, cost, 3.0, n_evaluations=60, seed=s).best["acc"] for s in range(3)]
    assert np.mean(evo) > np.mean(rnd)


def test_impossible_budget_is_refused():
    acc, cost = _toy_objective()
    with pytest.raises(ValueError, match="budget"):
        S.random_search(acc, cost, 1e-6, n_evaluations=2)
    with pytest.raises(ValueError, match="budget"):
        S.evolution(acc, cost, -1.0)


def test_pareto_front_and_best_within():
    assert S.pareto_front([1.0, 2.0, 3.0, 2.5, 1.0], [90.0, 95.0, 94.0, 96.0, 89.0]) == [0, 1, 3]
    pool = [{"acc": 90.0, "c": 1.0}, {"acc": 95.0, "c": 2.0}, {"acc": 95.0, "c": 1.5}]
    assert S.best_within(pool, "c", 2.0) == pool[2]
    assert S.best_within(pool, "c", 0.5) is None
