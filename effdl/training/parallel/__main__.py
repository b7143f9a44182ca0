"""``torchrun … -m effdl.training.parallel``: the data-parallel worker as a script (chapter 11).

The entry point is :func:`effdl.training.parallel.ddp.torchrun_main` (DDP, Li
et al., VLDB 2020); see its docstring for one and several machines.
"""
from .ddp import torchrun_main

if __name__ == "__main__":
    raise SystemExit(torchrun_main())
