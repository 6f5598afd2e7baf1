"""Fixtures for the GPU suite: a CuPy module, or a clear skip when no CUDA device exists."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def cp():
    """The CuPy module, with a usable CUDA device."""
    cupy = pytest.importorskip("cupy", reason="GPU suite needs CuPy (pip install sparsestat[gpu])")
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("GPU suite: CuPy found no CUDA device")
    except Exception as exc:  # CUDARuntimeError without a driver
        pytest.skip(f"GPU suite: no CUDA device ({exc})")
    return cupy


@pytest.fixture(scope="session")
def torch_cuda():
    """The torch module, with CUDA available."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("GPU suite: torch has no CUDA device")
    return torch
