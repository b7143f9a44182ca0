"""The book does not depend on the CPU it runs on: a cheap check in every test run.

The full proof is the whole suite run under several kernel selections
(``benchmarks/portability.py``, table in ``benchmarks/README.md``). This file
re-runs, in a subprocess, a few representative pieces under the kernels a
student's laptop may get instead of this machine's: PyTorch's generic
kernels (``ATEN_CPU_CAPABILITY=default``), MKL limited to SSE4.2, oneDNN
limited to AVX2 (no VNNI: its int8 GEMM saturates), one thread. Chapter 08
prints float32 rounding errors (as bounds) and chapter 13 re-runs a short
training against its record; the quantization tests check integer-only
inference bit for bit; the distillation loss is compared with a float64
oracle within a derived bound. A regression shows here, in CI, rather than on
a student's laptop.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OTHER_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                 "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}


def _pytest(*args, env_extra: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


def test_chapters_and_exact_integer_inference_under_other_kernels():
    run = _pytest("chapters/08_winograd.ipynb", "chapters/13_distillation_dsd.ipynb", "--chapters-subset",
                  "--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
                  "tests/test_quantization.py::test_integer_inference_equals_fake_quantization_on_the_test_set",
                  "tests/test_quantization.py::test_arbitrary_scales_use_jacob_multipliers_and_agree_on_predictions",
                  "tests/test_distillation.py::test_loss_matches_torch_kldiv_and_cross_entropy",
                  env_extra=OTHER_KERNELS)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "DEFAULT kernels, 1 threads" in run.stdout          # the override took effect


def test_a_kernel_selection_the_cpu_lacks_is_one_clear_line():
    run = _pytest("tests/test_portability.py", "--collect-only", env_extra={"ATEN_CPU_CAPABILITY": "sve256"})
    assert run.returncode != 0
    assert "ATEN_CPU_CAPABILITY=sve256 is not available here" in run.stderr
    assert "Traceback" not in run.stdout + run.stderr


@pytest.mark.parametrize("env, message", [
    ({"EFFDL_CHROMIUM": "/nonexistent/chromium"}, "EFFDL_CHROMIUM=/nonexistent/chromium is not an executable"),
])
def test_missing_chromium_stops_make_test_with_one_line(env, message):
    run = subprocess.run(["bash", str(ROOT / "scripts" / "ensure_chromium.sh")], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and message in run.stderr and len(run.stderr.strip().splitlines()) == 1


def _install_torch():
    import importlib.util
    spec = importlib.util.spec_from_file_location("install_torch", ROOT / "scripts" / "install_torch.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_set_up_chooses_the_torch_build_deliberately():
    it = _install_torch()
    cpu = it.pip_command("cpu", linux=True, cpu_index_reachable=True)
    assert cpu[-2:] == ["--extra-index-url", "https://download.pytorch.org/whl/cpu"] and it.TORCH in cpu
    assert "--extra-index-url" not in it.pip_command("cuda", linux=True, cpu_index_reachable=True)
    assert "--extra-index-url" not in it.pip_command("cpu", linux=False, cpu_index_reachable=True)   # macOS: CPU
    assert "--extra-index-url" not in it.pip_command("cpu", linux=True, cpu_index_reachable=False)   # offline
    with pytest.raises(ValueError, match="variant must be 'cpu' or 'cuda'; got 'rocm'"):
        it.pip_command("rocm", linux=True, cpu_index_reachable=True)
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "install_torch.py"), "gpu"],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "TORCH must be cpu or cuda; got 'gpu'" in run.stderr


def test_the_pinned_torch_is_the_one_installed_here():
    import re

    import torch
    pin = re.search(r'"torch==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert _install_torch().TORCH == f"torch=={pin}"
    assert torch.__version__.split("+")[0] == pin
