"""effdl.models and effdl.train: shapes, counts, deterministic training, bad input."""
import pytest
import torch

from effdl import data, models, train


@pytest.mark.parametrize("name, params", [("lenet300", 266_610), ("lenet5", 431_080), ("lstm", 82_186)])
def test_models_shapes_and_counts(name, params):
    model = models.build_model(name, seed=0)
    assert models.count_parameters(model) == params
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_seeded_build_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = models.build_model("lenet5", seed=7)
    after = torch.rand(1)
    b = models.build_model("lenet5", seed=7)
    assert torch.equal(a.conv1.weight, b.conv1.weight)
    assert torch.equal(after, expected)  # the seeded build did not consume the global RNG


@pytest.mark.parametrize("kwargs, exc", [({"name": "lenet"}, ValueError), ({"name": 5}, TypeError),
                                         ({"name": "lenet5", "seed": -1}, ValueError),
                                         ({"name": "lenet5", "seed": 1.5}, TypeError)])
def test_build_model_bad_input(kwargs, exc):
    with pytest.raises(exc, match="name|seed"):
        models.build_model(**kwargs)


def test_count_parameters_bad_input():
    with pytest.raises(TypeError, match="model must be"):
        models.count_parameters("lenet5")


@pytest.fixture(scope="module")
def digits():
    return {s: data.load_digits(s) for s in ("train", "val", "test")}


class TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_fit_learns_and_is_deterministic(digits):
    torch.manual_seed(0)
    a = TinyNet()
    b = TinyNet()
    b.load_state_dict(a.state_dict())
    before = train.evaluate(a, digits["test"])
    history = train.fit(a, digits["train"], epochs=3, lr=0.05, val=digits["val"], seed=1, device="cpu")
    train.fit(b, digits["train"], epochs=3, lr=0.05, val=digits["val"], seed=1, device="cpu")
    assert torch.equal(a.fc.weight, b.fc.weight)
    assert train.evaluate(a, digits["test"]) > max(before, 85.0)
    assert len(history.train_loss) == 3 and history.train_loss[-1] < history.train_loss[0]
    assert history.best_val_acc == max([history.best_val_acc] + history.val_acc)


def test_keep_best_restores_best_validation_epoch(digits):
    torch.manual_seed(0)
    model = TinyNet()
    # a huge learning rate makes later epochs worse than the best one
    history = train.fit(model, digits["train"], epochs=4, lr=5.0, momentum=0.0, val=digits["val"],
                        seed=0, device="cpu")
    assert train.evaluate(model, digits["val"]) == history.best_val_acc


def test_after_step_hook_runs(digits):
    calls = []
    train.fit(TinyNet(), digits["val"], epochs=1, batch_size=60, lr=0.01, after_step=calls.append, device="cpu")
    assert len(calls) == 3  # 179 examples in batches of 60


def test_evaluate_counts_exactly(digits):
    model = TinyNet()
    preds = train.predict(model, digits["test"])
    correct = int((preds == digits["test"].y).sum())
    assert train.evaluate(model, digits["test"]) == 100.0 * correct / len(preds)


@pytest.mark.parametrize("kwargs, match", [
    ({"epochs": -1}, "epochs"), ({"lr": 0.0}, "lr"), ({"lr": float("nan")}, "lr"),
    ({"optimizer": "rmsprop"}, "optimizer"), ({"batch_size": 0}, "batch_size"),
    ({"momentum": 1.0}, "momentum"), ({"epochs": True}, "epochs"), ({"after_step": 3}, "after_step"),
    ({"keep_best": "yes"}, "keep_best"),
])
def test_fit_bad_input(digits, kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        train.fit(TinyNet(), digits["val"], **kwargs)


def test_fit_bad_split():
    with pytest.raises(TypeError, match="train must be"):
        train.fit(TinyNet(), torch.zeros(3, 64))
    with pytest.raises(TypeError, match="model must be"):
        train.evaluate("net", data.load_digits("val"))


def test_quiet_progress(monkeypatch):
    monkeypatch.setenv("EFFDL_QUIET", "1")
    items = [1, 2]
    assert train.progress(items) is items
    monkeypatch.delenv("EFFDL_QUIET")
    monkeypatch.delenv("CI", raising=False)
    assert list(train.progress(items)) == items


def test_seed_everything_bad_input():
    with pytest.raises(ValueError, match="seed must be"):
        train.seed_everything(-3)
