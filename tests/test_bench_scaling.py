"""Smoke run of benchmarks/bench_scaling.py at its --quick sizes.

Slow: it starts two process clusters (1 and 2 workers): 27 s on two cores at load 4, 60 s at
load 5-8.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("distributed")
pytest.importorskip("zarr")
pytest.importorskip("torch")

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_scaling.py"

pytestmark = [pytest.mark.slow, pytest.mark.torch]

WORKLOADS = (
    "coding (LqSparseCoder.transform)",
    "SAE training from zarr (fit)",
    "many KroneckerSBL fits (kronecker_sbl_many)",
    "LDP aggregation (fit_ldp_dask)",
)


def test_quick_run_prints_one_row_per_workload_and_path_with_equal_results(tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--repeat", "1"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, tail  # 1 when a dask result differs from the in-memory one
    main_table = [line for line in proc.stdout.splitlines() if line.count(" | ") == 13]
    rows = [line.split(" | ") for line in main_table if line.startswith("| ")]
    for name in WORKLOADS:
        paths = [(r[1], r[2]) for r in rows if r[0] == f"| {name}"]
        assert paths == [("in-memory (NumPy)", "-"), ("dask", "1"), ("dask", "2")], (name, tail)
        dask_rows = [r for r in rows if r[0] == f"| {name}" and r[1] == "dask"]
        assert all(r[-1] == "yes |" for r in dask_rows), tail
        # a measured peak resident memory for every worker row (a process holds > 50 MiB)
        assert all(float(r[10]) > 50 for r in dask_rows), tail
    assert "Scheduler round trip of a no-op task" in proc.stdout
