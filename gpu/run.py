"""Run the GPU suite: every GPU code path against the CPU path, plus timings.

Usage: ``make gpu`` (or ``python gpu/run.py``). Without a CUDA device (or without CuPy) the
suite reports why and exits 0, so the target is safe to call on any machine.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def cuda_status() -> tuple[bool, str]:
    """Whether a CUDA device is usable through CuPy or torch, and a one-line reason."""
    try:
        import cupy

        n = cupy.cuda.runtime.getDeviceCount()
        if n > 0:
            return True, f"CuPy sees {n} CUDA device(s)"
    except Exception as exc:  # ImportError, CUDARuntimeError
        reason = f"CuPy unavailable ({type(exc).__name__}: {exc})"
    else:
        reason = "CuPy found no CUDA device"
    try:
        import torch

        if torch.cuda.is_available():
            return True, f"torch sees {torch.cuda.device_count()} CUDA device(s); {reason}"
    except ImportError:
        pass
    return False, reason


def main() -> int:
    ok, reason = cuda_status()
    if not ok:
        print(f"GPU suite skipped: no CUDA device ({reason}).")
        return 0
    print(f"GPU suite: {reason}")
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    cmd = [sys.executable, "-m", "pytest", str(HERE), "-m", "gpu", "-v", "-p", "no:cacheprovider"]
    return subprocess.call(cmd, env=env, cwd=HERE.parent)


if __name__ == "__main__":
    sys.exit(main())
