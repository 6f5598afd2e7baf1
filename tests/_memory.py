"""Peak memory of a streaming fit, measured in a fresh process."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def peak_in_blocks(script: str, store: pathlib.Path) -> float:
    """Run ``script`` (which gets the zarr path ``store`` as ``sys.argv[1]`` and prints the
    traced peak in blocks' worth as its last word) in a fresh Python process, so that no other
    test's threads allocate while it measures, and return that number."""
    proc = subprocess.run(
        [sys.executable, "-c", script, str(store)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return float(proc.stdout.split()[-1])
