"""GPU against CPU, one table, at sizes where the GPU should win by 10x or more.

Run by ``make gpu`` on a CUDA machine (``python benchmarks/bench_gpu.py``). Four workloads,
each timed on the CPU and on the GPU in the same run:

- sparse coding of 200,000 signals (64 features, 256 unit atoms, l1) with ``LqSparseCoder``;
- ``KroneckerSBL`` on a dictionary of N = 32**3 columns (three 16 x 32 factors);
- ``SparseAutoencoder`` (TopK, k = 32, 4,096 latents) trained for one epoch on 1,000,000 rows;
- ``SparseMLPClassifier`` with 2:4 SR-STE training, one epoch on 200,000 rows.

The CPU column of the two training workloads and of the coder runs on a slice of the rows
(stated in the table) and is reported as throughput, so that the CPU side stays within a
minute; the speed-up is the ratio of throughputs. Every row also gives a quality figure for
both sides (objective, NMSE or accuracy), so that a fast wrong answer shows.

Without a CUDA device the script prints one line and exits 0. ``--smoke`` runs every workload
at a tiny size with torch CPU tensors standing in for the device (the generic array-API path
that the GPU runs), so the script itself is tested without a GPU
(``tests/test_bench_gpu.py``); its timings mean nothing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Device:
    """Where the 'GPU' column computes: CuPy / torch CUDA, or torch CPU in smoke mode."""

    name: str
    smoke: bool

    @property
    def torch_device(self) -> str:
        return "cpu" if self.smoke else "cuda"

    def array(self, a: np.ndarray) -> Any:
        """A device copy of ``a``: CuPy where available, else a torch tensor."""
        if not self.smoke:
            try:
                import cupy

                return cupy.asarray(a)
            except ImportError:
                pass
        import torch

        return torch.as_tensor(a, device=self.torch_device)

    def sync(self) -> None:
        if self.smoke:
            return
        try:
            import cupy

            cupy.cuda.Device().synchronize()
        except ImportError:
            pass
        import torch

        torch.cuda.synchronize()


def cuda_device() -> tuple[Device | None, str]:
    """The CUDA device, or None and the reason."""
    reasons = []
    try:
        import torch

        if torch.cuda.is_available():
            return Device(torch.cuda.get_device_name(0), smoke=False), ""
        reasons.append(f"torch {torch.__version__} sees no CUDA device")
    except ImportError:
        reasons.append("torch is not installed")
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            return Device("CUDA device (CuPy)", smoke=False), ""
    except Exception as exc:  # ImportError, CUDARuntimeError without a driver
        reasons.append(f"CuPy: {type(exc).__name__}")
    return None, "; ".join(reasons)


def to_host(a: Any) -> np.ndarray:
    if hasattr(a, "get"):
        return a.get()
    if hasattr(a, "detach"):
        return a.detach().cpu().numpy()
    return np.asarray(a)


def timed(fn: Callable[[], Any], sync: Callable[[], None] = lambda: None) -> tuple[Any, float]:
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


@dataclass
class Row:
    workload: str
    size: str
    cpu: str
    gpu: str
    speedup: float
    quality: str


def bench_coding(dev: Device, sizes: dict[str, int]) -> Row:
    from sparsestat.decomposition import LqSparseCoder

    rng = np.random.default_rng(0)
    n, d, k = sizes["coding_n"], 64, 256
    D = rng.standard_normal((k, d)).astype(np.float32)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = rng.standard_normal((n, k)).astype(np.float32) * (rng.random((n, k)) < 0.03)
    X = codes @ D + 0.01 * rng.standard_normal((n, d)).astype(np.float32)
    n_cpu = max(n // 10, 1000) if not dev.smoke else n
    alpha = 0.1

    def objective(Z: np.ndarray, Xs: np.ndarray) -> float:
        r = Xs - Z @ D
        return float(0.5 * (r * r).sum(axis=1).mean() + alpha * np.abs(Z).sum(axis=1).mean())

    coder = LqSparseCoder(D, penalty="l1", alpha=alpha, max_iter=300, tol=1e-5)
    coder.transform(X[:256])  # compile / warm up
    Z_cpu, t_cpu = timed(lambda: coder.transform(X[:n_cpu]))
    Dg, Xg = dev.array(D), dev.array(X)
    gpu_coder = LqSparseCoder(Dg, penalty="l1", alpha=alpha, max_iter=300, tol=1e-5)
    gpu_coder.transform(Xg[:256])
    Z_gpu, t_gpu = timed(lambda: gpu_coder.transform(Xg), dev.sync)
    Z_gpu = to_host(Z_gpu)
    rate_cpu, rate_gpu = n_cpu / t_cpu, n / t_gpu
    m = min(n_cpu, 2000)
    quality = f"objective {objective(Z_cpu[:m], X[:m]):.4g} / {objective(Z_gpu[:m], X[:m]):.4g}"
    return Row(
        "sparse coding (l1)",
        f"{n:,} x {d}, {k} atoms (CPU: {n_cpu:,} rows)",
        f"{rate_cpu:,.0f} signals/s",
        f"{rate_gpu:,.0f} signals/s",
        rate_gpu / rate_cpu,
        quality,
    )


def bench_kronecker(dev: Device, sizes: dict[str, int]) -> Row:
    from sparsestat.bayes import KroneckerDesign, KroneckerSBL
    from sparsestat.metrics import nmse_db

    rng = np.random.default_rng(1)
    n_side, m_side = sizes["kron_side"], sizes["kron_rows"]
    factors = [rng.standard_normal((m_side, n_side)) / np.sqrt(m_side) for _ in range(3)]
    N = n_side**3
    x = np.zeros(N)
    n_nonzero = 20 if N > 4096 else 3
    x[rng.choice(N, size=n_nonzero, replace=False)] = rng.standard_normal(n_nonzero)
    y = KroneckerDesign(factors) @ x
    y = y + 0.01 * np.linalg.norm(y) / np.sqrt(y.size) * rng.standard_normal(y.size)
    model = {"method": "svd", "max_iter": sizes["kron_iter"], "fit_intercept": False}

    est_cpu, t_cpu = timed(lambda: KroneckerSBL(factors=factors, **model).fit(None, y))
    gf = [dev.array(f) for f in factors]
    gy = dev.array(y)
    est_gpu, t_gpu = timed(lambda: KroneckerSBL(factors=gf, **model).fit(None, gy), dev.sync)
    q_cpu = nmse_db(x, to_host(est_cpu.coef_).ravel())
    q_gpu = nmse_db(x, to_host(est_gpu.coef_).ravel())
    return Row(
        "KroneckerSBL (SVD M-step)",
        f"N = {n_side}^3 = {N:,}, M = {m_side**3:,}",
        f"{t_cpu:.2f} s",
        f"{t_gpu:.2f} s",
        t_cpu / t_gpu,
        f"NMSE {q_cpu:.1f} / {q_gpu:.1f} dB",
    )


def bench_sae(dev: Device, sizes: dict[str, int]) -> Row:
    from sparsestat.metrics import fvu
    from sparsestat.neural import SparseAutoencoder, TopK

    rng = np.random.default_rng(2)
    n, d, F = sizes["sae_n"], sizes["sae_d"], sizes["sae_F"]
    atoms = rng.standard_normal((4 * d, d)).astype(np.float32)
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)

    def rows(m: int) -> np.ndarray:
        act = (rng.random((m, 4 * d)) < 8 / (4 * d)) * rng.uniform(0.5, 1.5, (m, 4 * d))
        return (act.astype(np.float32) @ atoms) + 0.01 * rng.standard_normal((m, d)).astype(
            np.float32
        )

    X, X_test = rows(n), rows(min(10_000, n))
    n_cpu = max(n // 20, 2_000) if not dev.smoke else n
    params = {
        "n_components": F,
        "activation": TopK(k=32 if F > 64 else 4),
        "batch_size": 4096 if F > 64 else 64,
        "max_epochs": 1,
        "random_state": 0,
    }
    sae_cpu, t_cpu = timed(lambda: SparseAutoencoder(device="cpu", **params).fit(X[:n_cpu]))
    sae_gpu, t_gpu = timed(
        lambda: SparseAutoencoder(device=dev.torch_device, **params).fit(X), dev.sync
    )
    q = [fvu(X_test, m.inverse_transform(m.transform(X_test))) for m in (sae_cpu, sae_gpu)]
    rate_cpu, rate_gpu = n_cpu / t_cpu, n / t_gpu
    return Row(
        "SparseAutoencoder TopK, 1 epoch",
        f"{n:,} x {d}, F = {F:,} (CPU: {n_cpu:,} rows)",
        f"{rate_cpu:,.0f} rows/s",
        f"{rate_gpu:,.0f} rows/s",
        rate_gpu / rate_cpu,
        f"held-out FVU {q[0]:.3f} / {q[1]:.3f}",
    )


def bench_nm_mlp(dev: Device, sizes: dict[str, int]) -> Row:
    from sparsestat.neural import SparseMLPClassifier

    rng = np.random.default_rng(3)
    n, d, h = sizes["mlp_n"], sizes["mlp_d"], sizes["mlp_h"]
    W = rng.standard_normal((d, 10)).astype(np.float32)
    X = rng.standard_normal((n + 5000, d)).astype(np.float32)
    y = np.argmax(X @ W + 0.5 * rng.standard_normal((n + 5000, 10)), axis=1)
    X_test, y_test, X, y = X[n:], y[n:], X[:n], y[:n]
    n_cpu = max(n // 10, 2_000) if not dev.smoke else n
    params = {
        "hidden_layer_sizes": (h, h),
        "method": "sr-ste",
        "max_epochs": 1,
        "batch_size": 512,
        "early_stopping": False,
        "random_state": 0,
    }
    mlp_cpu, t_cpu = timed(
        lambda: SparseMLPClassifier(device="cpu", **params).fit(X[:n_cpu], y[:n_cpu])
    )
    mlp_gpu, t_gpu = timed(
        lambda: SparseMLPClassifier(device=dev.torch_device, **params).fit(X, y), dev.sync
    )
    rate_cpu, rate_gpu = n_cpu / t_cpu, n / t_gpu
    return Row(
        "SparseMLPClassifier 2:4 SR-STE, 1 epoch",
        f"{n:,} x {d}, hidden ({h}, {h}) (CPU: {n_cpu:,} rows)",
        f"{rate_cpu:,.0f} rows/s",
        f"{rate_gpu:,.0f} rows/s",
        rate_gpu / rate_cpu,
        f"test accuracy {mlp_cpu.score(X_test, y_test):.3f} / {mlp_gpu.score(X_test, y_test):.3f}",
    )


FULL = {
    "coding_n": 200_000, "kron_side": 32, "kron_rows": 16, "kron_iter": 50,
    "sae_n": 1_000_000, "sae_d": 256, "sae_F": 4096,
    "mlp_n": 200_000, "mlp_d": 512, "mlp_h": 1024,
}  # fmt: skip
SMOKE = {
    "coding_n": 600, "kron_side": 6, "kron_rows": 4, "kron_iter": 5,
    "sae_n": 600, "sae_d": 16, "sae_F": 64,
    "mlp_n": 600, "mlp_d": 16, "mlp_h": 16,
}  # fmt: skip
WORKLOADS = (bench_coding, bench_kronecker, bench_sae, bench_nm_mlp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, torch CPU as device")
    parser.add_argument("--out", help="also write the markdown table to this file")
    args = parser.parse_args(argv)
    if args.smoke:
        dev, sizes = Device("torch CPU (smoke test: timings mean nothing)", smoke=True), SMOKE
    else:
        dev, reason = cuda_device()
        if dev is None:
            print(f"bench_gpu: skipped, no CUDA device ({reason}).")
            return 0
        sizes = FULL
    lines = [
        f"GPU: {dev.name}; CPU: {os.cpu_count()} cores "
        f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}); "
        f"load {os.getloadavg()[0]:.2f}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "| workload | size | CPU | GPU | GPU / CPU | quality (CPU / GPU) |",
        "|---|---|---|---|---|---|",
    ]
    status = 0
    for workload in WORKLOADS:
        try:
            r = workload(dev, sizes)
            lines.append(
                f"| {r.workload} | {r.size} | {r.cpu} | {r.gpu} | {r.speedup:.1f}x | {r.quality} |"
            )
        except Exception as exc:  # one broken row must not hide the others
            lines.append(f"| {workload.__name__} | failed: {type(exc).__name__}: {exc} | | | | |")
            status = 1
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    print("\n" + table)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(table + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
