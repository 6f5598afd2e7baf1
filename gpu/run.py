"""Run the GPU suite: every GPU code path against the CPU path, then one benchmark table.

Usage: ``make gpu`` (or ``python gpu/run.py``). Steps:

1. say which CUDA device, torch and CuPy this interpreter sees;
2. run the ``gpu/`` tests (``pytest gpu -m gpu``): each GPU-capable estimator against its
   CPU result, a CUDA-trained pickle loaded in a CPU-only process, device memory after
   repeated fits;
3. run ``benchmarks/bench_gpu.py`` (GPU against CPU at sizes where the GPU should win) and
   print its table (also written to ``gpu-results.md``, or ``$OUT/gpu-results.md``).

Without a CUDA device (or without CuPy and a CUDA build of torch) it prints one line saying
why and exits 0, so the target is safe on any machine. How a CUDA machine gets CuPy and the
CUDA build of torch is in ``gpu/README.md``.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def cuda_status() -> tuple[bool, str]:
    """Whether a CUDA device is usable through CuPy or torch, and a one-line description."""
    found, missing = [], []
    try:
        import torch

        if torch.cuda.is_available():
            found.append(
                f"torch {torch.__version__} (CUDA {torch.version.cuda}) on "
                f"{torch.cuda.get_device_name(0)}"
            )
        else:
            missing.append(f"torch {torch.__version__} sees no CUDA device")
    except ImportError:
        missing.append("torch is not installed")
    try:
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
        if n > 0:
            found.append(f"CuPy {cupy.__version__} sees {n} device(s)")
        else:
            missing.append("CuPy found no CUDA device")
    except Exception as exc:  # ImportError, CUDARuntimeError without a driver
        missing.append(f"CuPy unavailable ({type(exc).__name__})")
    if found:
        return True, "; ".join(found + [f"({m})" for m in missing])
    return False, "; ".join(missing)


def main() -> int:
    ok, status = cuda_status()
    if not ok:
        print(f"GPU suite skipped: no CUDA device ({status}).")
        return 0
    print(f"GPU suite: {status}", flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    tests = subprocess.call(
        [sys.executable, "-m", "pytest", str(HERE), "-m", "gpu", "-q", "-rs",
         "-p", "no:cacheprovider", "--timeout=300"],
        env=env,
        cwd=ROOT,
    )  # fmt: skip
    print(f"gpu tests: exit {tests} after {time.perf_counter() - t0:.0f} s", flush=True)
    out_dir = pathlib.Path(os.environ.get("OUT", ROOT))
    bench = subprocess.call(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--out",
         str(out_dir / "gpu-results.md")],
        env=env,
        cwd=ROOT,
    )  # fmt: skip
    print(f"GPU suite done in {time.perf_counter() - t0:.0f} s (tests exit {tests}, bench {bench})")
    return tests or bench


if __name__ == "__main__":
    sys.exit(main())
