"""Tests for effdl.sharing: 1-D k-means against scikit-learn (same start, inertia no worse),
the three initialisations, Lloyd fixed-point properties; centroid gradients against a loop and
against autograd; weight sharing of pruned and dense layers (2**bits codebooks, zeros stay
zero); centroid fine-tuning keeps indexes and zeros; bad inputs."""
import doctest

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from torch import nn

import effdl.sharing as sharing
from effdl.data import Split, load_mnist
from effdl.models import build_model
from effdl.pruning import prune, prunable_parameters, pruned_copy, remove_masks
from effdl.sharing import (SharedModel, centroid_gradient, finetune_centroids, kmeans_1d, quantized_model,
                           share_weights)


def test_docstring_examples():
    """Includes the paper's 4×4 example: centroids 2.00/1.50/0.00/−1.00 → 1.96/1.48/−0.04/−0.97."""
    assert doctest.testmod(sharing).failed == 0


def inertia(x, codebook, labels):
    return float(((np.asarray(x, dtype=np.float64).ravel() - codebook[labels]) ** 2).sum())


def data_sets():
    rng = np.random.default_rng(0)
    normal = rng.normal(0, 0.05, 3000)
    pruned_like = normal[np.abs(normal) > 0.04]            # bimodal: the small weights are gone
    return {"normal": normal, "laplace": rng.laplace(0, 1, 2000), "pruned_like": pruned_like,
            "few_distinct": rng.integers(0, 5, 500).astype(float)}


@pytest.fixture(scope="module")
def pruned_lenet300():
    model = build_model("lenet300", seed=0)
    return remove_masks(pruned_copy(model, sparsity=0.9, scope="global"))


@pytest.fixture(scope="module")
def tiny_train():
    train = load_mnist("train")
    return Split("train", train.source, train.x[:256], train.y[:256])


# ------------------------------------------------------------------ k-means
@pytest.mark.parametrize("name", ["normal", "laplace", "pruned_like"])
@pytest.mark.parametrize("k", [1, 2, 7, 32])
def test_kmeans_matches_or_beats_sklearn_from_the_same_start(name, k):
    x = data_sets()[name]
    codebook, labels = kmeans_1d(x, k, "linear")
    start = np.linspace(x.min(), x.max(), k)[:, None]
    ref = KMeans(n_clusters=k, init=start, n_init=1).fit(x[:, None])
    assert inertia(x, codebook, labels) <= ref.inertia_ * (1 + 1e-6)


@pytest.mark.parametrize("init", sharing.INITS)
@pytest.mark.parametrize("name", ["normal", "pruned_like", "few_distinct"])
def test_kmeans_is_a_lloyd_fixed_point(init, name):
    x = data_sets()[name]
    k = 4 if name == "few_distinct" else 16
    codebook, labels = kmeans_1d(x, k, init, seed=3)
    assert codebook.shape == (k,) and labels.shape == x.shape and labels.dtype == np.int64
    assert np.all(np.diff(codebook) >= 0)                              # ascending
    dist = np.abs(x[:, None] - codebook[None, :])                       # (n, k)
    assert np.allclose(dist[np.arange(x.size), labels], dist.min(1))    # nearest centroid
    for j in np.unique(labels):                                         # each centroid is its mean
        assert codebook[j] == pytest.approx(x[labels == j].mean(), abs=1e-12)


def test_kmeans_initialisations():
    xs = np.sort(data_sets()["laplace"])
    assert np.allclose(sharing._initial_centroids(xs, 5, "linear", 0), np.linspace(xs[0], xs[-1], 5))
    q = sharing._initial_centroids(xs, 4, "density", 0)
    assert np.allclose(q, np.quantile(xs, [0.125, 0.375, 0.625, 0.875]))
    r = sharing._initial_centroids(xs, 6, "random", 7)
    assert np.all(np.isin(r, xs)) and np.unique(r).size == 6
    assert np.array_equal(r, sharing._initial_centroids(xs, 6, "random", 7))       # seeded
    assert not np.array_equal(r, sharing._initial_centroids(xs, 6, "random", 8))


def test_kmeans_small_cases():
    codebook, labels = kmeans_1d([3.0, 3.0, 3.0], 2)                   # constant: one cluster used
    assert np.allclose(codebook, 3.0) and set(labels.tolist()) <= {0, 1}
    codebook, labels = kmeans_1d([1.0, 2.0, 10.0], 3)                  # k = n: every value its own
    assert codebook.tolist() == [1.0, 2.0, 10.0] and labels.tolist() == [0, 1, 2]
    codebook, labels = kmeans_1d(torch.tensor([[0.0, 1.0], [9.0, 10.0]]), 2)   # tensors, any shape
    assert codebook.tolist() == [0.5, 9.5] and labels.tolist() == [0, 0, 1, 1]
    codebook, _ = kmeans_1d(np.arange(10), 1)                          # integers accepted
    assert codebook.tolist() == [4.5]


@pytest.mark.parametrize("kwargs, exc", [
    (dict(values=[], n_clusters=1), ValueError),
    (dict(values=[1.0, np.nan], n_clusters=1), ValueError),
    (dict(values=[1.0, np.inf], n_clusters=1), ValueError),
    (dict(values=[True, False], n_clusters=1), TypeError),
    (dict(values=["a", "b"], n_clusters=1), TypeError),
    (dict(values=[1.0, 2.0], n_clusters=0), ValueError),
    (dict(values=[1.0, 2.0], n_clusters=3), ValueError),
    (dict(values=[1.0, 2.0], n_clusters=True), TypeError),
    (dict(values=[1.0, 2.0], n_clusters=2.0), TypeError),
    (dict(values=[1.0, 2.0], n_clusters=1, init="kmeans++"), ValueError),
    (dict(values=[1.0, 2.0], n_clusters=1, init=None), TypeError),
    (dict(values=[1.0, 1.0, 2.0], n_clusters=3, init="random"), ValueError),   # 2 distinct values
    (dict(values=[1.0, 2.0], n_clusters=1, seed=-1), ValueError),
    (dict(values=[1.0, 2.0], n_clusters=1, max_iter=0), ValueError),
])
def test_kmeans_bad_inputs(kwargs, exc):
    with pytest.raises(exc, match=r"must be .*; got "):
        kmeans_1d(**kwargs)


# --------------------------------------------------------- centroid gradient
def test_centroid_gradient_equals_a_loop():
    rng = np.random.default_rng(1)
    grad = rng.normal(size=(7, 9))
    index = rng.integers(0, 5, size=(7, 9))
    expected = np.zeros(6)
    for g, i in zip(grad.ravel(), index.ravel()):
        expected[i] += g
    assert np.allclose(centroid_gradient(grad, index, 6), expected)    # cluster 5 unused: 0
    assert np.allclose(centroid_gradient(torch.tensor(grad), torch.tensor(index), 6), expected)


@pytest.mark.parametrize("grad, index, k, exc", [
    (np.zeros(3), np.zeros(4, dtype=int), 2, ValueError),               # shapes differ
    (np.zeros((2, 2)), np.zeros(4, dtype=int), 2, ValueError),
    (np.zeros(3), np.array([0, 1, 2]), 2, ValueError),                  # index past k
    (np.zeros(3), np.array([0, -1, 1]), 2, ValueError),
    (np.zeros(3), np.zeros(3), 2, TypeError),                           # float index
    (np.zeros(3), np.zeros(3, dtype=int), 0, ValueError),
    (np.zeros(3), np.zeros(3, dtype=int), True, TypeError),
    (np.zeros(0), np.zeros(0, dtype=int), 2, ValueError),               # empty
])
def test_centroid_gradient_bad_inputs(grad, index, k, exc):
    with pytest.raises(exc, match=r"must be .*; got "):
        centroid_gradient(grad, index, k)


# ------------------------------------------------------------ weight sharing
@pytest.mark.parametrize("bits", [2, 4, 6])
def test_share_weights_pruned_layers(pruned_lenet300, bits):
    shared = share_weights(pruned_lenet300, bits)
    weights = prunable_parameters(pruned_lenet300)
    assert list(shared.layers) == list(weights) and shared.arch == "lenet300"
    assert set(shared.others) == {"fc1.bias", "fc2.bias", "fc3.bias"}
    for name, layer in shared.layers.items():
        w = weights[name].detach().numpy()
        assert layer.reserves_zero and layer.codebook.size == 2 ** bits     # zero + 2**bits − 1 centroids
        assert layer.codebook[0] == 0 and np.all(layer.codebook[1:] != 0)
        q = layer.weight()
        assert q.dtype == np.float32 and q.shape == w.shape
        assert np.array_equal(q == 0, w == 0)                  # zeros stay zero, nothing else becomes zero
        assert np.array_equal(layer.index == 0, w == 0)
        kept = w != 0                                           # each weight goes to its nearest centroid
        dist = np.abs(w[kept][:, None].astype(np.float64) - layer.codebook[1:][None, :])
        # k-means assigns by float64 midpoints (≤ 2·eps64·|c| off); storing the centroids in float32 moves each by
        # ≤ u·|c|, u = eps32/2, so another centroid can be nearer by at most u·(|c_a| + |c_b|) ≤ eps32·max|c|
        bound = (np.finfo(np.float32).eps + 4 * np.finfo(np.float64).eps) * np.abs(layer.codebook).max()
        assert np.all(dist[np.arange(kept.sum()), layer.index[kept] - 1] - dist.min(1) <= bound)
        assert layer.nonzeros == int(kept.sum())


def test_share_weights_dense_layers_use_every_code():
    model = build_model("lenet300", seed=1)
    shared = share_weights(model, {"fc1.weight": 3, "fc2.weight": 2, "fc3.weight": 1}, init="density")
    sizes = {n: (layer.reserves_zero, layer.codebook.size) for n, layer in shared.layers.items()}
    assert sizes == {"fc1.weight": (False, 8), "fc2.weight": (False, 4), "fc3.weight": (False, 2)}
    model_q = quantized_model(shared)
    for name, w in prunable_parameters(model_q).items():
        assert torch.unique(w).numel() <= shared.layers[name].codebook.size
    assert torch.equal(model_q.fc1.bias, model.fc1.bias)        # biases are not quantized


def test_share_weights_reads_masks_and_leaves_rng_alone():
    masked = build_model("lenet5", seed=2)
    masks = prune(masked, sparsity=0.8)                          # masks attached, not removed
    plain = build_model("lenet5", seed=2)                        # the same weights, zeroed by hand
    with torch.no_grad():
        for name, mask in masks.items():
            plain.get_submodule(name.split(".")[0]).weight.mul_(mask)
    state = torch.random.get_rng_state()
    a, b = share_weights(masked, 4), share_weights(plain, 4)
    quantized_model(a)
    assert torch.equal(state, torch.random.get_rng_state())
    for name in a.layers:
        assert np.array_equal(a.layers[name].index, b.layers[name].index)
        assert np.array_equal(a.layers[name].codebook, b.layers[name].codebook)
    assert not isinstance(prunable_parameters(masked)["conv1.weight"], nn.Parameter)   # input untouched


def test_quantized_model_holds_the_shared_weights(pruned_lenet300):
    shared = share_weights(pruned_lenet300, 5, init="random")
    model = quantized_model(shared)
    assert not model.training
    for name, w in prunable_parameters(model).items():
        assert np.array_equal(w.detach().numpy(), shared.layers[name].weight())


@pytest.mark.parametrize("bits, init, exc", [
    (0, "linear", ValueError), (17, "linear", ValueError), (True, "linear", TypeError),
    (4.0, "linear", TypeError), ("4", "linear", TypeError),
    ({"fc1.weight": 4}, "linear", ValueError),                                        # missing layers
    ({"fc1.weight": 4, "fc2.weight": 4, "fc3.weight": 4, "fc4.weight": 4}, "linear", ValueError),
    ({"fc1.weight": 4, "fc2.weight": 0, "fc3.weight": 4}, "linear", ValueError),
    (4, "forgy", ValueError), (4, 1, TypeError),
])
def test_share_weights_bad_inputs(pruned_lenet300, bits, init, exc):
    with pytest.raises(exc, match=r"must be .*; got "):
        share_weights(pruned_lenet300, bits, init)


def test_share_weights_bad_models():
    with pytest.raises(TypeError, match="model must be"):
        share_weights(nn.Linear(3, 2), 4)
    with pytest.raises(TypeError, match="model must be"):
        share_weights("lenet300", 4)
    model = build_model("lenet300", seed=0)
    with torch.no_grad():
        model.fc3.weight.zero_()                                  # an empty (fully pruned) layer
    with pytest.raises(ValueError, match="'fc3.weight' must have a non-zero weight"):
        share_weights(model, 4)
    from effdl.models import LeNet300
    with pytest.raises(ValueError, match="model must be a lenet300 with the default sizes"):
        share_weights(LeNet300(hidden=(30, 10)), 4)


# ------------------------------------------------------ trained quantization
def test_autograd_groups_and_sums_the_weight_gradients(pruned_lenet300, tiny_train):
    """The parametrisation's centroid gradient is centroid_gradient of the dense weight gradient,
    rounded once to float32: summed in float64, in a fixed order, bit for bit."""
    shared = share_weights(pruned_lenet300, 3)
    x, y = tiny_train.x[:64], tiny_train.y[:64]
    trainable = sharing._trainable_model(shared, train_biases=False)
    nn.functional.cross_entropy(trainable(x), y).backward()
    plain = quantized_model(shared)
    nn.functional.cross_entropy(plain(x), y).backward()
    for name, layer in shared.layers.items():
        module = getattr(trainable, name.split(".")[0])
        got = module.parametrizations.weight[0].centroids.grad.numpy()
        grad = getattr(plain, name.split(".")[0]).weight.grad
        expected = centroid_gradient(grad, layer.index, layer.codebook.size)[1:]   # drop the reserved zero
        assert got.dtype == np.float32 and np.array_equal(got, expected.astype(np.float32))


@pytest.mark.parametrize("train_biases", [False, True])
def test_finetune_keeps_indexes_and_zeros(pruned_lenet300, tiny_train, train_biases):
    shared = share_weights(pruned_lenet300, 3)
    tuned, history = finetune_centroids(shared, tiny_train, None, epochs=1, lr=0.05, momentum=0.0,
                                        train_biases=train_biases, show_progress=False)
    assert isinstance(tuned, SharedModel) and len(history.train_loss) == 1
    for name, layer in tuned.layers.items():
        before = shared.layers[name]
        assert np.array_equal(layer.index, before.index)                 # assignments fixed
        assert layer.codebook[0] == 0 and np.array_equal(layer.weight() == 0, before.weight() == 0)
        assert not np.array_equal(layer.codebook, before.codebook)      # centroids moved
    same_bias = all(np.array_equal(tuned.others[n], shared.others[n]) for n in shared.others)
    assert same_bias != train_biases


def test_finetune_one_plain_sgd_step_is_the_paper_update(pruned_lenet300, tiny_train):
    """One full batch, momentum 0: c_k ← c_k − lr · Σ_{i: idx_i = k} ∂L/∂w_i.

    The batch is one image: over B images a weight's float32 gradient sums B terms, in fit's shuffled
    order there and in this order here. With one there is no such sum, and on one thread (as
    finetune_centroids runs) the plain model's float32 gradients are the trainable one's bit for bit."""
    shared = share_weights(pruned_lenet300, 3)
    batch = Split("train", "embedded", tiny_train.x[:1], tiny_train.y[:1])
    lr = 0.1
    tuned, _ = finetune_centroids(shared, batch, None, epochs=1, lr=lr, momentum=0.0, batch_size=1,
                                  show_progress=False)
    plain = quantized_model(shared)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        nn.functional.cross_entropy(plain(batch.x), batch.y).backward()
    finally:
        torch.set_num_threads(threads)
    eps32 = np.finfo(np.float32).eps
    for name, layer in shared.layers.items():
        grad = getattr(plain, name.split(".")[0]).weight.grad
        g = centroid_gradient(grad, layer.index, layer.codebook.size)
        expected = layer.codebook.astype(np.float64) - lr * g
        # Left: float32 roundings (u = eps32/2) of g (its float64 sum rounded once, u·|g|), of lr and of lr·g
        # (u·lr·|g| each) and of the new centroid (u·|c − lr·g|): ≤ u·(|c| + 4·lr·|g|) ≤ eps32·(|c| + 2·lr·|g|)
        bound = eps32 * (np.abs(layer.codebook) + 2 * lr * np.abs(g))
        assert np.all(np.abs(tuned.layers[name].codebook[1:] - expected[1:]) <= bound[1:])
        assert np.any(np.abs(lr * g[1:]) > 100 * bound[1:])                # the step is far above the rounding


def test_finetune_with_val_never_ends_worse_on_val(pruned_lenet300, tiny_train):
    val = load_mnist("val")
    shared = share_weights(pruned_lenet300, 2)
    tuned, history = finetune_centroids(shared, tiny_train, val, epochs=2, lr=0.5, show_progress=False)
    from effdl.train import evaluate
    assert evaluate(quantized_model(tuned), val) == history.best_val_acc >= evaluate(quantized_model(shared), val)


@pytest.mark.parametrize("kwargs, exc", [
    (dict(shared="x"), TypeError), (dict(lr=0.0), ValueError), (dict(lr=True), TypeError),
    (dict(epochs=-1), ValueError), (dict(train_biases=1), TypeError), (dict(train="x"), TypeError),
])
def test_finetune_bad_inputs(pruned_lenet300, tiny_train, kwargs, exc):
    args = dict(shared=share_weights(pruned_lenet300, 2), train=tiny_train, val=None, epochs=0, lr=0.1)
    args.update(kwargs)
    with pytest.raises(exc, match=r"must be .*; got "):
        finetune_centroids(args.pop("shared"), args.pop("train"), args.pop("val"), **args)
