"""Install PyTorch into the running interpreter, choosing the build deliberately (the README's set-up).

    python scripts/install_torch.py cpu     # default: the CPU build (small; what the course needs)
    python scripts/install_torch.py cuda    # the CUDA build (several GB; only to measure a GPU)

The project pins ``torch==2.13.0``. On Linux, PyPI's ``torch`` is the CUDA build
(with 17 nvidia-* packages, several GB), so the CPU build comes from PyTorch's
CPU wheel index (https://download.pytorch.org/whl/cpu, as PyTorch's own install
instructions show). Where that index cannot be reached (an offline machine whose
pip is configured with local wheels), pip's own configuration decides, and the
script says which build it got. macOS and Windows wheels on PyPI are CPU builds.
Standard library only: it runs before anything else is installed.
"""
from __future__ import annotations

import platform
import subprocess
import sys
import urllib.request

TORCH = "torch==2.13.0"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def reachable(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return True
    except OSError:
        return False


def pip_command(variant: str, *, linux: bool, cpu_index_reachable: bool) -> list[str]:
    """The pip command line that installs ``TORCH`` as ``variant`` ('cpu' or 'cuda')."""
    if variant not in ("cpu", "cuda"):
        raise ValueError(f"variant must be 'cpu' or 'cuda'; got {variant!r}.")
    cmd = [sys.executable, "-m", "pip", "install", TORCH]
    if variant == "cpu" and linux and cpu_index_reachable:
        # a local version label sorts higher: 2.13.0+cpu from this index wins over PyPI's 2.13.0 (CUDA)
        cmd += ["--extra-index-url", CPU_INDEX]
    return cmd


def main(argv: list[str]) -> int:
    variant = argv[0] if argv else "cpu"
    if variant not in ("cpu", "cuda"):
        print(f"install_torch: TORCH must be cpu or cuda; got {variant!r}.", file=sys.stderr)
        return 2
    linux = platform.system() == "Linux"
    online = linux and variant == "cpu" and reachable(CPU_INDEX + "/")
    if variant == "cpu" and linux and not online:
        print(f"install_torch: {CPU_INDEX} is not reachable; pip's own configuration picks the build.")
    code = subprocess.call(pip_command(variant, linux=linux, cpu_index_reachable=online))
    if code:
        return code
    probe = "import torch; print(torch.__version__, 'CUDA ' + torch.version.cuda if torch.version.cuda else 'CPU')"
    build = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip()
    print(f"install_torch: installed torch {build} build")
    if variant == "cpu" and "CUDA" in build:
        print("install_torch: warning: asked for the CPU build but got a CUDA build (works on a CPU, "
              "only larger).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
