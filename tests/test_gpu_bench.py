"""Chapter 16's GPU measurements (effdl.hardware.gpu_bench) and the chapters that show them (12, 16).

No GPU is needed: the CUDA paths run on the CPU with the device, the timer
and the sparse kernels replaced by mocks where the real ones need CUDA, and
the checks that only a GPU can make (``needs_cuda``) run where there is one.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
import torch
from torch import nn
from torch.sparse import SparseSemiStructuredTensor

from effdl.hardware import gpu_bench
from effdl.hardware.gpu_bench import device as gdevice
from effdl.hardware.gpu_bench import kernels, recorded, report, training_step

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_appendix.py"
needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error path")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


# ------------------------------------------------------------------ helpers
class FakeClock:
    """A CUDA stand-in: events read a clock that each measured call advances by its cost."""

    def __init__(self, costs):
        self.now, self.costs, self.calls, self.events, self.synced = 0.0, list(costs), 0, 0, 0

    def fn(self):
        self.now += self.costs[min(self.calls, len(self.costs) - 1)]
        self.calls += 1

    def install(self, monkeypatch):
        clock = self

        class Event:
            def __init__(self, enable_timing=False):
                assert enable_timing
                clock.events += 1
                self.t = None

            def record(self):
                self.t = clock.now

            def synchronize(self):
                clock.synced += 1

            def elapsed_time(self, other):
                return other.t - self.t

        monkeypatch.setattr(torch.cuda, "Event", Event)
        monkeypatch.setattr(torch.cuda, "synchronize", lambda: None)


@pytest.fixture
def on_cpu(monkeypatch):
    """Run the measuring functions on the CPU: CUDA "present", tensors on the CPU, each timing = one call."""
    timed = []

    def one_call(fn, *, calls, repeats, warmup):
        fn()
        timed.append((calls, repeats, warmup))
        return 2.0                                            # ms per call
    monkeypatch.setattr(gdevice, "DEVICE", "cpu")
    for module in (kernels, training_step):
        monkeypatch.setattr(module, "_require_cuda", lambda what: None)
        monkeypatch.setattr(module, "_event_ms", one_call)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (9, 0))
    return timed


def fake_report(*, device="NVIDIA H200", date="2026-12-01", model="small_cnn", n_params=1_150_000, failed=()):
    run = {
        "effdl": "0.1.0", "quick": False, "date": date, "section_seconds": {},
        "device": {"name": device, "capability": [9, 0]},
        "copy": {"n_bytes": 1 << 30, "ms": 0.5, "gbs": 4000.0},
        "matmul": {d: {"dtype": d, "n": 8192, "ms": 1.0, "tflops": t}
                   for d, t in zip(gpu_bench.MATMUL_DTYPES, (50.0, 350.0, 700.0, 690.0))},
        "int8": {"m": 8192, "k": 8192, "n": 8192, "int8_tops": {"b_col_major": 1200.0, "b_row_major": 130.0},
                 "int8_ms": {"b_col_major": 0.9, "b_row_major": 8.4},
                 "exact": {"b_col_major": True, "b_row_major": True},
                 "fp16_ms": 1.6, "fp16_tflops": 690.0},
        "sparse": [{"m": 8192, "k": 8192, "n": 8192, "backend": "cusparselt", "speedup": 1.3, "alg_id": 1},
                   {"m": 16384, "k": 4096, "n": 4096, "error": "OutOfMemoryError: CUDA out of memory"}],
        "training_step": {"model": {"name": model, "n_params": n_params, "input": "3×32×32"}, "batch_size": 256,
                          "steps": 10, "step_ms": {"fp32": 14.0, "tf32": 5.0, "amp_bf16": 5.5, "amp_fp16": 5.2}},
        "autocast": {"arch": "lenet5", "epochs": 2, "fp32": {"seconds": 3.0, "test_acc": 97.0},
                     "fp16": {"seconds": 2.5, "test_acc": 97.1}},
    }
    for name in failed:
        run[name] = {"error": "RuntimeError: boom"}
    return run


# ------------------------------------------------------------------ without CUDA, bad input
CUDA_CALLS = [lambda: gpu_bench.matmul_throughput("bf16", n=256), lambda: gpu_bench.int8_matmul(m=64),
              lambda: gpu_bench.sparse_matmul(m=128), lambda: gpu_bench.training_step_times(steps=1),
              lambda: gpu_bench.copy_bandwidth(n_bytes=4096), gpu_bench.gpu_report, gpu_bench.device_name,
              gpu_bench.device_info, gpu_bench.sparse_backend]


@needs_no_cuda
@pytest.mark.parametrize("call", CUDA_CALLS)
def test_gpu_functions_raise_clearly_without_cuda(call):
    assert gpu_bench.cuda_available() is False
    with pytest.raises(RuntimeError, match="needs a CUDA device; none found"):
        call()


@pytest.mark.parametrize("call, exc, match", [
    (lambda: gpu_bench.matmul_throughput("fp8"), ValueError, "dtype must be one of"),
    (lambda: gpu_bench.matmul_throughput("fp32", n=0), ValueError, "n must be an integer in"),
    (lambda: gpu_bench.matmul_throughput("fp32", calls=0), ValueError, "calls must be an integer in"),
    (lambda: gpu_bench.int8_matmul(m=16), ValueError, "m must be > 16"),
    (lambda: gpu_bench.int8_matmul(m=64, k=12), ValueError, "multiples of 8"),
    (lambda: gpu_bench.sparse_matmul(m=100), ValueError, "multiples of 64"),
    (lambda: gpu_bench.sparse_matmul(m=128, seed=-1), ValueError, "seed must be"),
    (lambda: gpu_bench.sparse_matmul(m=128, backend="cusparse"), ValueError, "backend must be one of"),
    (lambda: gpu_bench.training_step_times(modes=("fp64",)), ValueError, "modes\\[0\\] must be one of"),
    (lambda: gpu_bench.training_step_times(modes=()), ValueError, "training_step_times: modes must be a list"),
    (lambda: gpu_bench.training_step_times(batch_size=True), TypeError, "batch_size must be an integer"),
    (lambda: gpu_bench.copy_bandwidth(n_bytes=10), ValueError, "n_bytes must be"),
    (lambda: gpu_bench.two_four_mask(torch.randn(3, 6)), ValueError, "multiple of 4"),
    (lambda: gpu_bench.two_four_mask([1.0, 2.0, 3.0, 4.0]), TypeError, "two_four_mask: weight must be a torch.Tensor"),
    (lambda: gpu_bench.report_rows({"copy": {}}), ValueError, "report must hold"),
    (lambda: gpu_bench.gpu_report(section_timeout_s=0.0), ValueError, "section_timeout_s must be"),
    (lambda: gpu_bench.gpu_report(out=3), TypeError, "out must be a path"),
    (lambda: gpu_bench.gpu_mode(environ="EFFDL_GPU=1"), TypeError, "environ must be a mapping"),
    (lambda: gpu_bench.recorded_runs(section="gpu"), ValueError, "section must be one of"),
    (lambda: gpu_bench.comparison_table([{}], chip="A100"), ValueError, "chip must be one of"),
    (lambda: gpu_bench.make_train_step(nn.Linear(2, 2), torch.zeros(1, 2), torch.zeros(1), "fp8"), ValueError,
     "mode must be one of")])
def test_gpu_bench_bad_input_is_caught_before_the_device(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


# ------------------------------------------------------------------ timing: one event pair around N calls
def test_event_timing_brackets_back_to_back_calls_with_one_event_pair_and_takes_the_median(monkeypatch):
    # warm-up 2 calls at 100 ms (must not count), then 3 repeats of 4 calls: 1 ms each, then 9, then 2
    clock = FakeClock([100.0] * 2 + [1.0] * 4 + [9.0] * 4 + [2.0] * 4)
    clock.install(monkeypatch)
    ms = gdevice._event_ms(clock.fn, calls=4, repeats=3, warmup=2)
    assert ms == 2.0                                    # the median of (1, 9, 2) ms per call
    assert clock.calls == 2 + 3 * 4 and clock.events == 2 * 3 and clock.synced == 3   # one pair per repeat


# ------------------------------------------------------------------ TF32 switches
def test_tf32_switch_uses_the_fp32_precision_api_and_restores_it():
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("this torch has no fp32_precision API")
    before = matmul.fp32_precision, conv.fp32_precision
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # the old allow_tf32 flags would warn
        with gdevice._tf32(True):
            assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
        with gdevice._tf32(False):
            assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
    assert (matmul.fp32_precision, conv.fp32_precision) == before
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32   # no mix of old and new left: no raise


def test_tf32_switch_falls_back_to_allow_tf32_on_an_older_torch(monkeypatch):
    old_matmul, old_cudnn = SimpleNamespace(allow_tf32=False), SimpleNamespace(allow_tf32=True)   # no fp32_precision
    monkeypatch.setattr(torch.backends.cuda, "matmul", old_matmul)
    monkeypatch.setattr(torch.backends, "cudnn", old_cudnn)
    with gdevice._tf32(True):
        assert old_matmul.allow_tf32 is True and old_cudnn.allow_tf32 is True
    assert old_matmul.allow_tf32 is False and old_cudnn.allow_tf32 is True
    with pytest.raises(KeyError), gdevice._tf32(False):
        assert old_matmul.allow_tf32 is False and old_cudnn.allow_tf32 is False
        raise KeyError("restored on the way out")
    assert old_cudnn.allow_tf32 is True


# ------------------------------------------------------------------ kernels on the CPU, with mocks
def test_matmul_and_copy_build_their_inputs_on_the_device_and_time_them(on_cpu, monkeypatch):
    seen = []
    real_mm = torch.mm
    monkeypatch.setattr(torch, "mm",
                        lambda a, b, out=None: seen.append((a.device.type, a.dtype)) or real_mm(a, b, out=out))
    for dtype in gpu_bench.MATMUL_DTYPES:
        r = gpu_bench.matmul_throughput(dtype, n=64, calls=7, repeats=3, warmup=1)
        assert r["ms"] == 2.0 and r["tflops"] == pytest.approx(2 * 64 ** 3 / 2e-3 / 1e12)
    assert [t for _, t in seen] == [torch.float32, torch.float32, torch.bfloat16, torch.float16]
    assert {d for d, _ in seen} == {"cpu"}                     # gdevice.DEVICE, "cuda" on a GPU
    assert on_cpu == [(7, 3, 1)] * 4
    c = gpu_bench.copy_bandwidth(n_bytes=4096)
    assert c["gbs"] == pytest.approx(2 * 4096 / 2e-3 / 1e9)


def test_int8_matmul_measures_both_layouts_of_the_same_b(on_cpu, monkeypatch):
    layouts = []
    real = torch._int_mm

    def spy(a, b):
        layouts.append(b.stride())
        return real(a, b)
    monkeypatch.setattr(torch, "_int_mm", spy)
    r = gpu_bench.int8_matmul(m=32, k=16, n=24)
    assert set(r["int8_tops"]) == set(gpu_bench.INT8_LAYOUTS) == {"b_row_major", "b_col_major"}
    assert r["exact"] == {"b_row_major": True, "b_col_major": True}
    assert (24, 1) in layouts and (1, 16) in layouts          # (k, n) row-major and the (n, k).t() view
    assert r["int8_tops"]["b_col_major"] == pytest.approx(2 * 32 * 16 * 24 / 2e-3 / 1e12)


class _Packed(torch.Tensor):
    """A stand-in for a SparseSemiStructuredTensor on the CPU: a dense tensor with the subclass's fields."""


def test_sparse_matmul_chooses_the_backend_searches_the_algorithm_and_restores_the_flag(on_cpu, monkeypatch):
    flags, searched = [], []

    def compress(a):
        flags.append(SparseSemiStructuredTensor._FORCE_CUTLASS)
        t = a.clone().as_subclass(_Packed)
        t.packed, t.alg_id_cusparselt = object(), 0
        return t

    def search(packed, b, *args, **kwargs):
        searched.append((packed, args, kwargs))
        return 3
    monkeypatch.setattr(kernels, "to_sparse_semi_structured", compress)
    monkeypatch.setattr(torch, "_cslt_sparse_mm_search", search)
    monkeypatch.setattr(torch.backends.cusparselt, "is_available", lambda: True)
    monkeypatch.setattr(torch, "mm", lambda a, b: torch.matmul(a.as_subclass(torch.Tensor).float(), b.float()))
    before = SparseSemiStructuredTensor._FORCE_CUTLASS
    r = gpu_bench.sparse_matmul(m=64)
    assert r["backend"] == "cusparselt" and r["alg_id"] == 3 and flags == [False]
    assert searched[0][1:] == ((), {})                        # the same call torch.mm makes: no transposes
    assert r["speedup"] == 1.0 and r["max_abs_error"] < 0.5
    r = gpu_bench.sparse_matmul(m=64, backend="cutlass")
    assert r["backend"] == "cutlass" and r["alg_id"] is None and flags == [False, True]
    assert SparseSemiStructuredTensor._FORCE_CUTLASS is before    # restored
    monkeypatch.setattr(torch.backends.cusparselt, "is_available", lambda: False)
    assert gpu_bench.sparse_backend() == "cutlass"
    with pytest.raises(RuntimeError, match="needs a torch build with cuSPARSELt"):
        gpu_bench.sparse_matmul(m=64, backend="cusparselt")


def test_sparse_matmul_falls_back_to_algorithm_0_when_the_search_fails(on_cpu, monkeypatch):
    def compress(a):
        t = a.clone().as_subclass(_Packed)
        t.packed, t.alg_id_cusparselt = object(), 0
        return t

    def search(packed, b):
        raise RuntimeError("CUDA error: invalid algorithm id")
    monkeypatch.setattr(kernels, "to_sparse_semi_structured", compress)
    monkeypatch.setattr(torch, "_cslt_sparse_mm_search", search)
    monkeypatch.setattr(torch.backends.cusparselt, "is_available", lambda: True)
    monkeypatch.setattr(torch, "mm", lambda a, b: torch.matmul(a.as_subclass(torch.Tensor).float(), b.float()))
    r = gpu_bench.sparse_matmul(m=64)
    assert r["alg_id"] == 0 and r["alg_search_error"] == "RuntimeError: CUDA error: invalid algorithm id"
    assert r["speedup"] == 1.0


def test_sparse_alg_search_result_may_be_an_int_or_a_tuple(monkeypatch):
    fake = SimpleNamespace(packed="P")
    monkeypatch.setattr(torch, "_cslt_sparse_mm_search", lambda packed, b: (2, 1, -1, 5))
    assert kernels._search_alg_id(fake, None) == 2
    monkeypatch.setattr(torch, "_cslt_sparse_mm_search", lambda packed, b: 4)
    assert kernels._search_alg_id(fake, None) == 4


def test_sparse_needs_compute_capability_8(on_cpu, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    with pytest.raises(RuntimeError, match="compute capability >= 8.0.*sm_75"):
        gpu_bench.sparse_backend()
    with pytest.raises(RuntimeError, match="sm_75"):
        gpu_bench.sparse_matmul(m=64)


def test_forced_backend_restores_the_class_flag_after_an_error():
    before = SparseSemiStructuredTensor._FORCE_CUTLASS
    with pytest.raises(ZeroDivisionError), kernels._forced_backend("cutlass"):
        assert SparseSemiStructuredTensor._FORCE_CUTLASS is True
        1 / 0
    assert SparseSemiStructuredTensor._FORCE_CUTLASS is before


def test_training_step_times_record_the_model_and_time_every_mode(on_cpu):
    r = gpu_bench.training_step_times(batch_size=4, image_size=8, steps=2, repeats=1, warmup=0)
    assert set(r["step_ms"]) == set(gpu_bench.STEP_MODES) and r["speedup"]["fp32"] == 1.0
    n_params = sum(p.numel() for p in gpu_bench.small_cnn().parameters())
    assert r["model"] == {"name": "small_cnn", "n_params": n_params, "input": "3×8×8"} and n_params > 1e6
    assert on_cpu == [(2, 1, 0)] * 4


def test_two_four_mask_oracle():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(6, 5, 8, generator=gen)
    mask = gpu_bench.two_four_mask(w)
    groups, m = w.abs().reshape(-1, 4), mask.reshape(-1, 4)
    assert (m.sum(1) == 2).all() and mask.float().mean() == 0.5
    want = groups >= groups.sort(dim=1, descending=True).values[:, 1:2]        # the two largest per group
    assert torch.equal(m, want)
    ties = gpu_bench.two_four_mask(torch.tensor([1.0, -1.0, 1.0, 1.0]))
    assert ties.tolist() == [True, True, False, False]                          # lower index wins a tie


def test_make_train_step_runs_each_mode_on_the_cpu():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 8, 8, generator=gen), torch.randint(0, 10, (16,), generator=gen)
    torch.manual_seed(0)
    base = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    for mode in gpu_bench.STEP_MODES:
        model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
        model.load_state_dict(base.state_dict())
        step = gpu_bench.make_train_step(model, x, y, mode)
        losses = [float(step()) for _ in range(4)]
        assert losses[-1] < losses[0], (mode, losses)
        assert step.scaler.is_enabled() == (mode == "amp_fp16")


# ------------------------------------------------------------------ the report: isolated sections, partial JSON
def test_gpu_report_isolates_sections_prints_a_line_each_and_writes_json_after_each(monkeypatch, tmp_path, capsys):
    out = tmp_path / "run.json"
    on_disk = {}

    def peek():                                  # what a crash at this moment would leave on disk
        on_disk.update(json.loads(out.read_text()))
        return {"ok": True}

    def oom():
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def slow():                                  # Python between CUDA calls: the alarm interrupts it
        time.sleep(5)

    parts = lambda: {"fp32": report._attempt(lambda: {"tflops": 1.0}),                    # noqa: E731
                     "bf16": report._attempt(oom, dtype="bf16")}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(report, "_sections", lambda quick: [("device", lambda: {"name": "Fake GPU"}), ("copy", oom),
                                                            ("matmul", parts), ("int8", slow), ("sparse", peek)])
    handler = signal.getsignal(signal.SIGALRM)
    started = time.perf_counter()
    got = gpu_bench.gpu_report(out=out, section_timeout_s=0.3)
    assert time.perf_counter() - started < 4                      # the 5 s section was cut at 0.3 s
    assert signal.getsignal(signal.SIGALRM) is handler            # the alarm handler is restored
    assert got["device"] == {"name": "Fake GPU"} and got["sparse"] == {"ok": True}
    assert got["copy"]["error"].startswith("OutOfMemoryError: CUDA out of memory")
    assert got["matmul"]["fp32"] == {"tflops": 1.0} and got["matmul"]["bf16"]["dtype"] == "bf16"
    assert "out of memory" in got["matmul"]["bf16"]["error"]
    assert got["int8"] == {"error": "_SectionTimeout: section 'int8' ran past its 0.3 s limit"}
    # on disk while "sparse" ran: every earlier section, and "sparse" itself marked as started
    assert on_disk["copy"] == got["copy"] and on_disk["int8"] == got["int8"]
    assert on_disk["sparse"] == {"error": report.STARTED}
    assert json.loads(out.read_text()) == got and set(got["section_seconds"]) == {"device", "copy", "matmul", "int8",
                                                                                   "sparse"}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]   # no temporary file left behind
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and all(line.startswith("gpu_report: ") for line in lines)
    assert lines[0].endswith(" s  ok") and "error: OutOfMemoryError" in lines[1]
    assert lines[2].endswith("ok, 1 of 2 parts failed") and "ran past" in lines[3]


HANG = """
import json, signal, sys, time
import torch
from effdl.hardware.gpu_bench import report
torch.cuda.is_available = lambda: True
report.HARD_GRACE_S = 0.5
def stuck():               # like a kernel that never returns: the alarm cannot interrupt it
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(30)
report._sections = lambda quick: [("device", lambda: {"name": "Fake GPU"}), ("copy", stuck), ("matmul", dict)]
report.gpu_report(out=sys.argv[1], section_timeout_s=0.5)
"""


def test_a_hung_section_ends_the_process_with_stacks_and_keeps_the_finished_sections(tmp_path):
    out = tmp_path / "run.json"
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", HANG, str(out)], capture_output=True, text=True, timeout=60,
                         cwd=ROOT)
    assert time.perf_counter() - started < 25 and run.returncode != 0
    assert "Timeout" in run.stderr and "stuck" in run.stderr          # faulthandler's dump of the stacks
    on_disk = json.loads(out.read_text())
    assert on_disk["device"] == {"name": "Fake GPU"} and on_disk["copy"] == {"error": report.STARTED}
    assert "matmul" not in on_disk


def test_json_is_replaced_atomically(tmp_path, monkeypatch):
    out = tmp_path / "sub" / "r.json"
    report._write_json(out, {"a": 1})
    monkeypatch.setattr(json, "dumps", lambda *a, **k: (_ for _ in ()).throw(TypeError("not JSON-able")))
    with pytest.raises(TypeError):
        report._write_json(out, {"a": object()})
    assert json.loads(out.read_text()) == {"a": 1} and len(list(out.parent.iterdir())) == 1


# ------------------------------------------------------------------ reading runs
def test_report_rows_are_datasheet_peaks_and_a_report_lines_up():
    rows = {r["measurement"]: r for r in gpu_bench.report_rows()}
    assert rows["matmul bf16"]["peak"] == 989.5 and rows["matmul fp32"]["peak"] == 67.0
    assert rows["matmul tf32"]["peak"] == 494.5 and rows["matmul int8"]["peak"] == 1979.0
    assert rows["memory bandwidth"]["peak"] == 4.8 and all(r["value"] is None for r in rows.values())
    assert {r["measurement"]: r for r in gpu_bench.report_rows(chip="H100 SXM")}["memory bandwidth"]["peak"] == 3.35
    mine = {r["measurement"]: r for r in gpu_bench.report_rows(fake_report())}
    assert mine["device-to-device copy (read + write)"]["value"] == 4.0
    assert mine["device-to-device copy (read + write)"]["peak"] == 4.8
    assert mine["matmul 8192³ bf16"]["peak"] == 989.5
    col = mine["matmul 8192×8192×8192 int8 (torch._int_mm), B column-major, (n, k).t()"]
    row = mine["matmul 8192×8192×8192 int8 (torch._int_mm), B row-major (k, n)"]
    assert (col["value"], row["value"], col["peak"], row["peak"]) == (1200.0, 130.0, 1979.0, 1979.0)
    assert mine["2:4 sparse fp16 8192×8192×8192 (cusparselt), speed-up over dense"]["peak"] is None
    failed = [r for r in mine.values() if r["value"] == "failed"]
    assert [r["measurement"][:32] for r in failed] == ["2:4 sparse 16384×4096×4096: fail"]
    assert mine["training step of small_cnn (1.15 M parameters), batch 256, fp32"]["value"] == 14.0
    broken = {r["key"]: r for r in gpu_bench.report_rows(fake_report(failed=("matmul", "int8")))}
    assert broken["matmul"]["value"] == broken["int8"]["value"] == "failed"


def test_comparison_table_aligns_runs_and_keeps_two_models_apart():
    a = fake_report()
    b = fake_report(device="NVIDIA H100 80GB HBM3", date="2026-12-02", model="resnet18", n_params=11_200_000,
                    failed=("copy",))
    rows, columns = gpu_bench.comparison_table([a, b])
    assert list(columns.values())[2:] == ["H200 SXM, datasheet peak", "NVIDIA H200 (2026-12-01)",
                                          "NVIDIA H100 80GB HBM3 (2026-12-02)"]
    by = {r["measurement"]: r for r in rows}
    assert by["matmul 8192³ bf16"]["run_0"] == by["matmul 8192³ bf16"]["run_1"] == 700.0    # one row, two runs
    assert by["device-to-device copy (read + write)"]["run_1"] == "failed"                      # same row
    rows, _ = gpu_bench.comparison_table([b, a])
    assert rows[0]["measurement"] == "device-to-device copy (read + write)" and rows[0]["run_0"] == "failed"
    small = [r for m, r in by.items() if "small_cnn" in m]
    big = [r for m, r in by.items() if "resnet18" in m]
    assert len(small) == len(big) == 4
    assert all("run_1" not in r for r in small) and all("run_0" not in r for r in big)   # never one row
    steps = gpu_bench.step_time_columns([a, b])
    assert list(steps) == ["NVIDIA H200 (2026-12-01): small_cnn (1.15 M parameters), batch 256",
                           "NVIDIA H100 80GB HBM3 (2026-12-02): resnet18 (11.20 M parameters), batch 256"]
    assert gpu_bench.step_time_columns([fake_report(failed=("training_step",))]) == {}
    rows, columns = gpu_bench.comparison_table([])
    assert len(rows) == 6 and list(columns) == ["measurement", "unit", "peak"]


def test_format_rates_name_the_int8_layout():
    rates = gpu_bench.format_rates(fake_report())
    assert rates == {"fp32": 50.0, "tf32": 350.0, "bf16": 700.0, "fp16": 690.0, "int8": 1200.0,
                     "int8, B row-major": 130.0}
    assert gpu_bench.format_rates(fake_report(failed=("matmul", "int8"))) == {}


def test_recorded_runs_read_the_results_folder(tmp_path):
    assert gpu_bench.recorded_runs(tmp_path / "missing") == []
    (tmp_path / "gpu_b.json").write_text(json.dumps(fake_report(failed=("autocast",))))
    (tmp_path / "gpu_a.json").write_text(json.dumps(fake_report()))
    (tmp_path / "gpu_a_quick.json").write_text(json.dumps({**fake_report(), "quick": True}))
    (tmp_path / "training.json").write_text("{}")
    assert [r["file"] for r in gpu_bench.recorded_runs(tmp_path)] == ["gpu_a.json", "gpu_b.json"]
    assert [r["file"] for r in gpu_bench.recorded_runs(tmp_path, include_quick=True)] == \
        ["gpu_a.json", "gpu_a_quick.json", "gpu_b.json"]
    assert [r["file"] for r in gpu_bench.recorded_runs(tmp_path, section="autocast")] == ["gpu_a.json"]
    (tmp_path / "gpu_c.json").write_text('{"device": ')
    with pytest.raises(ValueError, match="gpu_c.json is not valid JSON"):
        gpu_bench.recorded_runs(tmp_path)
    (tmp_path / "gpu_c.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        gpu_bench.recorded_runs(tmp_path)


# ------------------------------------------------------------------ the opt-in switch and the chapters
@pytest.mark.parametrize("cuda", [False, True])
def test_gpu_mode_is_opt_in_and_cuda_alone_never_switches_it(monkeypatch, cuda):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert gpu_bench.gpu_mode({}) == gpu_bench.gpu_mode({"EFFDL_GPU": "0"}) == "recorded"
    assert gpu_bench.gpu_mode({"EFFDL_GPU": "1"}) == ("live" if cuda else "no-cuda")
    monkeypatch.delenv("EFFDL_GPU", raising=False)
    assert gpu_bench.gpu_mode() == "recorded"
    monkeypatch.setenv("EFFDL_GPU", "1")
    assert gpu_bench.gpu_mode() == ("live" if cuda else "no-cuda")


def _code_cells(chapter: str):
    nb = nbformat.read(ROOT / "chapters" / chapter, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            stored = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")
            code = "\n".join(line for line in cell.source.splitlines() if not line.startswith("%"))
            yield code, stored


def _run_cells(cells, namespace) -> list[tuple[str, str]]:
    got = []
    for code, stored in cells:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, "<cell>", "exec"), namespace)
        got.append((buf.getvalue(), stored))
    return got


def _no_live_measurement(*args, **kwargs):
    raise AssertionError("a chapter measured the GPU without EFFDL_GPU=1")


@pytest.fixture
def a_cuda_machine(monkeypatch):
    """The machine says it has CUDA; any live measurement fails the test."""
    monkeypatch.delenv("EFFDL_GPU", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(gpu_bench, "gpu_report", _no_live_measurement)
    from effdl.training import mixed_precision
    monkeypatch.setattr(mixed_precision, "autocast_compare", _no_live_measurement)


def test_chapter_16_prints_its_stored_outputs_on_a_cuda_machine(a_cuda_machine):
    import matplotlib
    matplotlib.use("Agg")
    got = _run_cells(list(_code_cells("16_gpu_appendix.ipynb")), {"__name__": "chapter16"})
    assert got and all(fresh == stored for fresh, stored in got), [g for g in got if g[0] != g[1]]


def test_chapter_12_autocast_cell_prints_its_stored_output_on_a_cuda_machine(a_cuda_machine):
    cells = list(_code_cells("12_mixed_precision.ipynb"))
    autocast = [c for c in cells if "autocast_compare" in c[0]]
    assert len(autocast) == 1
    namespace = {"__name__": "chapter12"}
    _run_cells(cells[:1], namespace)                    # the setup cell: imports
    [(fresh, stored)] = _run_cells(autocast, namespace)
    assert fresh == stored and stored


# ------------------------------------------------------------------ the script
@needs_no_cuda
def test_gpu_appendix_script_refuses_without_cuda(tmp_path):
    out = tmp_path / "out.json"
    run = subprocess.run([sys.executable, str(SCRIPT), str(out)], check=False, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 1 and "needs a CUDA device; none found" in run.stderr
    assert not out.exists()


def test_gpu_appendix_script_runs_from_a_checkout_without_the_package_installed(tmp_path):
    # -S: no site-packages processing, so the editable install of effdl is invisible; torch comes from PYTHONPATH
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    run = subprocess.run([sys.executable, "-S", str(SCRIPT), "--help"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert "Needs: a CUDA GPU" in run.stdout and "about 1 minute on an" in run.stdout and "at most 2" in run.stdout
    if not torch.cuda.is_available():          # (with CUDA this would run the whole benchmark)
        run = subprocess.run([sys.executable, "-S", str(SCRIPT)], capture_output=True, text=True, timeout=120,
                             cwd=tmp_path, env=env)
        assert run.returncode == 1 and "needs a CUDA device; none found" in run.stderr, run.stderr


def test_gpu_appendix_default_output_names_the_device():
    spec = importlib.util.spec_from_file_location("gpu_appendix", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.default_out("NVIDIA H200", False) == ROOT / "benchmarks" / "results" / "gpu_nvidia_h200.json"
    assert mod.default_out("NVIDIA H100 80GB HBM3", True).name == "gpu_nvidia_h100_80gb_hbm3_quick.json"


# ------------------------------------------------------------------ on a real GPU
@needs_cuda
def test_gpu_measurements_on_a_real_device(tmp_path):
    mm = gpu_bench.matmul_throughput("bf16", n=1024, repeats=2)
    assert mm["tflops"] > 0 and mm["n"] == 1024
    i8 = gpu_bench.int8_matmul(m=256, repeats=2)
    assert all(i8["exact"].values()) and min(i8["int8_tops"].values()) > 0
    if torch.cuda.get_device_capability(0) >= (8, 0):
        sp = gpu_bench.sparse_matmul(m=256, repeats=2)
        assert sp["max_abs_error"] < 0.5 and sp["speedup"] > 0 and sp["backend"] == gpu_bench.sparse_backend()
    st = gpu_bench.training_step_times(batch_size=8, steps=2, repeats=1, warmup=1)
    assert set(st["step_ms"]) == set(gpu_bench.STEP_MODES) and st["speedup"]["fp32"] == 1.0
    assert gpu_bench.copy_bandwidth(n_bytes=1 << 20, repeats=2)["gbs"] > 0


def test_chapter_16_shows_a_recorded_run_beside_the_datasheet(a_cuda_machine, monkeypatch, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    (tmp_path / "gpu_nvidia_h200.json").write_text(json.dumps(fake_report(failed=("copy",))))
    monkeypatch.setattr(recorded, "RESULTS_DIR", tmp_path)
    shown = []
    namespace = {"__name__": "chapter16", "display": lambda obj: shown.append(obj)}
    cells = [(code.replace("from IPython.display import display\n", ""), stored)
             for code, stored in _code_cells("16_gpu_appendix.ipynb")]
    printed = "".join(fresh for fresh, _ in _run_cells(cells, namespace))
    assert "NVIDIA H200 (2026-12-01): recorded in benchmarks/results/gpu_nvidia_h200.json" in printed
    assert "int8 (torch._int_mm) 1.71× bf16 with B column-major, 0.19× with B row-major" in printed
    assert "NVIDIA H200 (2026-12-01): small_cnn (1.15 M parameters), batch 256: fp32 14.0 ms (1.0× fp32)" in printed
    rows, columns = namespace["rows"], namespace["columns"]
    assert columns["run_0"] == "NVIDIA H200 (2026-12-01)" and rows[0]["run_0"] == "failed"
    assert len(shown) == 2                                   # the training-step figure and the sparse table
    assert "| NVIDIA H200 (2026-12-01) | 16384×4096×4096 | None | failed |" not in shown[1].data
    assert "| NVIDIA H200 (2026-12-01) | 8192×8192×8192 | cusparselt | 1.30 |" in shown[1].data
