#!/usr/bin/env python
"""Chapter 5: integer-only inference vs float inference, and the training cost of fake quantization.

- inference: LeNet-300-100 and LeNet-5 on the CPU, batch 1,000 (the test split) and batch 1
  (one image at a time, 100 images): the float32 model (the reference), the fake-quantized
  model (eval mode computes in float64), and IntegerLeNet with the int8 × int8 → int32 GEMM
  (torch._int_mm) and with int64 matrix products. Ratio = time ÷ float32 time, same run.
- training: one epoch of SGD on the 3,500 training images, plain vs 8-bit weights and
  activations fake-quantized (straight-through estimator). Ratio = fake-quant ÷ plain.
Best of several repeats. Writes benchmarks/results/quantization.json.
"""
import copy
import json
import os
import timeit
from pathlib import Path

import torch

from effdl import quantization as Q
from effdl import zoo
from effdl.data import load_mnist
from effdl.train import fit

OUT = Path(__file__).resolve().parent / "results" / "quantization.json"
THREADS = 2


def best_s(fn, repeat=5, number=1):
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number


def inference(models: dict, test) -> dict:
    x1000, singles = test.x, [test.x[i:i + 1] for i in range(100)]
    out = {}
    with torch.no_grad():
        for batch, run in (("batch1000", lambda m: m(x1000)), ("batch1", lambda m: [m(x) for x in singles])):
            ms = {name: 1000 * best_s(lambda m=m: run(m)) for name, m in models.items()}
            if batch == "batch1":
                ms = {name: t / len(singles) for name, t in ms.items()}   # per image
            row = {f"{name}_ms": round(t, 3) for name, t in ms.items()}
            for name in models:
                if name != "float32":
                    row[f"{name}_vs_float32"] = round(ms[name] / ms["float32"], 2)
            out[batch] = row
    return out


def training(model, qmodel, train) -> dict:
    def epoch(m):
        fit(m, train, epochs=1, lr=0.001, seed=0, show_progress=False)
    plain = best_s(lambda: epoch(copy.deepcopy(model)), repeat=3)
    fake = best_s(lambda: epoch(copy.deepcopy(qmodel)), repeat=3)
    return {"plain_epoch_s": round(plain, 3), "fake_quant_epoch_s": round(fake, 3),
            "fake_quant_vs_plain": round(fake / plain, 2)}


def main() -> None:
    os.environ.setdefault("EFFDL_QUIET", "1")
    torch.set_num_threads(THREADS)
    train, test = load_mnist("train", source="embedded"), load_mnist("test", source="embedded")
    result = {"threads": THREADS, "torch": torch.__version__.split("+")[0], "inference": {}, "training": {}}
    for name in ("lenet300", "lenet5"):
        model = zoo.load(name)
        qmodel = Q.quantize_model(model, 8, 8, train)
        models = {"float32": model.eval(), "fake_quant_float64": qmodel.eval(),
                  "int8": Q.IntegerLeNet(qmodel, backend="int8"), "int64": Q.IntegerLeNet(qmodel, backend="int64")}
        result["inference"][name] = inference(models, test)
        result["training"][name] = training(model, qmodel, train)
        print(name, "done", flush=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
