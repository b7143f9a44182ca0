"""effdl.training.dsd: the sparse phase keeps exactly round(sparsity · n) zeros per pruned layer at every
step, the first-layer option, the re-dense phase lets pruned weights leave zero, the baseline's epochs and
schedule equal DSD's, determinism and the shared-phase-D shortcut, the verdict, bad input, the figure and
the precomputed record's shape."""
import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

import effdl.training.dsd as D
from effdl.data import Split, load_mnist
from effdl.pruning import n_to_prune, prunable_parameters


@pytest.fixture(scope="module")
def splits():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                    # small layers: faster on one thread, and deterministic
    train, val = load_mnist("train", source="embedded"), load_mnist("val", source="embedded")
    small = lambda s, n: Split(s.name, s.source, s.x[:n], s.y[:n])
    yield small(train, 320), small(val, 100)
    torch.set_num_threads(threads)


KW = {"dense_epochs": 1, "sparse_epochs": 2, "redense_epochs": 1, "lr": 0.03, "redense_lr_factor": 0.1, "seed": 0,
      "device": "cpu"}


def _steps(train, batch_size=64):
    return -(-len(train) // batch_size)


@pytest.mark.parametrize("sparsity", [0.3, 0.5])
def test_sparse_phase_keeps_exact_zero_count_every_step(splits, sparsity):
    train, val = splits
    counts = []

    def hook(model, phase):
        if phase == "sparse":
            counts.append({n: int((w == 0).sum()) for n, w in prunable_parameters(model).items()})

    r = D.dsd_train("lenet300", train, val, sparsity=sparsity, after_step=hook, **KW)
    sizes = {n: m.numel() for n, m in r.masks.items()}
    want = {n: n_to_prune(k, sparsity) for n, k in sizes.items()}
    assert want == {n: round(sparsity * k) for n, k in sizes.items()}
    assert len(counts) == KW["sparse_epochs"] * _steps(train)
    assert all(c == want for c in counts)
    # the per-epoch record agrees, and the pruned positions are the mask's
    s_epochs = [e - 1 for e in range(1, r.epochs + 1) if r.phase_of(e) == "sparse"]
    assert all(r.zeros[e] == want for e in s_epochs)
    assert all(r.pruned_zero_fraction[e] == 1.0 and r.pruned_abs_ratio[e] == 0.0 for e in s_epochs)
    assert r.pruned_zero_fraction[0] is None                      # phase D: nothing pruned yet


def test_masks_prune_the_smallest_magnitudes_of_each_layer(splits):
    train, val = splits
    r = D.dsd_train("lenet300", train, val, sparsity=0.5, **{**KW, "sparse_epochs": 0, "redense_epochs": 0})
    # phase S and D′ empty: the final weights are phase D's weights with the mask applied
    for name, mask in r.masks.items():
        w = prunable_parameters(r.model)[name].detach()
        assert torch.all(w[~mask] == 0)
    after_d = D.baseline_train("lenet300", train, val, **{**KW, "sparse_epochs": 0, "redense_epochs": 0})
    for name, mask in r.masks.items():
        w = prunable_parameters(after_d.model)[name].detach().abs()
        assert w[mask].min() >= w[~mask].max()                    # magnitude, per layer


@pytest.mark.parametrize("arch, first", [("lenet300", "fc1.weight"), ("lenet5", "conv1.weight")])
def test_skip_first_leaves_the_first_layer_dense(splits, arch, first):
    train, val = splits
    counts = []
    kw = {**KW, "sparse_epochs": 1, "redense_epochs": 0}
    if arch == "lenet5":
        train = Split(train.name, train.source, train.x[:128], train.y[:128])

    def hook(model, phase):
        if phase == "sparse":
            counts.append({n: int((w == 0).sum()) for n, w in prunable_parameters(model).items()})

    r = D.dsd_train(arch, train, val, sparsity=0.3, skip_first=True, after_step=hook, **kw)
    names = list(prunable_parameters(r.model))
    assert first == names[0] and first not in r.masks and set(r.masks) == set(names[1:])
    assert all(c[first] == 0 for c in counts) and counts
    assert all(c[n] == n_to_prune(r.masks[n].numel(), 0.3) for c in counts for n in r.masks)
    r_all = D.dsd_train(arch, train, val, sparsity=0.3, **kw)
    assert set(r_all.masks) == set(names)


def test_redense_restarts_pruned_weights_at_zero_and_lets_them_move(splits):
    train, val = splits
    # D′ of length 0: masks removed, pruned weights are plain zeros in ordinary parameters
    r0 = D.dsd_train("lenet300", train, val, sparsity=0.5, **{**KW, "redense_epochs": 0})
    assert not any("parametrizations" in n for n, _ in r0.model.named_parameters())
    for name, mask in r0.masks.items():
        assert torch.all(prunable_parameters(r0.model)[name].detach()[~mask] == 0)
    # with D′ training, (almost) every pruned weight leaves zero and they grow
    r = D.dsd_train("lenet300", train, val, sparsity=0.5, **{**KW, "redense_epochs": 2})
    assert r.phase_of(r.epochs) == "redense"
    assert r.pruned_zero_fraction[-1] < 0.05
    assert 0 < r.pruned_abs_ratio[-2] < r.pruned_abs_ratio[-1]
    assert all(v < 0.01 * m.numel() for v, m in zip(r.zeros[-1].values(), r.masks.values()))
    # the first D′ epoch starts from r0's weights (same seed, same phases before it)
    assert r.val_acc[:r0.epochs] == r0.val_acc


def test_baseline_same_epochs_schedule_and_shared_phase_d(splits):
    train, val = splits
    r = D.dsd_train("lenet300", train, val, sparsity=0.3, **KW)
    b = D.baseline_train("lenet300", train, val, **KW)
    assert b.epochs == r.epochs == KW["dense_epochs"] + KW["sparse_epochs"] + KW["redense_epochs"]
    assert b.phases == r.phases == [("dense", 1, 1), ("sparse", 2, 3), ("redense", 4, 4)]
    assert len(b.val_acc) == len(r.val_acc) == len(b.train_loss) == len(b.zeros) == r.epochs
    d = KW["dense_epochs"]
    assert b.val_acc[:d] == r.val_acc[:d] and b.train_loss[:d] == r.train_loss[:d]   # identical phase D
    assert b.train_loss[d:] != r.train_loss[d:]                                        # then the mask differs
    assert b.masks == {} and b.sparsity == 0.0 and b.method == "baseline" and r.method == "dsd"
    assert all(z == 0 for row in b.zeros for z in row.values())


def test_deterministic_and_compare_equals_separate_runs(splits):
    train, val = splits
    a = D.dsd_train("lenet300", train, val, sparsity=0.3, test=val, **KW)
    b = D.dsd_train("lenet300", train, val, sparsity=0.3, test=val, **KW)
    assert a.val_acc == b.val_acc and a.train_loss == b.train_loss and a.test_acc == b.test_acc
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    both = D.dsd_compare("lenet300", train, val, sparsity=0.3, test=val, **KW)
    base = D.baseline_train("lenet300", train, val, test=val, **KW)
    assert both["dsd"].train_loss == a.train_loss and both["dsd"].test_acc == a.test_acc
    assert both["baseline"].train_loss == base.train_loss and both["baseline"].test_acc == base.test_acc
    other = D.dsd_train("lenet300", train, val, sparsity=0.3, **{**KW, "seed": 1})
    assert other.train_loss != a.train_loss


def test_phase_lengths_of_zero_and_phase_of(splits):
    train, val = splits
    r = D.dsd_train("lenet300", train, val, sparsity=0.0, **{**KW, "dense_epochs": 0, "sparse_epochs": 1})
    assert r.phases == [("dense", 1, 0), ("sparse", 1, 1), ("redense", 2, 2)]
    assert [r.phase_of(e) for e in (1, 2)] == ["sparse", "redense"]
    assert all(not (~m).any() for m in r.masks.values())       # sparsity 0 prunes nothing
    with pytest.raises(ValueError, match="epoch must be"):
        r.phase_of(3)


def test_verdict_and_mean_std():
    v = D.verdict([97.0, 97.2, 97.1], [97.6, 97.8, 97.7])
    assert v["verdict"] == "helped" and v["difference"] == pytest.approx(0.6)
    assert v["paired_differences"] == pytest.approx([0.6, 0.6, 0.6]) and v["seeds_dsd_better"] == 3
    assert D.verdict([97.0, 98.0, 97.5], [97.2, 97.9, 97.6])["verdict"] == "no clear difference"
    assert D.verdict([97.6, 97.8, 97.7], [97.0, 97.2, 97.1])["verdict"] == "hurt"
    assert D.verdict([97.0], [98.0])["verdict"] == "one seed"
    ms = D.mean_std([1.0, 2.0, 3.0])
    assert ms == {"mean": 2.0, "std": 1.0}
    with pytest.raises(ValueError, match="one value per seed"):
        D.verdict([1.0, 2.0], [1.0])


@pytest.mark.parametrize("change, exc, match", [
    ({"sparsity": 1.0}, ValueError, r"sparsity must be a real number in \[0, 1\); got 1.0"),
    ({"sparsity": -0.1}, ValueError, r"sparsity must be a real number in \[0, 1\); got -0.1"),
    ({"sparsity": float("nan")}, ValueError, "sparsity must be finite"),
    ({"sparsity": True}, TypeError, "sparsity must be a real number"),
    ({"sparsity": "0.3"}, TypeError, "sparsity must be a real number"),
    ({"dense_epochs": -1}, ValueError, "dense_epochs must be an integer in"),
    ({"sparse_epochs": 1.5}, TypeError, "sparse_epochs must be an integer"),
    ({"redense_epochs": True}, TypeError, "redense_epochs must be an integer"),
    ({"lr": 0.0}, ValueError, r"lr must be a real number in \(0, inf\)"),
    ({"lr": -0.1}, ValueError, "lr must be a real number in"),
    ({"redense_lr_factor": 0.0}, ValueError, r"redense_lr_factor must be a real number in \(0, 1\]"),
    ({"redense_lr_factor": 2.0}, ValueError, "redense_lr_factor must be a real number in"),
    ({"seed": -1}, ValueError, "seed must be an integer"),
    ({"skip_first": 1}, TypeError, "skip_first must be True or False"),
    ({"arch": "resnet"}, ValueError, "arch must be one of"),
    ({"arch": 3}, TypeError, "arch must be a string"),
    ({"train": torch.zeros(3)}, TypeError, "train must be an effdl.data.Split"),
    ({"after_step": 3}, TypeError, "after_step must be a callable"),
])
def test_bad_input(splits, change, exc, match):
    train, val = splits
    kw = {"arch": "lenet300", "train": train, "val": val, "sparsity": 0.3, **KW, **change}
    with pytest.raises(exc, match=match):
        D.dsd_train(**kw)
    if "sparsity" not in change and "skip_first" not in change:
        kw.pop("sparsity")
        with pytest.raises(exc, match=match):
            D.baseline_train(**kw)


def test_figure(splits):
    train, val = splits
    runs = D.dsd_compare("lenet300", train, val, sparsity=0.3, test=val, **KW)
    curves = {m: [r.val_acc, r.val_acc] for m, r in runs.items()}
    fig = __import__("effdl.viz.training", fromlist=["dsd_curves"]).dsd_curves(
        curves, runs["dsd"].phases, losses={m: [r.train_loss] for m, r in runs.items()},
        test_acc={m: [r.test_acc, r.test_acc + 0.1] for m, r in runs.items()})
    axes = fig.axes
    assert len(axes) == 3 and all(ax.get_xlabel() and ax.get_ylabel() for ax in axes[:2])
    assert axes[2].get_ylabel() == "test accuracy (%)"


def test_precomputed_record_shape():
    from effdl.precompute import load_record
    from effdl.precompute.dsd import SEEDS

    rec = load_record("dsd")
    recipe = rec["recipe"]
    assert recipe["sparsity"] in (0.3, 0.5) and recipe["arch"] == "lenet300"
    assert set(recipe) >= {"lr", "redense_lr_factor", "dense_epochs", "sparse_epochs", "redense_epochs",
                           "skip_first", "weight_decay", "momentum", "batch_size"}
    assert rec["seeds"] == SEEDS and len(SEEDS) >= 3
    epochs = recipe["dense_epochs"] + recipe["sparse_epochs"] + recipe["redense_epochs"]
    assert rec["phases"][-1][2] == epochs
    for m in D.METHODS:
        accs = [rec["runs"][m][str(s)]["test_acc"] for s in rec["seeds"]]
        assert all(len(rec["runs"][m][str(s)]["val_acc"]) == epochs for s in rec["seeds"])
        assert rec["summary"][m] == D.mean_std(accs)
    again = D.verdict(*[[rec["runs"][m][str(s)]["test_acc"] for s in rec["seeds"]] for m in D.METHODS])
    assert rec["comparison"] == again and rec["helped"] == (again["verdict"] == "helped")
    # phase D is shared: identical curves up to the pruning epoch
    d = recipe["dense_epochs"]
    run0 = {m: rec["runs"][m][str(rec["seeds"][0])] for m in D.METHODS}
    assert run0["dsd"]["val_acc"][:d] == run0["baseline"]["val_acc"][:d]
    assert all(x == 1.0 for x in run0["dsd"]["pruned_zero_fraction"][d:d + recipe["sparse_epochs"]])
    chosen = [r for r in rec["selection"]["rows"] if all(r[k] == recipe[k] for k in ("lr", "weight_decay",
              "redense_lr_factor", "dense_epochs", "sparse_epochs", "redense_epochs"))]
    assert len(chosen) == 1
    best = max(r["baseline"]["val_acc"] for r in rec["selection"]["rows"])
    assert chosen[0]["baseline"]["val_acc"] == best              # chosen on validation, as documented
    assert "lenet5" in rec and math.isfinite(rec["lenet5"]["summary"]["dsd"]["mean"])
