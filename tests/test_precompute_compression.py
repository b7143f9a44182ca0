"""Chapter 4's shipped Deep Compression files and the code around them: the precomputed record
agrees with the files on disk and their test accuracy; the greedy width search lowers the largest
layer first and stops at the first refusal; the stream statistics agree with the file's bytes;
mean_loss and matvec_times against their references; the exercise checks accept right answers and
reject wrong ones."""
import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from effdl import coding, compression, precompute, pruning, zoo
from effdl.data import load_mnist, verified_path
from effdl.exercises import check_huffman_code, check_relative_index
from effdl.precompute import compression as pc
from effdl.sharing import share_weights
from effdl.train import evaluate, mean_loss
from bounds import rounding_bound


@pytest.fixture(scope="module")
def record():
    return precompute.load_record("compression")


@pytest.mark.parametrize("arch", ["lenet300", "lenet5"])
def test_shipped_file_matches_its_record(record, arch):
    path = verified_path(f"zoo/{arch}.dc")
    chosen = record[arch]["chosen"]
    assert os.path.getsize(path) == chosen["sizes"]["huffman"]
    assert chosen["sizes"]["dense"] == 4 * sum(p.numel() for p in zoo.load(arch).parameters())
    assert evaluate(compression.read_compressed(path), load_mnist("test")) == chosen["accuracy"]["file"]
    assert chosen["outputs_match"] is True
    shared = compression.read_shared(path)
    assert {n: l.n_bits for n, l in shared.layers.items()} == chosen["bits"]
    # the search only ever accepted what met both validation floors
    for t in record[arch]["greedy_trials"]:
        assert t["accepted"] == (t["val_file"] >= record[arch]["val_floor"]
                                 and t["val_loss_file"] <= record[arch]["val_max_loss"])


def test_greedy_lowers_largest_layer_first_and_stops_at_refusal(monkeypatch, tmp_path):
    model = torch.nn.Sequential()
    model.register_parameter("big", torch.nn.Parameter(torch.ones(100)))
    model.register_parameter("small", torch.nn.Parameter(torch.ones(10)))
    calls = []

    def fake_trial(pruned, dense, bits, index_bits, lr, splits, path):
        calls.append(dict(bits))
        ok = bits["big"] >= 4 and bits["small"] >= 5          # the "validation" refuses below these
        return {"bits": dict(bits), "val_file": 90.0 if ok else 80.0, "val_loss_file": 0.1}

    monkeypatch.setattr(pc, "_trial", fake_trial)
    bits, trials = pc.greedy_bits(model, None, {"big": 6, "small": 6}, 1e-3, None, tmp_path,
                                  floor=90.0, max_loss=0.2)
    assert bits == {"big": 4, "small": 5}
    assert [c["big"] for c in calls[:3]] == [5, 4, 3] and all(c["small"] == 6 for c in calls[:3])
    assert [t["accepted"] for t in trials] == [True, True, False, True, False]


def test_layer_streams_agree_with_the_file(tmp_path):
    shared = compression.read_shared(verified_path("zoo/lenet300.dc"))
    compression.write_compressed(tmp_path / "m.dc", shared, index_bits=5)
    breakdown = compression.size_breakdown(tmp_path / "m.dc")
    for name, layer in shared.layers.items():
        s = compression.layer_streams(layer, 5)
        row = breakdown["layers"][name]
        assert s["weight_index"].size == row["n_entries"] == layer.nonzeros + s["n_fillers"]
        assert s["n_fillers"] == row["n_fillers"]
        n = s["weight_index"].size
        assert row["weight_index_huffman"] == -(-round(s["weight_cost"]["huffman_bits"] * n) // 8)
        assert row["relative_index_huffman"] == -(-round(s["index_cost"]["huffman_bits"] * n) // 8)
        for cost in (s["weight_cost"], s["index_cost"]):
            assert cost["entropy_bits"] <= cost["huffman_bits"] + 1e-12 < cost["entropy_bits"] + 1
        assert np.array_equal(coding.relative_index_decode(s["relative_index"], s["weight_index"], layer.index.size),
                              compression._csc(layer.index))


def test_layer_streams_dense_layer_and_bad_input():
    lenet5 = share_weights(zoo.load("lenet5_pruned"), 8)
    s = compression.layer_streams(lenet5.layers["conv1.weight"], 4)
    assert s["relative_index"].size in (0, s["weight_index"].size)
    with pytest.raises(TypeError, match="layer must be"):
        compression.layer_streams(np.zeros(3), 4)
    with pytest.raises(ValueError, match="index_bits must be"):
        compression.layer_streams(lenet5.layers["fc1.weight"], 17)


def test_mean_loss_is_cross_entropy():
    model, split = zoo.load("lenet300"), load_mnist("val")
    # In float64: mean_loss runs batches of 128, the reference all images at once, maybe summing in other
    # orders, and Higham's bound through the net in float32 is larger than the loss.
    model64 = copy.deepcopy(model).double()
    split64 = type(split)(split.name, split.source, split.x.double(), split.y)
    with torch.no_grad():
        logits = model64(split64.x)
        expected = float(torch.nn.functional.cross_entropy(logits, split64.y))
        # Each run's logits are within R of the exact ones, so the cross-entropies (2-Lipschitz in the largest
        # logit change) differ by ≤ 4·max_k R; each evaluates a K-term log-sum-exp and a subtraction, ≤ (K + 4)·u·
        # (|lse| + |z_y|); each sums N losses, ≤ N·u·Σℓ. u = eps64/2, so the two sides' u's add up to eps64.
        eps, (n, k) = torch.finfo(torch.float64).eps, logits.shape
        z_y = logits.gather(1, split64.y[:, None])[:, 0]
        evaluation = (k + 4) * eps * (torch.logsumexp(logits, 1).abs() + z_y.abs())
        bound = float((4 * rounding_bound(model64, split64.x).amax(1) + evaluation).mean()) + n * eps * expected
    assert abs(mean_loss(model64, split64, batch_size=128) - expected) <= bound
    with pytest.raises(TypeError, match="split must be"):
        mean_loss(model, [1, 2])


@pytest.mark.parametrize("backend", ["torch", "scipy"])
def test_matvec_times(backend):
    w = torch.zeros(50, 80)
    w[::3, ::2] = 1.5
    r = pruning.matvec_times(w, backend=backend, repeats=3)
    assert r["density"] == pytest.approx(float((w != 0).float().mean()))
    assert r["dense_s"] > 0 and r["sparse_s"] > 0 and r["speedup"] == pytest.approx(r["dense_s"] / r["sparse_s"])


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"weight": torch.zeros(5)}, ValueError, "weight must be a torch.Tensor of floating-point numbers with 2 dimensions"),
    ({"weight": np.zeros((3, 3))}, TypeError, "weight must be"),
    ({"weight": torch.zeros(3, 3), "backend": "mkl"}, ValueError, "backend must be"),
    ({"weight": torch.zeros(3, 3), "repeats": 0}, ValueError, "repeats must be"),
    ({"weight": torch.zeros(3, 3), "batch_size": True}, TypeError, "batch_size must be"),
    ({"weight": torch.zeros(3, 3), "backend": "scipy", "device": "meta"}, ValueError, "device must be the CPU"),
])
def test_matvec_times_bad_input(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        pruning.matvec_times(**kwargs)


def test_exercise_checks_accept_right_and_reject_wrong_answers():
    assert "round trip exact" in check_relative_index(lambda w, b: coding.relative_index_encode(w, b)[:2])
    assert "optimal" in check_huffman_code(coding.huffman_code)

    def no_fillers(w, b):
        nz = np.flatnonzero(w)
        return np.diff(nz, prepend=-1) - 1, w[nz]

    with pytest.raises(AssertionError, match="filler"):
        check_relative_index(no_fillers)
    with pytest.raises(AssertionError, match="not optimal"):
        check_huffman_code(lambda counts: {s: format(i, "08b") for i, s in enumerate(counts)})
    with pytest.raises(AssertionError, match="prefix"):
        check_huffman_code(lambda counts: {s: "1" * (i + 1) if i else "1" for i, s in enumerate(counts)})
