"""``benchmarks/bench_gpu.py --smoke``: the GPU benchmark's four workloads run end to end.

Without CUDA the script's "GPU" column runs the device code on torch CPU tensors, so this
checks that every row of the table ``make gpu`` prints is produced and that both columns
compute the same result (the timings mean nothing here).
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.torch

ROOT = pathlib.Path(__file__).resolve().parents[1]
WORKLOADS = ("sparse coding", "KroneckerSBL", "SparseAutoencoder", "SparseMLPClassifier")


def test_smoke_run_prints_every_workload_with_matching_quality(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--smoke"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ")]
    for name in WORKLOADS:
        row = [r for r in rows if r.startswith(f"| {name}")]
        assert row, f"no row for {name} in:\n{proc.stdout}"
        quality = row[-1].rstrip(" |").rsplit("|", 1)[-1]
        cpu, dev = (float(v) for v in re.findall(r"-?\d+\.\d+", quality)[:2])
        assert cpu == pytest.approx(dev, rel=0.02, abs=0.05), f"{name}: {quality}"
