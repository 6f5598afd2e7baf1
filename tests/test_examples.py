"""Run every gallery example in its quick configuration (SPARSESTAT_QUICK=1), as a script."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").rglob("plot_*.py"))


def test_examples_found():
    assert EXAMPLES, "no examples/plot_*.py found"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT / "examples")))
def test_example_runs_quickly(path, tmp_path):
    env = dict(os.environ, SPARSESTAT_QUICK="1", MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    tail = f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, f"{path.name} failed:\n{tail}"
    # run as a script under a non-interactive backend, an example saves what it draws
    assert list(tmp_path.rglob("*.png")), f"{path.name} saved no figure (plt.show() under Agg)"
