"""effdl.zoo: the shipped checkpoints load, reproduce their recorded accuracy, and fail clearly."""
import json
import shutil

import pytest

from effdl import data, zoo
from effdl.data import DataError
from effdl.train import evaluate


@pytest.mark.parametrize("name", zoo.names())
def test_checkpoint_reproduces_recorded_accuracy(name):
    model = zoo.load(name)
    record = zoo.info(name)
    assert evaluate(model, data.load_mnist("test", source="embedded")) == record["test_acc"]
    assert evaluate(model, data.load_mnist("val", source="embedded")) == record["val_acc"]
    # the chosen run is the grid's best on validation (selection never saw test)
    assert record["val_acc"] == max(run["val_acc"] for run in record["grid"])


def test_recorded_accuracies_are_sensible():
    info = zoo.info()
    assert info["models"]["lenet5"]["test_acc"] > 97
    assert info["models"]["lenet300"]["test_acc"] > 93
    assert info["models"]["lstm"]["test_acc"] > 90


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data.DATA_DIR, copy)
    path = copy / "zoo" / "lenet5.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="altered"):
        zoo.load("lenet5", data_dir=copy)


def test_foreign_checkpoint_is_a_clear_error(tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(data.DATA_DIR, copy)
    shutil.copy(copy / "zoo" / "lenet300.pt", copy / "zoo" / "lenet5.pt")
    data.refresh_manifest(copy)  # a consistent manifest, but the wrong model inside
    with pytest.raises(DataError, match="not an effdl checkpoint of 'lenet5'"):
        zoo.load("lenet5", data_dir=copy)


@pytest.mark.parametrize("name, exc", [("alexnet", ValueError), (None, TypeError)])
def test_load_bad_name(name, exc):
    with pytest.raises(exc, match="name must be"):
        zoo.load(name)


def test_train_zoo_writes_elsewhere_without_touching_data(tmp_path, monkeypatch):
    monkeypatch.setitem(zoo.RECIPES, "lenet300", {"epochs": 1, "lr_grid": [0.05], "batch_size": 256})
    record = zoo.train_zoo(tmp_path, ["lenet300"])
    assert (tmp_path / "lenet300.pt").is_file()
    saved = json.loads((tmp_path / "zoo.json").read_text())
    assert saved == record and saved["models"]["lenet300"]["best_epoch"] in (0, 1)


def test_train_zoo_bad_name(tmp_path):
    with pytest.raises(ValueError, match=r"^train_zoo: model_names\[0\] must be one of"):
        zoo.train_zoo(tmp_path, ["vgg"])
