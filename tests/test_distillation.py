"""effdl.training.distillation: the loss against a hand-written torch KLDivLoss + cross-entropy, the T²
scaling of the soft gradient (Hinton et al. eq. 4 as T grows), soft targets' limits, the ensemble
teacher, the stratified subset, a short training that learns (hard and soft), the dark-knowledge data,
the validation-only choice of the precompute and the shape of its record, the figures, the exercise
check, bad input."""
import copy
import doctest
import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import effdl.precompute.distillation as PD
import effdl.training.distillation as D
from effdl.data import load_mnist
from effdl.exercises import check_distillation_loss
from effdl.train import evaluate


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # small layers: one thread is faster on the shared 2 cores
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def train():
    return load_mnist("train", source="embedded")


@pytest.fixture(scope="module")
def val():
    return load_mnist("val", source="embedded")


def _batch(seed=0, b=16, k=10, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, k, generator=g) * scale, torch.randn(b, k, generator=g) * scale,
            torch.randint(0, k, (b,), generator=g))


def test_docstring_examples():
    assert doctest.testmod(D).failed == 0


# ------------------------------------------------------------------------ the loss
@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0, 20.0])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.9, 1.0])
def test_loss_matches_torch_kldiv_and_cross_entropy(temperature, alpha):
    # The oracle runs in float64; ours runs in float32 (as training does) and in float64. In float64 the
    # two must agree to float64 rounding. In float32 the bound is derived from the conditioning: the soft
    # gradient is α·T·(softmax(s/T) − softmax(t/T))/B, a difference of probabilities each rounded to
    # ~eps32, multiplied by T (the T² of the loss divided by the T inside the softmax); the hard gradient
    # is (1 − α)·(softmax(s) − onehot)/B. So |error| ≲ c·eps32·(α·T + 1 − α)/B elementwise, with c = 8
    # covering the few roundings per element (exp, sum, divide, subtract). The loss sums K terms per image
    # (log-softmax over K classes), so its error is ≲ c·K·eps times the sum of the terms' magnitudes.
    s, t, y = _batch(int(temperature * 10 + alpha * 100))
    b, k = s.shape

    def oracle(s64, t64):
        kl = nn.KLDivLoss(reduction="batchmean")(F.log_softmax(s64 / temperature, 1),
                                                 F.softmax(t64 / temperature, 1))
        return alpha * temperature ** 2 * kl + (1 - alpha) * F.cross_entropy(s64, y)

    # the loss's magnitude: the mean over the batch of the sum of |terms| (KL's p·(log p − log q) and CE)
    p, log_q = F.softmax(t.double() / temperature, 1), F.log_softmax(s.double() / temperature, 1)
    kl_abs = (p * (p.log() - log_q)).abs().sum(1).mean()
    ce_abs = F.cross_entropy(s.double(), y, reduction="none").abs().mean()
    loss_magnitude = float(alpha * temperature ** 2 * kl_abs + (1 - alpha) * ce_abs)
    s_ref = s.double().requires_grad_(True)
    want = oracle(s_ref, t.double())
    want.backward()
    eps32 = torch.finfo(torch.float32).eps
    for dtype, eps in [(torch.float64, torch.finfo(torch.float64).eps), (torch.float32, eps32)]:
        s_ours = s.to(dtype).requires_grad_(True)
        got = D.distillation_loss(s_ours, t.to(dtype), y, temperature=temperature, alpha=alpha)
        got.backward()
        assert abs(float(got.detach()) - float(want.detach())) <= 8 * k * eps * loss_magnitude
        grad_bound = 8 * eps * (alpha * temperature + 1 - alpha) / b
        assert float((s_ours.grad.double() - s_ref.grad).abs().max()) <= grad_bound, dtype


def test_loss_is_zero_when_student_equals_teacher_and_teacher_gets_no_gradient():
    s, t, y = _batch(1)
    t = t.clone().requires_grad_(True)
    loss = D.distillation_loss(t.detach().clone(), t, y, temperature=3.0, alpha=1.0)
    assert abs(float(loss)) < 1e-6
    s = s.requires_grad_(True)
    D.distillation_loss(s, t, y, temperature=3.0, alpha=0.7).backward()
    assert t.grad is None and s.grad is not None


def test_soft_gradient_stays_order_one_across_temperatures_thanks_to_t_squared():
    s0, t, y = _batch(2)
    b, k = s0.shape
    # Hinton et al. eq. 4: for large T, ∂(T²·KL)/∂s → (s − t)/(K·B) with zero-mean logits
    limit = ((s0 - s0.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))) / (k * b)
    norms, raw = {}, {}
    for temperature in [1.0, 2.0, 4.0, 8.0, 32.0, 64.0]:
        s = s0.clone().requires_grad_(True)
        D.distillation_loss(s, t, y, temperature=temperature, alpha=1.0).backward()
        norms[temperature] = float(s.grad.norm())
        raw[temperature] = norms[temperature] / temperature ** 2      # the KL's gradient without T²
        if temperature == 64.0:
            assert float((s.grad - limit).norm() / limit.norm()) < 0.03
    ref = float(limit.norm())
    assert all(0.5 * ref < n < 2 * ref for n in norms.values())       # O(1) at every T
    assert raw[64.0] < raw[1.0] / 1000                                # without T² it would vanish as 1/T²


# ------------------------------------------------------------------------ soft targets
def test_soft_targets_sum_to_one_and_match_softmax_at_t1():
    z = torch.randn(5, 7, generator=torch.Generator().manual_seed(3)) * 4
    for temperature in [0.1, 1.0, 3.0, 50.0]:
        p = D.soft_targets(z, temperature)
        # float32 softmax: the K exponentials are summed ((K − 1)·u, u = eps/2) and each is divided by that sum (≤ 2u),
        # so Σp, taken here in float64, is within (K + 1)·u of 1; 2K·eps32 leaves room for a second rounding of exp
        assert float((p.double().sum(-1) - 1).abs().max()) <= 2 * z.shape[-1] * torch.finfo(torch.float32).eps
        assert (p >= 0).all()
        assert torch.equal(p.argmax(-1), z.argmax(-1))                # the order of the classes is kept
    assert torch.allclose(D.soft_targets(z, 1.0), torch.softmax(z, -1))


def test_soft_targets_limits_uniform_and_one_hot():
    z = torch.tensor([[3.0, 1.0, -2.0, 0.5]])
    assert torch.allclose(D.soft_targets(z, 1e4), torch.full((1, 4), 0.25), atol=1e-3)
    assert torch.allclose(D.soft_targets(z, 1e-3), torch.tensor([[1.0, 0.0, 0.0, 0.0]]), atol=1e-6)
    entropy = [float(-(p * p.log()).sum()) for p in (D.soft_targets(z, t) for t in [0.5, 1, 2, 4, 8])]
    assert entropy == sorted(entropy)                                 # softer as T grows


# ------------------------------------------------------------------------ teacher
def test_ensemble_averages_logits_or_probabilities():
    torch.manual_seed(0)
    a, b = nn.Linear(6, 4), nn.Linear(6, 4)
    x = torch.randn(3, 6)
    with torch.no_grad():
        assert torch.allclose(D.Ensemble([a, b], "logits")(x), (a(x) + b(x)) / 2)
        for dtype in (torch.float32, torch.float64):
            members, xd = [copy.deepcopy(m).to(dtype) for m in (a, b)], x.to(dtype)
            p = torch.softmax(D.Ensemble(members, "probs")(xd), -1)
            logits = torch.stack([m(xd) for m in members]).double()
            want = torch.softmax(logits, -1).mean(0)                  # p̄, in float64
            # softmax(log p̄) = p̄ exactly; both sides use the same logits. Rounding, u = eps/2: a member's softmax
            # errs by ≤ u·(K + 3 + R) relative (exp of a rounded difference, a K-term sum, a division; R = the
            # logits' spread), the mean by u more; the log adds 2u·L absolute (L = max|log p̄|), and the final
            # softmax doubles its input's error and adds u·(K + 3 + L): ≤ u·(3K + 2R + 5L + 11) relative. The
            # float64 reference adds ≤ u64·(K + 4 + R); eps for u covers it and the second order.
            k, spread = logits.shape[-1], float((logits.amax(-1) - logits.amin(-1)).max())
            big_l = float(want.log().abs().max())
            bound = torch.finfo(dtype).eps * (3 * k + 2 * spread + 5 * big_l + 11) * want
            assert ((p.double() - want).abs() <= bound).all(), dtype


def test_build_teacher_lenet5_is_the_zoo_model(val):
    assert evaluate(PD.build_teacher("lenet5"), val) > 95.0


# ------------------------------------------------------------------------ subset
def test_subset_is_stratified_and_exact(train):
    for fraction in [0.03, 0.1, 0.5]:
        small = D.subset(train, fraction, seed=0)
        assert len(small) == round(fraction * len(train))
        per_class, full = torch.bincount(small.y, minlength=10), torch.bincount(train.y, minlength=10)
        assert ((per_class.double() - fraction * full.double()).abs() < 1).all()


def test_subset_images_come_from_the_split_with_their_labels(train):
    small = D.subset(train, 0.03, seed=4)
    where = {x.numpy().tobytes(): i for i, x in enumerate(train.x)}
    rows = [where[x.numpy().tobytes()] for x in small.x]             # KeyError if an image is not in train
    assert len(set(rows)) == len(rows) and torch.equal(train.y[rows], small.y)


def test_subset_is_deterministic_per_seed(train):
    a, b, c = (D.subset(train, 0.03, seed=s) for s in (5, 5, 6))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    whole = D.subset(train, 1.0, seed=0)
    assert torch.equal(whole.x, train.x) and torch.equal(whole.y, train.y)


# ------------------------------------------------------------------------ training
def test_train_student_learns_from_hard_and_soft_targets(train, val):
    small = D.subset(train, 0.1, seed=0)                             # 350 images
    teacher = PD.build_teacher("lenet5")
    accs = {}
    for name, kw in {"hard": {}, "soft": {"teacher": teacher, "temperature": 4.0, "alpha": 0.9}}.items():
        model, history = D.train_student(small, epochs=6, lr=0.05, seed=0, val=val, eval_every=3, **kw)
        accs[name] = evaluate(model, val)
        assert accs[name] > 50.0                                      # chance is 10 %
        assert history.eval_epochs == [0, 3, 6] and history.val_acc[-1] == accs[name]
        assert history.train_loss[-1] < history.train_loss[0]
    again, _ = D.train_student(small, teacher=teacher, temperature=4.0, alpha=0.9, epochs=6, lr=0.05, seed=0)
    assert evaluate(again, val) == accs["soft"]                       # deterministic per seed


def test_dark_knowledge_data():
    test = load_mnist("test", source="embedded")
    data = D.dark_knowledge(PD.build_teacher("lenet5"), test, [0, 1, 2], temperature=4.0)
    assert data["images"].shape == (3, 28, 28) and 0 <= data["images"].min() and data["images"].max() <= 1
    assert np.array_equal(data["hard"].argmax(1), data["labels"]) and np.all(data["hard"].sum(1) == 1)
    for key in ("soft_1", "soft_t"):
        assert np.allclose(data[key].sum(1), 1)
    assert np.array_equal(data["soft_1"].argmax(1), data["soft_t"].argmax(1))
    assert np.all(data["soft_t"].min(1) > data["soft_1"].min(1))     # the small probabilities grow with T


# ------------------------------------------------------------------------ precompute
def _row(config, vals, epochs=(0, 5, 10)):
    return {"config": {**config, "epochs": 10}, "eval_epochs": list(epochs), "val_mean": vals}


def test_choose_takes_best_mean_val_earliest_epoch_then_grid_order():
    rows = [_row({"lr": 0.01}, [99.0, 80.0, 81.0]), _row({"lr": 0.03}, [10.0, 81.0, 81.0]),
            _row({"lr": 0.1}, [10.0, 75.0, 81.0])]
    assert PD.choose(rows) == {"lr": 0.03, "epochs": 5, "val_acc": 81.0}   # epoch 0 (initial weights) ignored
    rows[2]["test_acc"] = 100.0                                      # never read
    assert PD.choose(rows)["lr"] == 0.03


def test_record_shape_and_consistency():
    from effdl.precompute import load_record
    rec = load_record("distillation")
    assert rec["data_fraction"] == 0.03 and rec["n_images"] == 105 and len(rec["seeds"]) >= 3
    for condition in ("full", "hard", "soft"):
        cfg = rec["chosen"][condition]
        assert cfg["lr"] in PD.GRID[condition]["lr"] and 1 <= cfg["epochs"] <= PD.GRID[condition]["epochs"]
        runs = rec["final"]["runs"][condition]
        assert sorted(runs) == sorted(str(s) for s in rec["seeds"])
        assert rec["summary"][condition]["mean"] == pytest.approx(np.mean(list(runs.values())), abs=1e-3)
        best = max(r["best_val"] for r in rec["grid_best_val"][condition])
        assert rec["chosen_val_acc"][condition] == best               # the choice is the validation argmax
    soft = rec["chosen"]["soft"]
    assert soft["teacher"] in D.TEACHERS and soft["temperature"] in PD.GRID["soft"]["temperature"]
    assert 0 <= soft["alpha"] <= 1
    assert rec["summary"]["teacher_acc"] == rec["teachers"][soft["teacher"]]["test_acc"]
    assert set(rec["curves"]) == {"full", "hard", "soft"}


# ------------------------------------------------------------------------ figures and exercise
def test_figures_have_titled_axes():
    import matplotlib.pyplot as plt

    from effdl.viz import training as views
    rec = {"eval_epochs": [0, 5, 10], "val_mean": [10.0, 60.0, 70.0], "val_std": [0.0, 2.0, 1.0]}
    data = {"labels": np.array([3]), "images": np.zeros((1, 28, 28)), "hard": np.eye(10)[[3]],
            "soft_1": np.full((1, 10), 0.1), "soft_t": np.full((1, 10), 0.1), "temperature": 4.0}
    figs = [views.softmax_temperatures({1: np.full(10, 0.1), 4: np.full(10, 0.1)}, label=3),
            views.dark_knowledge_figure(data),
            views.distillation_results({"teacher": 97.9, "full": {"mean": 90.0, "std": 1.0},
                                        "hard": {"mean": 70.0, "std": 2.0}, "soft": {"mean": 72.0, "std": 2.0}},
                                       {"all data": 58.9, "3 % hard": 44.5, "3 % soft": 57.0}),
            views.student_curves({"hard": rec, "soft": rec}, chosen={"hard": 5})]
    for fig in figs:
        assert any(ax.get_ylabel() for ax in fig.axes) and any(ax.get_title() for ax in fig.axes)
        plt.close(fig)


def test_exercise_check_accepts_the_library_and_rejects_a_missing_t_squared():
    def right(s, t, y, temperature, alpha):
        return D.distillation_loss(s, t, y, temperature=temperature, alpha=alpha)

    def no_t2(s, t, y, temperature, alpha):
        kl = F.kl_div(F.log_softmax(s / temperature, 1), F.softmax(t / temperature, 1), reduction="batchmean")
        return alpha * kl + (1 - alpha) * F.cross_entropy(s, y)

    assert "passed" in check_distillation_loss(right, seed=1)
    with pytest.raises(AssertionError, match="T²"):
        check_distillation_loss(no_t2, seed=1)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("temperature, exc", [(0, ValueError), (-1, ValueError), (math.nan, ValueError),
                                              (math.inf, ValueError), (True, TypeError), ("4", TypeError)])
def test_bad_temperature(temperature, exc):
    s, t, y = _batch()
    with pytest.raises(exc, match="temperature must be"):
        D.distillation_loss(s, t, y, temperature=temperature, alpha=0.5)
    with pytest.raises(exc, match="temperature must be"):
        D.soft_targets(s, temperature)


def test_bad_temperature_message():
    with pytest.raises(ValueError,
                       match=r"^soft_targets: temperature must be a real number in \(0, inf\); got 0\.0\.$"):
        D.soft_targets(torch.zeros(1, 3), 0)


@pytest.mark.parametrize("alpha, exc", [(1.5, ValueError), (-0.1, ValueError), (math.nan, ValueError),
                                        (False, TypeError)])
def test_bad_alpha(alpha, exc):
    s, t, y = _batch()
    with pytest.raises(exc, match="alpha must be"):
        D.distillation_loss(s, t, y, temperature=2.0, alpha=alpha)


@pytest.mark.parametrize("case, exc, match", [
    ("teacher_shape", ValueError, "teacher_logits must have"),
    ("labels_shape", ValueError, "labels must have shape"),
    ("labels_range", ValueError, r"labels must be class indices in \[0, 9\]"),
    ("labels_negative", ValueError, "labels must be class indices"),
    ("labels_float", TypeError, "labels must be a torch.Tensor of integers"),
    ("student_1d", ValueError, "student_logits must be a torch.Tensor of floating-point numbers with 2 dim"),
    ("student_int", TypeError, "student_logits must be a torch.Tensor of floating-point"),
    ("student_list", TypeError, "student_logits must be"),
])
def test_bad_loss_inputs(case, exc, match):
    s, t, y = _batch()
    args = {"teacher_shape": (s, t[:, :5], y), "labels_shape": (s, t, y[:3]), "labels_range": (s, t, y + 10),
            "labels_negative": (s, t, y - 20), "labels_float": (s, t, y.float()), "student_1d": (s[0], t[0], y[:1]),
            "student_int": (s.long(), t, y), "student_list": (s.tolist(), t, y)}[case]
    with pytest.raises(exc, match=match):
        D.distillation_loss(*args, temperature=2.0, alpha=0.5)


@pytest.mark.parametrize("fraction, exc", [(0, ValueError), (1.2, ValueError), (-0.5, ValueError),
                                           (True, TypeError), ("0.1", TypeError), (1e-5, ValueError)])
def test_bad_fraction(train, fraction, exc):
    with pytest.raises(exc, match="fraction must"):
        D.subset(train, fraction, seed=0)


def test_bad_subset_and_training_arguments(train):
    with pytest.raises(TypeError, match="split must be"):
        D.subset(train.x, 0.1)
    with pytest.raises(ValueError, match="seed must be"):
        D.subset(train, 0.1, seed=-1)
    with pytest.raises(ValueError, match="epochs must be"):
        D.train_student(train, epochs=-1)
    with pytest.raises(ValueError, match="lr must be"):
        D.train_student(train, lr=0.0)
    with pytest.raises(ValueError, match="temperature must be"):
        D.train_student(train, teacher=nn.Linear(784, 10), temperature=0.0)
    with pytest.raises(ValueError, match="condition must be"):
        PD.run_condition("medium", {}, 0, {})
    with pytest.raises(ValueError, match="name must be"):
        PD.build_teacher("resnet")
    with pytest.raises(TypeError, match="indices must be"):
        D.dark_knowledge(nn.Linear(784, 10), train, 3)
