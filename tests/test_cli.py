"""The `effdl` command: reproduce registry, JSON shape, errors."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from effdl import cli, reproduce

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT.parent / "shared" / "reproduce_schema.py"


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "effdl", *args], capture_output=True, text=True, cwd=ROOT)


def test_reproduce_numbers_json_values():
    run = run_cli("reproduce", "numbers", "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    fmts = result["formats"]
    assert fmts["fp16"]["max"] == 65504.0 == float(np.finfo(np.float16).max)
    assert fmts["fp16"]["min_normal"] == pytest.approx(6.1035e-05, rel=1e-4)
    assert fmts["bf16"]["eps"] == torch.finfo(torch.bfloat16).eps
    assert fmts["fp32"]["eps"] == float(np.finfo(np.float32).eps)
    assert (fmts["int8"]["min"], fmts["int8"]["max"]) == (-128, 127)
    assert fmts["int32"]["max"] == np.iinfo(np.int32).max
    assert all(v.get("matches_numpy", v.get("matches_torch")) for v in fmts.values())
    assert result["fixed_point"]["resolution"] == 2.0 ** -result["fixed_point"]["fraction_bits"]


@pytest.mark.parametrize("name", sorted(reproduce.EXPERIMENTS))
def test_reproduce_json_has_the_keys_the_experiment_declares(name):
    run = run_cli("reproduce", name, "--json")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert reproduce.shape_problems(result, reproduce.EXPERIMENTS[name].keys) == []
    if "live" in result:      # a trained result: the record's numbers, and the live re-run within tolerance
        assert result["matches_record"] is result["live"]["matches_record"] is True, result["live"]
        assert set(result["live"]["tolerance_pts"]) == set(result["live"]["recorded"])
    if SCHEMA.is_file():     # the team's own checker, where the repository sits beside it
        check = subprocess.run([sys.executable, str(SCHEMA), name], input=run.stdout, capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr


def test_shape_problems_names_what_is_missing_or_mistyped():
    keys = {"a": float, "b": {"c": int, "d": list}, "e": bool}
    assert reproduce.shape_problems({"a": 1, "b": {"c": 2, "d": []}, "e": False, "extra": 0}, keys) == []
    assert reproduce.shape_problems({"a": "x", "b": {"c": 2.5}, "e": 1}, keys) == [
        "/a: expected float, got str", "/b/c: expected int, got float", "/b/d: missing", "/e: expected bool, got int"]
    assert reproduce.shape_problems({"a": 1, "b": [], "e": True}, keys) == ["/b: expected an object, got list"]


def test_reproduce_lists_and_text_output(capsys):
    assert cli.main(["reproduce"]) == 0
    assert "numbers" in capsys.readouterr().out
    assert cli.main(["reproduce", "numbers"]) == 0
    assert "fp16:" in capsys.readouterr().out


def test_unknown_experiment_is_a_clear_error():
    run = run_cli("reproduce", "nonsense")
    assert run.returncode == 2
    assert "name must be one of" in run.stderr and "Traceback" not in run.stderr


def test_data_verify_and_zoo_list(capsys):
    assert cli.main(["data", "verify"]) == 0
    assert capsys.readouterr().out.count("ok ") >= 5
    assert cli.main(["zoo", "list"]) == 0
    assert "lenet5" in capsys.readouterr().out


def test_experiment_registry_rejects_duplicates():
    with pytest.raises(ValueError, match="registered twice"):
        reproduce.experiment("numbers", chapter="01", summary="again", keys={})(lambda: {})


def test_to_json_refuses_nan():
    with pytest.raises(ValueError):
        reproduce.to_json({"x": float("nan")})


@pytest.mark.parametrize("argv, passed", [
    (["lab"], []),
    (["lab", "--no-browser", "--port", "8899"], ["--no-browser", "--port", "8899"]),
    (["lab", "--", "--allow-root"], ["--allow-root"]),
    (["lab", "--port=8899", "--", "x"], ["--port=8899", "--", "x"]),
])
def test_lab_passes_its_options_on_to_jupyter(monkeypatch, argv, passed):
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    assert cli.main(argv) == 0
    (cmd,) = calls
    assert cmd[:3] == [sys.executable, "-m", "jupyterlab"]
    assert cmd[3].startswith("--notebook-dir=") and cmd[3].endswith("chapters")
    assert cmd[4:] == passed


def test_version():
    import effdl
    run = run_cli("--version")
    assert run.returncode == 0 and run.stdout.strip() == f"effdl {effdl.__version__}"
